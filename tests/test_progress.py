"""Progress towards targets: hand-worked small series for every class, both methods, and every
reason an indicator is not assessed against a target.

Series are chosen so the growth rates are round numbers: 100 -> 110 in one year is +10 %/yr;
a target of 121 two years after a base of 100 needs +10 %/yr; 146.41 four years after needs +10 %/yr.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import polars as pl
import pytest

from kpis.benchmarking.progress import CUTOFFS, Method, assess_all, assess_progress, cagr, classify
from kpis.benchmarking.targets import TARGET_SCHEMA
from kpis.catalogue import indicators_by_id

KPI_SCHEMA: dict[str, Any] = {
    "city_id": pl.String, "year": pl.Int32, "framework": pl.String, "indicator_id": pl.String,
    "data_point": pl.String, "value": pl.Float64, "unit": pl.String, "status": pl.String, "status_reason": pl.String,
}
IND = "11.7.1"  # any indicator without data points


def series(values: Mapping[int, float | None], indicator: str = IND, data_point: str | None = None,
           city: str = "c") -> pl.DataFrame:
    framework = indicators_by_id()[indicator].framework
    return pl.DataFrame([{
        "city_id": city, "year": year, "framework": framework, "indicator_id": indicator, "data_point": data_point,
        "value": value, "unit": "%", "status": "computed" if value is not None else "missing",
        "status_reason": None} for year, value in values.items()], schema=KPI_SCHEMA, orient="row")


def target(value: float, direction: str = "higher", deadline: int = 2030, indicator: str = IND,
           data_point: str | None = None) -> pl.DataFrame:
    return pl.DataFrame([{
        "indicator_id": indicator, "data_point": data_point, "target": value, "direction": direction,
        "worst": None, "deadline": deadline, "official_u4ssc_benchmark": False, "source": "test", "note": None,
        "target_source": "test"}], schema=TARGET_SCHEMA, orient="row")


NO_TARGETS = pl.DataFrame(schema=TARGET_SCHEMA)


def one(frame: pl.DataFrame) -> dict[str, Any]:
    assert frame.height == 1, frame
    return frame.row(0, named=True)


# ---- cut-offs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("ratio", "un", "eurostat"), [
    (1.2, "on_track", "on_track"),
    (0.95, "on_track", "on_track"),
    (0.9499999, "acceleration_needed", "acceleration_needed"),
    (0.6, "acceleration_needed", "acceleration_needed"),
    (0.5999999, "acceleration_needed", "limited_progress"),
    (0.5, "acceleration_needed", "limited_progress"),
    (0.4999999, "limited_progress", "limited_progress"),
    (0.0, "limited_progress", "limited_progress"),
    (-0.0000001, "limited_progress", "deterioration"),
    (-0.1, "limited_progress", "deterioration"),
    (-0.1000001, "deterioration", "deterioration"),
])
def test_cutoffs_lower_bounds_inclusive(ratio: float, un: str, eurostat: str) -> None:
    assert classify(ratio, "un").status == un
    assert classify(ratio, "eurostat").status == eurostat


def test_labels_are_the_references_wording() -> None:
    assert [c.label for c in CUTOFFS["un"]] == [
        "Substantial progress / on track", "Fair progress, acceleration needed", "Limited or no progress",
        "Deterioration"]
    assert [c.label for c in CUTOFFS["eurostat"]] == [
        "On track / significant progress", "Acceleration needed / moderate progress",
        "Limited / insufficient progress", "Deterioration / movement away"]


def test_cagr() -> None:
    assert cagr(100, 121, 2) == pytest.approx(0.10)
    assert cagr(20, 16.2, 2) == pytest.approx(-0.10)


# ---- each class on a hand-worked series (UN) -------------------------------------------------


def test_on_track() -> None:
    """100 -> 110 in one year (+10 %/yr) against 121 by 2017 (+10 %/yr needed): CR = 1."""
    row = one(assess_progress(series({2015: 100, 2016: 110}), target(121, deadline=2017)))
    assert row["cagr_actual"] == pytest.approx(0.10) and row["cagr_required"] == pytest.approx(0.10)
    assert (row["ratio"], row["status"], row["label"]) == (1.0, "on_track", "Substantial progress / on track")
    assert (row["base_year"], row["latest_year"], row["n_years"]) == (2015, 2016, 2)
    assert "years 2015 (base) and 2016 (latest)" in row["reason"]


def test_acceleration_needed_exactly_on_the_half() -> None:
    """100 -> 110.25 in two years (+5 %/yr) against 146.41 by 2019 (+10 %/yr): CR = 0.5, the lower
    bound of 'fair progress' under UN, but 'limited' under Eurostat (its bound is 0.6)."""
    values, goal = series({2015: 100, 2017: 110.25}), target(146.41, deadline=2019)
    un = one(assess_progress(values, goal, "un"))
    assert (un["ratio"], un["status"]) == (0.5, "acceleration_needed")
    assert un["label"] == "Fair progress, acceleration needed"
    eurostat = one(assess_progress(values, goal, "eurostat"))
    assert (eurostat["ratio"], eurostat["status"]) == (0.5, "limited_progress")


def test_limited_progress() -> None:
    """100 -> 101 (+1 %/yr) against +10 %/yr needed: CR = 0.1."""
    row = one(assess_progress(series({2015: 100, 2016: 101}), target(121, deadline=2017)))
    assert (round(row["ratio"], 6), row["status"], row["label"]) == (0.1, "limited_progress", "Limited or no progress")


def test_slight_decline_is_still_limited_at_minus_a_tenth() -> None:
    """100 -> 99 (-1 %/yr) against +10 %/yr: CR = -0.1, still 'limited or no progress' (UN);
    Eurostat calls any movement away deterioration."""
    values, goal = series({2015: 100, 2016: 99}), target(121, deadline=2017)
    assert one(assess_progress(values, goal))["status"] == "limited_progress"
    assert one(assess_progress(values, goal, "eurostat"))["status"] == "deterioration"


def test_deterioration() -> None:
    """100 -> 80 (-20 %/yr) against +10 %/yr: CR = -2."""
    row = one(assess_progress(series({2015: 100, 2016: 80}), target(121, deadline=2017)))
    assert (row["ratio"], row["status"], row["label"], row["trend"]) == (-2.0, "deterioration", "Deterioration", "down")


def test_lower_is_better_pm25_on_track() -> None:
    """PM2.5 20 -> 16.2 in two years (-10 %/yr) against WHO 5 by 2030: needed (5/20)^(1/15) - 1
    = -8.8188 %/yr; CR = -0.10 / -0.088188 = 1.134 (the same under Eurostat: d = -1)."""
    values = series({2015: 20, 2017: 16.2}, "11.6.2", "PM2.5")
    goal = target(5, "lower", indicator="11.6.2", data_point="PM2.5")
    needed = 0.25 ** (1 / 15) - 1
    methods: tuple[Method, ...] = ("un", "eurostat")
    for method in methods:
        row = one(assess_progress(values, goal, method))
        assert row["cagr_required"] == pytest.approx(needed)
        assert row["ratio"] == pytest.approx(-0.10 / needed, abs=1e-9)
        assert row["status"] == "on_track"


def test_lower_is_better_getting_worse_is_deterioration() -> None:
    values = series({2016: 20, 2018: 24.2}, "11.6.2", "PM2.5")  # +10 %/yr
    row = one(assess_progress(values, target(5, "lower", indicator="11.6.2", data_point="PM2.5")))
    assert row["ratio"] < -0.1 and row["status"] == "deterioration"
    assert row["base_year"] == 2016  # no 2015 value: the first year since the baseline


def test_intermediate_years_do_not_change_the_endpoint_rate() -> None:
    a = one(assess_progress(series({2015: 100, 2016: 130, 2017: 121}), target(200)))
    b = one(assess_progress(series({2015: 100, 2017: 121}), target(200)))
    assert (a["cagr_actual"], a["status"], a["n_years"]) == (b["cagr_actual"], b["status"], 3)


# ---- target achieved, trend only, not assessed ------------------------------------------------


def test_target_achieved() -> None:
    row = one(assess_progress(series({2015: 90, 2020: 100}), target(100)))
    assert (row["status"], row["label"], row["ratio"]) == ("target_achieved", "Target achieved", None)
    assert "100 in 2020 meets the target 100" in row["reason"]


def test_base_met_the_target_latest_no_longer_does() -> None:
    row = one(assess_progress(series({2015: 4, 2020: 6}, "11.6.2", "PM2.5"),
                              target(5, "lower", indicator="11.6.2", data_point="PM2.5")))
    assert (row["status"], row["ratio"]) == ("deterioration", None)
    assert "4 in 2015 met the target 5, 6 in 2020 no longer does" in row["reason"]


def test_no_target_gives_the_trend_direction_only() -> None:
    up = one(assess_progress(series({2015: 10, 2024: 12}), NO_TARGETS))
    assert (up["status"], up["label"], up["trend"], up["target"]) == ("trend_only", "Increasing", "up", None)
    assert up["cagr_actual"] == pytest.approx(1.2 ** (1 / 9) - 1)
    assert up["reason"] == "no target in force: trend direction only (10 in 2015, 12 in 2024)"
    down = one(assess_progress(series({2020: 12, 2024: 10}), NO_TARGETS))
    flat = one(assess_progress(series({2020: 12, 2024: 12}), NO_TARGETS))
    assert (down["label"], flat["label"]) == ("Decreasing", "No change")


@pytest.mark.parametrize(("values", "goal", "why"), [
    ({2015: 0.0, 2020: 5.0}, target(100), "a growth rate needs positive values (0 in 2015, 5 in 2020)"),
    ({2015: 9.0, 2020: 7.0}, target(0, "lower"), "the target 0 is not positive"),
    ({2015: 50.0, 2020: 60.0}, target(100, deadline=2015), "the deadline 2015 is not after the base year 2015"),
])
def test_targets_the_cagr_method_cannot_measure_fall_back_to_the_trend(
        values: dict[int, float], goal: pl.DataFrame, why: str) -> None:
    row = one(assess_progress(series(values), goal))
    assert row["status"] == "trend_only" and row["ratio"] is None
    assert row["reason"].startswith(why)


@pytest.mark.parametrize(("values", "reason"), [
    ({2024: 50.0}, "needs computed values in at least two years since 2015; has: 2024"),
    ({2023: None, 2024: 50.0}, "needs computed values in at least two years since 2015; has: 2024"),
    ({2022: None, 2023: None}, "needs computed values in at least two years since 2015; has: none"),
    ({2010: 40.0, 2024: 50.0}, "has: 2024; values before the 2015 baseline are not used (2010)"),
])
def test_too_few_years_is_not_assessed(values: dict[int, float | None], reason: str) -> None:
    row = one(assess_progress(series(values), target(100)))
    assert (row["status"], row["label"], row["base_year"]) == ("not_assessed", "Not assessed", None)
    assert reason in row["reason"]
    assert row["target"] == 100.0  # the target in force is still shown


# ---- frame-level behaviour --------------------------------------------------------------------


def test_one_row_per_city_indicator_and_data_point_in_catalogue_order() -> None:
    values = pl.concat([
        series({2015: 10, 2020: 8}, "11.6.2", "PM10", city="b"),
        series({2015: 10, 2020: 8}, "11.6.2", "PM2.5", city="b"),
        series({2015: 50, 2020: 60}, "11.2.1", "total", city="b"),
        series({2015: 50, 2020: 60}, "EC:I:WS:1C", None, city="a"),
    ])
    out = assess_progress(values, NO_TARGETS)
    assert out.select("city_id", "indicator_id", "data_point").rows() == [
        ("a", "EC:I:WS:1C", None), ("b", "11.2.1", "total"), ("b", "11.6.2", "PM2.5"), ("b", "11.6.2", "PM10")]
    assert out["framework"].to_list() == ["u4ssc", "sdg11", "sdg11", "sdg11"]


def test_assess_all_stacks_both_methods_and_unknown_methods_fail() -> None:
    both = assess_all(series({2015: 100, 2017: 110.25}), target(146.41, deadline=2019))
    assert both.select("method", "status").rows() == [("un", "acceleration_needed"), ("eurostat", "limited_progress")]
    with pytest.raises(ValueError, match="unknown progress method"):
        assess_progress(series({2015: 1, 2016: 2}), NO_TARGETS, "sdsn")  # type: ignore[arg-type]


def test_non_finite_values_are_ignored() -> None:
    row = one(assess_progress(series({2015: 100, 2016: math.inf, 2017: 121}), target(200)))
    assert row["n_years"] == 2 and row["latest_year"] == 2017
