"""The quality suites themselves: generated from metadata, measured in DuckDB, judged by GX.

Small hand-made warehouses (real DuckDB files with the migrations applied) pin down the parts
the demo city cannot reach: the readings bitmap uniqueness (and its exact fallback for
sub-hourly data), plausibility rules that are skipped for missing inputs, the configurable
year-over-year bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from kpis.catalogue import indicators_by_id
from quality import QualitySettings, SuiteContext
from quality import metadata as md
from quality.gx import validate
from quality.measure import measure_suite
from quality.plausibility import plausibility_suite
from quality.readings import readings_suite
from quality.run import stage_suites
from quality.suites import all_checks
from warehouse.db import connect

CTX = SuiteContext("c", "DE", (2022, 2023))


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = connect(tmp_path / "warehouse.duckdb")
    yield connection
    connection.close()


def test_suites_are_generated_from_the_catalogue_and_the_variables() -> None:
    by_id = indicators_by_id()
    percentages = md.percentage_indicators()
    assert "EC:ICT:ICT:1C" in percentages and "EC:P:IN:3A" in percentages
    assert all(by_id[i].unit.startswith("%") for i in percentages)
    assert "EC:ICT:ICT:3C" in md.non_negative_indicators()          # per 100,000 inhabitants
    rules = {r.name: r for r in md.share_rules()}
    assert rules["households_with_internet_le_households_total"].indicator_id == "EC:ICT:ICT:1C"
    # Subscriptions per household is not a share (different units): no numerator <= denominator rule.
    assert not any(r.numerator == "fixed_broadband_subscriptions" for r in rules.values())
    waste = rules["solid_waste_treated_t_le_solid_waste_total_t"]
    assert set(waste.numerator_data_points) == set(by_id["EN:EN:WA:1C"].data_points)
    assert "population" in md.count_variables() and "police_officers_fte" not in md.count_variables()
    names = [c.key for c in all_checks(stage_suites("core") + stage_suites("kpis"))]
    assert len(names) == len(set(names))
    assert {c.table for c in all_checks(stage_suites("core"))} == {
        "city", "observations", "core_areas", "core_points", "core_readings", "core_transit_stops", "sources"}


def _readings(con: duckdb.DuckDBPyConnection, rows: list[tuple[str, str, str, float]]) -> None:
    con.execute("INSERT INTO core_points VALUES ('c', 'station', 'S1', NULL, 10, 51, NULL, 's', 'x', 'r', NULL)")
    con.executemany("""INSERT INTO core_readings VALUES ('c', ?, CAST(? AS TIMESTAMPTZ), 'air_concentration_ugm3',
                       ?, ?, 's', 'x')""", rows)


def _measured(con: duckdb.DuckDBPyConnection, ctx: SuiteContext = CTX) -> dict[str, int | None]:
    return {m.check.name: m.failing for m in measure_suite(con, ctx, readings_suite())}


def test_readings_uniqueness_by_hour_bitmap_is_exact(con: duckdb.DuckDBPyConnection) -> None:
    hours = [f"2022-01-01 {h:02d}:00:00+00" for h in range(24)]
    _readings(con, [("S1", t, "PM10", 20.0) for t in hours] + [("S1", hours[3], "PM10", 21.0),
                                                               ("S1", hours[3], "PM10", 22.0),
                                                               ("S1", hours[5], "PM2.5", 9.0),
                                                               ("S2", hours[0], "CO", -1.0)])
    found = _measured(con)
    assert found["unique_key"] == 2                   # two surplus rows in one hour of one series
    assert found["non_negative"] == 1 and found["finite_value"] == 0 and found["not_null"] == 0
    assert found["station_reference"] == 1            # S2 is not in core_points
    assert found["data_point_codelist"] == 1          # CO is read by no formula
    assert found["time_series_complete"] == 3         # three series, none has 2023
    assert found["coverage"] == 3                     # a day is far below 75 % of a year
    measurement = next(m for m in measure_suite(con, CTX, readings_suite()) if m.check.name == "unique_key")
    assert measurement.sample[0]["rows"] == 3
    assert {(a["area_id"], a["data_point"], a["year"]) for a in measurement.affected} == {("S1", "PM10", 2022)}


def test_readings_uniqueness_falls_back_to_exact_for_sub_hourly_data(con: duckdb.DuckDBPyConnection) -> None:
    # Two readings in one hour are not duplicates; the same minute twice is.
    _readings(con, [("S1", "2022-01-01 00:10:00+00", "PM10", 1.0), ("S1", "2022-01-01 00:40:00+00", "PM10", 2.0),
                    ("S1", "2022-01-01 00:40:00+00", "PM10", 3.0)])
    assert _measured(con)["unique_key"] == 1


def _kpi(con: duckdb.DuckDBPyConnection, indicator: str, year: int, value: float | None) -> None:
    con.execute("""INSERT INTO kpi_values (city_id, year, indicator_id, framework, data_point, value, unit, status,
                   inputs, run_id) VALUES ('c', ?, ?, 'u4ssc', NULL, ?, '%', ?, '[]', 'r')""",
                [year, indicator, value, "computed" if value is not None else "missing"])


def test_plausibility_rules_warn_skip_and_use_the_configured_bound(con: duckdb.DuckDBPyConnection) -> None:
    _kpi(con, "EC:ICT:ICT:1C", 2022, 80.0)
    _kpi(con, "EC:ICT:ICT:2C", 2022, 85.0)            # more fixed broadband than Internet access: warn
    _kpi(con, "EC:P:IN:3A", 2022, 96.0)
    _kpi(con, "EC:P:IN:3A", 2023, 60.0)               # SMEs below 95 % and a 37.5 % drop
    _kpi(con, "EC:I:WS:2C", 2022, None)               # potable water not computed: rule skipped
    measurements = measure_suite(con, CTX, plausibility_suite())
    found = {m.check.name: m.failing for m in measurements}
    assert found["plausible_fixed_broadband_le_internet"] == 1
    assert found["plausible_sme_share_above_95"] == 1
    assert found["plausible_potable_le_basic_water"] is None
    assert found["plausible_year_over_year"] == 0     # 37.5 % is within the default 50 %
    strict = SuiteContext("c", "DE", (2022, 2023), QualitySettings(yoy_bound=0.3))
    assert {m.check.name: m.failing for m in measure_suite(con, strict, plausibility_suite())}[
        "plausible_year_over_year"] == 1

    results = {r.check.name: r for r in validate(measurements, "test")}
    assert results["plausible_fixed_broadband_le_internet"].status == "warned"
    assert results["plausible_potable_le_basic_water"].status == "skipped"
    assert results["plausible_potable_le_basic_water"].expectation is None
    passed = results["plausible_year_over_year"]
    assert passed.status == "passed" and passed.expectation is not None
    assert passed.expectation["expectation_config"]["severity"] == "warning"
    assert passed.expectation["expectation_config"]["kwargs"]["column"] == "kpi_values__plausible_year_over_year"


def test_great_expectations_judges_the_measured_counts_of_all_cities_at_once() -> None:
    """One GX validation for every city: a row per city, a column per check; GX's unexpected rows name
    the failing cities, and each city gets its own part of the real GX result."""
    from quality.gx import validate_counts
    from quality.model import Measurement

    check = next(c for c in all_checks(stage_suites("core")) if c.name == "time_series_complete")
    found = validate_counts({"a": [Measurement(check, 3, 10, [{"year": 2022}])], "b": [Measurement(check, 0, 10)],
                             "c": [Measurement(check, None, 0, note="inputs missing")]}, "test")
    a, b, c = found["a"][0], found["b"][0], found["c"][0]
    assert (a.status, a.failing, b.status, c.status) == ("warned", 3, "passed", "skipped")
    assert a.expectation is not None and b.expectation is not None and c.expectation is None
    assert a.expectation["expectation_config"]["type"] == "expect_column_values_to_be_between"
    assert a.expectation["success"] is False and b.expectation["success"] is True
    assert a.expectation["result"]["partial_unexpected_index_list"] == [{"city_id": "a", check.key: 3.0}]
    # DuckDB's sample of failing rows rides along in the expectation's description (Data Docs show it).
    assert "Failing in a (first 1 of 3): year 2022" in a.expectation["expectation_config"]["description"]
    (single,) = validate([Measurement(check, 2, 10)], "test")
    assert (single.status, single.failing) == ("warned", 2)


def test_readings_checks_from_the_loader_aggregates_equal_the_full_scan(con: duckdb.DuckDBPyConnection) -> None:
    """The suite reads core_readings_groups when it covers the table, and scans the table otherwise;
    both give the same counts and affected groups. Value rules read the table itself (zone maps), so
    an edit around the loader that keeps the row count is still seen."""
    from warehouse.derive import readings_groups_current
    from warehouse.load import rebuild_readings_groups

    hours = [f"2022-01-01 {h:02d}:00:00+00" for h in range(24)]
    _readings(con, [("S1", t, "PM10", 20.0) for t in hours] + [("S1", hours[3], "PM10", 21.0),
                                                               ("S1", hours[5], "PM2.5", 9.0),
                                                               ("S2", hours[0], "CO", -1.0),
                                                               ("S2", "2099-01-01 00:00:00+00", "CO", 1.0)])

    def measured() -> dict[str, tuple[int | None, list[tuple[object, ...]]]]:
        return {m.check.name: (m.failing, sorted((a["area_id"], a["data_point"], a["year"]) for a in m.affected))
                for m in measure_suite(con, CTX, readings_suite())}

    scanned = measured()                                # no aggregates yet: one grouped scan
    rebuild_readings_groups(con, "c")
    assert readings_groups_current(con, "c")
    aggregated = measured()
    assert aggregated == scanned
    assert aggregated["unique_key"][0] == 1 and aggregated["non_negative"][0] == 1
    assert aggregated["not_in_future"][0] == 1
    con.execute("UPDATE core_readings SET value = 'nan' WHERE station_id = 'S1' AND data_point = 'PM2.5'")
    assert measured()["finite_value"] == (1, [("S1", "PM2.5", 2022)])  # same row count: aggregates still used
    con.execute("INSERT INTO core_readings VALUES ('c', 'S1', TIMESTAMPTZ '2022-01-01 00:00:00+00', "
                "'air_concentration_ugm3', 'PM10', 5, 's', 'x')")
    assert not readings_groups_current(con, "c")
    assert measured()["unique_key"][0] == 2             # a row added around the loader: back to the scan


def test_results_as_json_equal_what_gx_converts() -> None:
    """quality.gx._json copies plain JSON itself and leaves everything else to GX's conversion."""
    import enum
    import math

    import numpy as np
    from great_expectations.util import convert_to_json_serializable

    from quality.gx import _json

    class Kind(enum.Enum):
        A = "a"

    values = [
        {"success": True, "result": {"observed_value": 3, "partial_unexpected_index_list": [{"city_id": "c"}],
                                     "unexpected_percent": 12.5, "missing": None, "inf": math.inf}},
        [1, "x", False, None, -0.0], math.nan, {"nested": [math.nan, {"n": np.int64(4)}]},
        {"tuple": (1, 2)}, {1: "numeric key"}, Kind.A, np.float64(1.5), {"kind": Kind.A}, "", 0,
    ]
    for value in values:
        assert _json(value) == convert_to_json_serializable(_copy(value)), value
    plain = {"a": [{"b": 1}]}
    converted = _json(plain)
    converted["a"][0]["b"] = 2
    assert plain == {"a": [{"b": 1}]}  # a copy, as GX's conversion makes


def _copy(value: object) -> object:
    import copy

    return copy.deepcopy(value)  # GX may convert in place
