"""The growth_ratio formula kind (SDG 11.3.1 LCRPGR) and the `caveat` field: edge cases the catalogue
examples cannot express (failed_check) and the provenance of both years."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

from kpis.catalogue import Compute, Indicator, indicators_by_id
from kpis.engine import compute_kpi_values, evaluate_indicator, inputs_from_example

LCRPGR = indicators_by_id()["11.3.1"]


def _exact_five_years() -> Indicator:
    assert LCRPGR.compute is not None
    return LCRPGR.model_copy(update={"compute": LCRPGR.compute.model_copy(update={"min_years": None})})


def test_zero_population_growth_is_a_failed_check() -> None:
    data = inputs_from_example(LCRPGR, {"built_up_area_ha": 1100, "population": 100000,
                                        "built_up_area_ha@1995": 1000, "population@1995": 100000}, {})
    result = evaluate_indicator(LCRPGR, None, data)
    assert result.status == "failed_check"
    assert result.reason is not None and "growth rate of population is 0" in result.reason
    assert "1995" in result.reason and "2000" in result.reason
    assert result.numerator == pytest.approx(math.log(1.1) / 5)  # LCR kept for the record
    assert result.denominator == 0


def test_missing_base_year_names_the_year() -> None:
    data = inputs_from_example(_exact_five_years(), {"built_up_area_ha": 1100, "population": 105000,
                                                     "population@1995": 100000}, {})
    result = evaluate_indicator(_exact_five_years(), None, data)
    assert result.status == "missing"
    assert result.missing == ["built_up_area_ha in 1995"]
    assert result.reason is not None and "built_up_area_ha in 1995" in result.reason


def test_missing_base_year_in_a_window_names_the_window() -> None:
    data = inputs_from_example(LCRPGR, {"built_up_area_ha": 1100, "population": 105000}, {})
    result = evaluate_indicator(LCRPGR, None, data)
    assert result.status == "missing"
    assert result.missing == ["built_up_area_ha in 1995-1997", "population in 1995-1997"]


def test_no_common_base_year() -> None:
    data = inputs_from_example(LCRPGR, {"built_up_area_ha": 1100, "population": 105000,
                                        "built_up_area_ha@1995": 1000, "population@1996": 100000}, {})
    result = evaluate_indicator(LCRPGR, None, data)
    assert result.status == "missing"
    assert result.missing == ["built_up_area_ha, population in one common year of 1995-1997"]


def test_missing_current_year_names_the_year() -> None:
    data = inputs_from_example(LCRPGR, {"population": 105000, "built_up_area_ha@1995": 1000,
                                        "population@1995": 100000}, {})
    result = evaluate_indicator(LCRPGR, None, data)
    assert result.status == "missing"
    assert result.missing == ["built_up_area_ha in 2000"]


def test_zero_built_up_area_cannot_have_a_growth_rate() -> None:
    data = inputs_from_example(LCRPGR, {"built_up_area_ha": 1100, "population": 105000,
                                        "built_up_area_ha@1995": 0, "population@1995": 100000}, {})
    result = evaluate_indicator(LCRPGR, None, data)
    assert result.status == "failed_check"
    assert result.reason == "growth rate needs positive values: built_up_area_ha in 1995 is 0"


def test_computed_row_names_base_year_and_caveat() -> None:
    data = inputs_from_example(LCRPGR, {"built_up_area_ha": 1100, "population": 105000,
                                        "built_up_area_ha@1995": 1000, "population@1995": 100000}, {})
    result = evaluate_indicator(LCRPGR, None, data)
    assert result.status == "computed"
    assert result.value == pytest.approx(math.log(1.1) / math.log(1.05))
    assert result.numerator == pytest.approx(math.log(1.1) / 5)
    assert result.denominator == pytest.approx(math.log(1.05) / 5)
    assert result.reason is not None and result.reason.startswith("base year 1995 (5 years); built-up area")
    assert sorted((o.variable, o.year) for o in result.inputs) == [
        ("built_up_area_ha", 1995), ("built_up_area_ha", 2000), ("population", 1995), ("population", 2000)]


def test_growth_ratio_needs_years() -> None:
    with pytest.raises(ValueError, match="needs \\['years'\\]"):
        Compute(kind="growth_ratio", numerator="a", denominator="b")
    with pytest.raises(ValueError, match="min_years"):
        Compute(kind="growth_ratio", numerator="a", denominator="b", years=3, min_years=5)


def _obs(year: int, variable: str, value: float) -> dict[str, object]:
    return {"city_id": "c", "year": year, "variable": variable, "data_point": None, "area_type": "city",
            "area_id": "c", "value": value, "unit": "x", "source_id": "s", "snapshot_id": None,
            "source_record": f"row {year} {variable}"}


def test_kpi_rows_carry_both_years_in_their_inputs() -> None:
    frame = pl.DataFrame([_obs(2019, "built_up_area_ha", 1000), _obs(2019, "population", 100000),
                          _obs(2024, "built_up_area_ha", 1100), _obs(2024, "population", 105000),
                          _obs(2022, "population", 104000)])
    values = compute_kpi_values(frame, {"c": [2022, 2024]}, [LCRPGR])
    rows = {r["year"]: r for r in values.iter_rows(named=True)}
    assert rows[2022]["status"] == "missing"
    assert rows[2022]["missing_inputs"] == ["built_up_area_ha in 2022"]
    row = rows[2024]
    assert row["status"] == "computed"
    assert row["value"] == pytest.approx(math.log(1.1) / math.log(1.05))
    assert "t0 = earliest year from t - 5 to t - 3" in row["formula"]
    inputs = json.loads(row["inputs"])
    assert [(i["variable"], i["year"]) for i in inputs] == [
        ("built_up_area_ha", 2019), ("built_up_area_ha", 2024), ("population", 2019), ("population", 2024)]


def test_other_kinds_keep_their_inputs_without_a_year() -> None:
    green = indicators_by_id()["EN:EN:PSN:1C"]
    frame = pl.DataFrame([_obs(2024, "green_area_ha", 1350), _obs(2024, "population", 150000)])
    row = compute_kpi_values(frame, {"c": [2024]}, [green]).row(0, named=True)
    assert row["status"] == "computed" and row["status_reason"] is None
    assert all("year" not in i for i in json.loads(row["inputs"]))


def test_caveat_is_not_added_to_missing_rows() -> None:
    access = indicators_by_id()["11.2.1"]
    result = evaluate_indicator(access, "total", inputs_from_example(access, {}, {}))
    assert result.status == "missing"
    assert result.reason is not None and "straight-line" not in result.reason
