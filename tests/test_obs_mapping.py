"""sources.mapping: duplicate rows, missing-value markers, periods, count, weighted and two-step
aggregates, and their config checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from canonical.errors import ConfigError, SourceDataError
from sources.config import SourceConfig, load_city_config
from sources.mapping import MEAN_MIN_COVERAGE, map_observations
from sources.parsers.tabular import read_csv


def run(tmp_path: Path, text: str, observations: dict[str, Any]) -> tuple[dict[tuple[Any, ...], dict[str, Any]],
                                                                         dict[str, Any]]:
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    source = SourceConfig.model_validate({"id": "t", "kind": "file", "location": str(path),
                                          "target": "observations", "observations": observations})
    frame, report = map_observations(read_csv(path, None, "t.csv"), source, city_id="c", snapshot_id="s")
    return {(r["year"], r["variable"], r["area_id"]): r for r in frame.to_dicts()}, report.as_dict()


POP = {"P": {"variable": "population", "unit": "persons"}}
ROWS = "Y,D,P\n2023,01,100\n2023,01,100\n2023,02,50\n2023,01,100\n"


def test_identical_rows_kept_and_summed_by_default(tmp_path: Path) -> None:
    rows, report = run(tmp_path, ROWS, {"year_field": "Y", "aggregate": "sum", "periods": "annual",
                                        "variables": POP})
    assert rows[2023, "population", "c"]["value"] == 350.0
    assert report["duplicate_rows"] == 2 and report["duplicate_examples"] == ["row 3 = row 2", "row 5 = row 2"]


def test_identical_rows_dropped_on_request(tmp_path: Path) -> None:
    rows, report = run(tmp_path, ROWS, {"year_field": "Y", "aggregate": "sum", "periods": "annual",
                                        "duplicates": "drop", "variables": POP})
    assert rows[2023, "population", "c"]["value"] == 150.0
    assert report["duplicate_rows"] == 2 and report["duplicates_dropped"] == 2


def test_identical_rows_refused_on_request(tmp_path: Path) -> None:
    with pytest.raises(SourceDataError, match="row repeats row 2 cell for cell") as info:
        run(tmp_path, ROWS, {"year_field": "Y", "duplicates": "error", "variables": POP})
    assert info.value.row == 3


def test_keep_without_aggregate_gives_one_observation_and_counts_the_repeat(tmp_path: Path) -> None:
    rows, report = run(tmp_path, ROWS, {"year_field": "Y", "area_field": "D", "variables": POP})
    assert {key: r["value"] for key, r in rows.items()} == {(2023, "population", "01"): 100.0,
                                                            (2023, "population", "02"): 50.0}
    assert rows[2023, "population", "01"]["source_record"] == "t.csv row 2 field 'P'"
    assert report["duplicate_rows"] == 2 and report["repeated_observations"] == 2
    assert report["repeated_examples"][0] == "t.csv row 3 field 'P' = t.csv row 2 field 'P'"


def test_duplicates_are_judged_among_the_rows_where_keeps(tmp_path: Path) -> None:
    text = "Y,G,P\n2023,Borough,5\n2023,Borough,5\n2023,City,9\n"
    _, report = run(tmp_path, text, {"year_field": "Y", "where": {"G": "City"}, "duplicates": "error",
                                     "variables": POP})
    assert report["duplicate_rows"] == 0 and report["filtered_rows"] == 2


@pytest.mark.parametrize("marker", ["NA", "n/a", "-", "..", ":", "n.d.", "NULL", "nan", "#N/A", "\u2013"])
def test_default_missing_markers(tmp_path: Path, marker: str) -> None:
    rows, report = run(tmp_path, f"Y,P\n2022,{marker}\n2023,7\n", {"year_field": "Y", "variables": POP})
    assert list(rows) == [(2023, "population", "c")]
    assert report["empty_cells"] == 1 and sum(report["missing_markers"].values()) == 1


def test_declared_missing_markers_replace_the_defaults(tmp_path: Path) -> None:
    with pytest.raises(SourceDataError, match="'NA' is not a number"):
        run(tmp_path, "Y,P\n2022,NA\n", {"year_field": "Y", "missing_values": [], "variables": POP})
    rows, report = run(tmp_path, "Y,P\n2022,x\n2023,(c)\n", {"year_field": "Y", "missing_values": ["x", "(c)"],
                                                             "variables": POP})
    assert rows == {} and report["missing_markers"] == {"(c)": 1, "x": 1}


def test_markers_are_never_zeros_in_a_sum(tmp_path: Path) -> None:
    rows, report = run(tmp_path, "Y,P\n2022,:\n2022,:\n", {"year_field": "Y", "aggregate": "sum",
                                                          "periods": "annual", "variables": POP})
    assert rows == {} and report["empty_cells"] == 2


def test_count_in_long_layout(tmp_path: Path) -> None:
    text = "Y,Kind,Id\n2023,death,a\n2023,death,b\n2023,injury,c\n2023,death,\n"
    rows, report = run(tmp_path, text, {"layout": "long", "year_field": "Y", "variable_field": "Kind",
                                        "value_field": "Id", "aggregate": "count",
                                        "variables": {"death": {"variable": "traffic_fatalities", "unit": "person"}}})
    assert rows[2023, "traffic_fatalities", "c"]["value"] == 2.0
    assert report["empty_cells"] == 1 and report["unmapped_codes"] == {"injury": 1}


@pytest.mark.parametrize(("text", "message"), [
    ("2010-2014", "is a period of several years; set period_year"),
    ("2018-07", "is neither a year nor a period"),
    ("2_019", "is not an integer"),
    ("\u0662\u0660\u0661\u0669", "is not an integer"),
])
def test_year_texts_that_are_not_years(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SourceDataError, match=message):
        run(tmp_path, f"Y,P\n{text},1\n", {"year_field": "Y", "variables": POP})


@pytest.mark.parametrize(("rule", "period", "year"), [
    ("start", "2018/19", 2018), ("end", "2018/19", 2019), ("end", "2010-2014", 2014), ("end", "1999-00", 2000),
    ("start", "2010\u20132014", 2010)])
def test_period_year(tmp_path: Path, rule: str, period: str, year: int) -> None:
    rows, _ = run(tmp_path, f"Y,P\n{period},1\n", {"year_field": "Y", "period_year": rule, "variables": POP})
    assert list(rows) == [(year, "population", "c")]
    assert f"period '{period}' assigned to {year} (period_year: {rule})" in rows[year, "population", "c"][
        "source_record"]


def test_period_year_through_year_pattern(tmp_path: Path) -> None:
    rows, _ = run(tmp_path, "T,P\nWinter 2018-19,4\nSummer 2019,5\n",
                  {"year_field": "T", "year_pattern": r"^Winter (.+)$", "period_year": "start", "variables": POP})
    assert {k[0]: r["value"] for k, r in rows.items()} == {2018: 4.0}


def test_mean_coverage_rule_is_the_readings_rule() -> None:
    from warehouse.derive import MIN_COVERAGE

    assert MEAN_MIN_COVERAGE == MIN_COVERAGE


def test_one_month_is_not_an_annual_mean(tmp_path: Path) -> None:
    rows, report = run(tmp_path, "Y,M,P\n2023,1,10\n", {"year_field": "Y", "aggregate": "mean",
                                                        "periods": {"field": "M", "per_year": 12},
                                                        "variables": POP})
    assert rows == {}
    assert report["incomplete_aggregates"] == [
        "population c 2023: 1 of 12 M values; withheld (a mean needs 75 % of 12: at least 9)"]


def test_required_periods_override_and_old_spelling(tmp_path: Path) -> None:
    text = "Y,M,P\n" + "".join(f"2023,{m},{m}\n" for m in range(1, 12))
    block = {"year_field": "Y", "aggregate": "mean", "variables": POP}
    rows, _ = run(tmp_path, text, {**block, "periods": {"field": "M", "per_year": 12}})
    assert rows[2023, "population", "c"]["value"] == 6.0  # 11 months >= 9
    rows, report = run(tmp_path, text, {**block, "periods": {"field": "M", "per_year": 12, "required": 12}})
    assert rows == {} and "periods.required 12" in report["incomplete_aggregates"][0]
    rows, report = run(tmp_path, text, {**block, "aggregate_complete": {"field": "M", "count": 12}})
    assert rows == {} and "11 of 12 M values" in report["incomplete_aggregates"][0]


def test_weights(tmp_path: Path) -> None:
    block = {"year_field": "Y", "aggregate": "mean", "periods": "annual", "weight_field": "W", "variables": POP}
    with pytest.raises(SourceDataError, match="weight '-1' is negative") as info:
        run(tmp_path, "Y,W,P\n2023,-1,5\n", block)
    assert info.value.field == "W"
    rows, report = run(tmp_path, "Y,W,P\n2023,0,5\n2023,0,7\n", block)
    assert rows == {} and report["incomplete_aggregates"] == ["population c 2023: weights sum to 0; withheld"]


def _config_error(tmp_path: Path, block: dict[str, Any]) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"city": {"id": "c", "name": "C", "country": "US", "reporting_years": [2020]},
                                    "sources": [{"id": "s", "kind": "file", "location": "x.csv",
                                                 "target": "observations", "observations": block}]}))
    with pytest.raises(ConfigError) as info:
        load_city_config(path, check_files=False)
    return str(info.value)


@pytest.mark.parametrize(("extra", "message"), [
    ({"aggregate": "mean"}, "a mean needs periods"),
    ({"aggregate": ["sum", "mean"], "periods": "annual"}, "two-step aggregate needs periods with a field"),
    ({"aggregate": ["sum", "mean", "sum"], "periods": {"field": "M", "per_year": 12}}, "one method"),
    ({"aggregate": "sum", "weight_field": "W"}, "weight_field needs a mean over rows"),
    ({"weight_field": "W"}, "weight_field needs aggregate"),
    ({"periods": "annual"}, "periods needs aggregate"),
    ({"aggregate": "sum", "periods": "annual", "aggregate_complete": {"field": "M", "count": 12}}, "not both"),
    ({"aggregate": "sum", "periods": {"field": "M", "per_year": 12, "required": 13}}, "more than per_year"),
    ({"aggregate": "count", "variables": {"P": {"variable": "population", "unit": "n", "share_of": "H"}}},
     "count counts the rows"),
    ({"duplicates": "collapse"}, "duplicates"),
])
def test_aggregate_options_are_checked(tmp_path: Path, extra: dict[str, Any], message: str) -> None:
    assert message in _config_error(tmp_path, {"year_field": "Y", "variables": POP, **extra})


def test_hash_collisions_never_make_different_rows_duplicates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    import sources.mapping

    monkeypatch.setattr(sources.mapping, "hash", lambda _: 0, raising=False)  # every row collides
    rows, report = run(tmp_path, "Y,P\n2023,1\n2023,2\n2023,1\n2023,3\n",
                       {"year_field": "Y", "aggregate": "sum", "periods": "annual", "variables": POP})
    assert rows[2023, "population", "c"]["value"] == 7.0
    assert report["duplicate_rows"] == 1 and report["duplicate_examples"] == ["row 4 = row 2"]


def test_two_step_period_with_zero_weights_is_listed(tmp_path: Path) -> None:
    text = "Y,M,W,P\n2023,1,0,5\n2023,2,1,7\n"
    rows, report = run(tmp_path, text, {"year_field": "Y", "aggregate": ["mean", "mean"], "weight_field": "W",
                                        "periods": {"field": "M", "per_year": 2}, "variables": POP})
    assert rows == {}  # one of the two months has a value; a mean needs 2 (75 % of 2, rounded up)
    assert report["incomplete_aggregates"] == ["population c 2023: 1 periods with a value; withheld (at least 2)",
                                               "population c 2023: weights of 1 sum to 0; that period left out"]


def test_unmapped_codes_are_cut_and_capped(tmp_path: Path) -> None:
    from sources.mapping import MAX_LISTED_CODES, OTHER_CODES

    text = "Y,Code,V\n" + "".join(f"2023,code{i}{'x' * 100},1\n" for i in range(MAX_LISTED_CODES + 50))
    _, report = run(tmp_path, text, {"layout": "long", "year_field": "Y", "variable_field": "Code",
                                     "value_field": "V", "variables": {"P": POP["P"]}})
    codes = report["unmapped_codes"]
    assert len(codes) == MAX_LISTED_CODES + 1 and codes[OTHER_CODES] == 50
    assert all(len(code) <= 63 for code in codes)


def test_unread_columns_are_left_out_but_still_tell_rows_apart(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    path.write_text("Y,Note,P,Other\n2023,a,5,x\n2023,b,5,x\n2023,a,5,x\n", encoding="utf-8")
    block = {"year_field": "Y", "aggregate": "sum", "periods": "annual", "variables": POP}
    source = SourceConfig.model_validate({"id": "t", "kind": "file", "location": str(path),
                                          "target": "observations", "observations": block})
    assert source.observations is not None and source.observations.used_columns() == {"Y", "P"}
    table = read_csv(path, None, "w.csv", keep=source.observations.used_columns())
    assert table.rows == [["2023", "", "5", ""]] * 3 and table.row_hashes is not None
    frame, report = map_observations(table, source, city_id="c", snapshot_id="s")
    assert frame["value"].to_list() == [15.0]
    assert report.duplicate_rows == 1 and report.duplicate_examples == ["row 4 = row 2"]  # not row 3: 'b'
