"""The quality suites: one place per table, generated from metadata.

Each `TableSuite` lists a table's checks. Schema, NOT NULL columns and keys come from the
migrations (`schema.py`); units, count variables, data points, percentage KPIs and the
numerator <= denominator rules come from `canonical/variables.yaml` and the catalogue
(`metadata.py`). Only facts that exist nowhere else (GTFS code lists, coordinate ranges) are
written here. `core_suites` covers what a load writes (the parsed sources in the core tables and
`observations`); `kpi_suites` covers `kpi_values` and the U4SSC plausibility rules.

Severity: `error` checks are blocking (the row is unusable: KPIs computed from it become
`failed_check`, and `citykpi run --strict` publishes nothing); `warning` checks are reported only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from canonical.sqltext import ident, literal
from quality import metadata as md
from quality.consistency import consistency_checks
from quality.expectations import kpi_expectations, observations_expectations, scores_expectations
from quality.model import (
    Check,
    ComputedCheck,
    Measurement,
    QueryCheck,
    RowCheck,
    SuiteContext,
    TableSuite,
)
from quality.plausibility import plausibility_suite
from quality.readings import readings_suite
from quality.schema import required_columns, schema_check
from quality.source_rows import sources_suite
from sources.iso_countries import ISO_3166_ALPHA2

KEYS: dict[str, tuple[str, ...]] = {
    "observations": ("city_id", "year", "variable", "data_point", "area_type", "area_id"),
    "core_areas": ("city_id", "area_type", "area_id"),
    "core_points": ("city_id", "point_type", "point_id"),
    "core_transit_stops": ("city_id", "stop_id"),
    "core_readings": ("city_id", "station_id", "variable", "data_point", "observed_at"),
    "kpi_values": ("city_id", "year", "indicator_id", "data_point"),
    "kpi_scores": ("city_id", "year", "indicator_id", "data_point"),
}
# Columns shown for a failing row: its key, what was checked and where it came from.
SAMPLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "observations": ("year", "variable", "data_point", "area_type", "area_id", "value", "unit", "source_id",
                     "source_record", "derivation"),
    "core_areas": ("area_type", "area_id", "name", "area_ha", "source_id", "source_record"),
    "core_points": ("point_type", "point_id", "name", "lon", "lat", "district_id", "source_id", "source_record"),
    "core_transit_stops": ("stop_id", "name", "lon", "lat", "location_type", "route_types", "departures",
                           "source_id"),
    "core_readings": ("station_id", "observed_at", "variable", "data_point", "value", "source_id"),
    "kpi_values": ("year", "indicator_id", "data_point", "value", "unit", "status", "status_reason"),
    "kpi_scores": ("year", "indicator_id", "data_point", "value", "unit", "target", "points", "band", "status",
                   "status_reason"),
}
# GTFS reference: stops.txt location_type 0-4; routes.txt route_type 0-7, 11, 12 and the extended
# (Google Transit) types 100-1702.
GTFS_LOCATION_TYPES = (0, 1, 2, 3, 4)
_GTFS_ROUTE_TYPE_OK = "(c BETWEEN 0 AND 7 OR c IN (11, 12) OR c BETWEEN 100 AND 1702)"


# ---- generic checks (every table) ------------------------------------------------------------


def _not_null_check(table: str) -> RowCheck:
    required = required_columns(table)
    nulls = " OR ".join(f"{ident(c)} IS NULL" for c in required)
    listed = ", ".join(f"CASE WHEN {ident(c)} IS NULL THEN {literal(c)} END" for c in required)
    return RowCheck(table, "not_null", "error",
                    f"no NULL in the key and required columns ({', '.join(required)})",
                    fail_when=nulls, detail=f"'NULL in ' || concat_ws(', ', {listed})")


def _unique_check(table: str, flag: bool) -> QueryCheck:
    key = KEYS[table]
    cols = ", ".join(ident(c) for c in key)
    # GROUP BY treats NULLs as equal, so (.., data_point NULL, ..) duplicates count: the unique index
    # in the migrations lets them through, because SQL unique indexes treat NULLs as distinct.
    failing = f"""SELECT {cols}, count(*) AS n FROM {ident(table)} WHERE city_id = $city
                  GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL"""
    joins = " AND ".join(f"t.{ident(c)} IS NOT DISTINCT FROM d.{ident(c)}" for c in key)
    flag_sql = f"""SELECT t.rowid, 'duplicate key (' || d.n || ' rows)' AS detail FROM {ident(table)} t
                   JOIN ({failing}) d ON {joins} WHERE t.city_id = $city""" if flag else None
    return QueryCheck(table, "unique_key", "error",
                      f"one row per ({', '.join(key)}); the failing count is the number of surplus rows",
                      failing_sql=failing, count_sql="coalesce(sum(n - 1), 0)", flag_sql=flag_sql)


def _generic(table: str, *, flag: bool = False) -> list[Check]:
    return [schema_check(table), _not_null_check(table), _unique_check(table, flag)]


# ---- observations -----------------------------------------------------------------------------


def _share_check(rule: md.ShareRule) -> QueryCheck:
    points = ("AND n.data_point IS NULL" if not rule.numerator_data_points
              else f"AND list_contains({md.sql_list(rule.numerator_data_points)}, n.data_point)")
    base = f"""FROM observations n JOIN observations d
               ON d.city_id = n.city_id AND d.year = n.year AND d.area_type = n.area_type AND d.area_id = n.area_id
               AND d.variable = {md.sql_literal(rule.denominator)} AND d.data_point IS NULL
               WHERE n.city_id = $city AND n.variable = {md.sql_literal(rule.numerator)} {points}"""
    return QueryCheck(
        "observations", rule.name, "error",
        f"{rule.numerator} <= {rule.denominator} for the same year and area (inputs of the percentage "
        f"KPI {rule.indicator_id}: a share cannot exceed its whole)",
        failing_sql=f"""SELECT n.year, n.area_type, n.area_id, n.data_point,
                        n.value AS {ident(rule.numerator)}, d.value AS {ident(rule.denominator)},
                        n.source_record {base} AND n.value > d.value ORDER BY ALL""",
        evaluated_sql=f"SELECT count(*) {base}",
        flag_sql=f"""SELECT n.rowid,
                       printf('%s %,.0f > %s %,.0f', n.variable, n.value, {md.sql_literal(rule.denominator)}, d.value)
                     AS detail {base} AND n.value > d.value""")


def _time_series_check(table: str, columns: Sequence[str], year_sql: str, where: str = "") -> QueryCheck:
    """Every reporting year present for each series that has a value in any year."""
    series = ", ".join(ident(c) for c in columns)
    return QueryCheck(
        table, "time_series_complete", "warning",
        f"every reporting year present for each series ({series}) that has any year",
        failing_sql=f"""WITH s AS (SELECT DISTINCT {series}, {year_sql} AS year FROM {ident(table)}
                                  WHERE city_id = $city {where}),
                             series AS (SELECT DISTINCT {series} FROM s)
                        SELECT series.*, y.year AS missing_year FROM series, (SELECT unnest($years) AS year) y
                        WHERE NOT EXISTS (SELECT 1 FROM s WHERE s.year = y.year AND """
                    + " AND ".join(f"s.{ident(c)} IS NOT DISTINCT FROM series.{ident(c)}" for c in columns)
                    + ") ORDER BY ALL",
        evaluated_sql=f"SELECT count(*) * len($years) FROM (SELECT DISTINCT {series} FROM {ident(table)} "
                      f"WHERE city_id = $city {where})")


def _point_rule(owner: str, allowed: dict[str, list[str]]) -> str:
    """SQL true when data_point is not among the points allowed for the row's `owner` value (or, for
    an owner without points, when it has one)."""
    whens = " ".join(f"WHEN {md.sql_literal(key)} THEN NOT coalesce(list_contains({md.sql_list(points)}, data_point), "
                     "false)" for key, points in sorted(allowed.items()))
    return f"(CASE {ident(owner)} {whens} ELSE data_point IS NOT NULL END)" if whens else "data_point IS NOT NULL"


def observations_suite() -> TableSuite:
    units = md.canonical_units()
    points = md.variable_data_points()
    point_rule = _point_rule("variable", {v: sorted(p) for v, p in points.items()})
    checks: list[Check] = [
        schema_check("observations"),
        *observations_expectations(KEYS["observations"]),  # GX on the rows: not_null, unique_key, codes, >= 0
        RowCheck("observations", "canonical_unit", "error",
                 "unit is the canonical unit of the variable (canonical/variables.yaml)",
                 fail_when=f"unit <> {md.sql_case('variable', units)}",
                 detail=f"'unit ' || unit || ' is not the canonical ' || {md.sql_case('variable', units)}"),
        RowCheck("observations", "finite_value", "error", "value is a finite number",
                 fail_when="NOT isfinite(value)", detail="'value ' || value"),
        RowCheck("observations", "whole_counts", "warning",
                 "published counts (persons, households, meters, ...) are whole numbers",
                 fail_when=f"derivation IS NULL AND value <> round(value) "
                           f"AND list_contains({md.sql_list(md.count_variables())}, variable)"),
        # Source rows only: derivations may add breakdowns (e.g. by age) that no formula reads yet.
        RowCheck("observations", "data_point_codelist", "warning",
                 "a source's data point is one the catalogue's formulas read for the variable (none if they "
                 "read none)", fail_when=f"derivation IS NULL AND {point_rule}"),
        *[_share_check(rule) for rule in md.share_rules()],
        *consistency_checks(),  # the U4SSC verifier's sums and nesting (consistency.py)
        # Rows with NULL keys are the not_null check's business, not a series of their own.
        _time_series_check("observations", ("variable", "data_point", "area_type", "area_id"), "year",
                           "AND year IS NOT NULL AND variable IS NOT NULL AND area_type IS NOT NULL "
                           "AND area_id IS NOT NULL"),
    ]
    return TableSuite("observations", tuple(checks))


def city_suite() -> TableSuite:
    def measure(con: duckdb.DuckDBPyConnection, ctx: SuiteContext) -> Measurement:
        bad = ctx.country not in ISO_3166_ALPHA2
        return Measurement(check, int(bad), 1, [{"country": ctx.country}] if bad else [])

    check = ComputedCheck("city", "country_code", "error", "the city's country is an ISO 3166-1 alpha-2 code",
                          measure=measure)
    return TableSuite("city", (check,))


# ---- other core tables ------------------------------------------------------------------------


def _coordinates(table: str) -> RowCheck:
    return RowCheck(table, "coordinates", "error", "WGS84 coordinates: lon in [-180, 180], lat in [-90, 90]",
                    fail_when="NOT (lon BETWEEN -180 AND 180 AND lat BETWEEN -90 AND 90)")


def areas_suite() -> TableSuite:
    return TableSuite("core_areas", (
        *_generic("core_areas"),
        RowCheck("core_areas", "positive_area", "error", "area_ha is a finite number > 0",
                 fail_when="NOT (area_ha > 0 AND isfinite(area_ha))"),
        RowCheck("core_areas", "geometry_present", "error", "geometry is a WKB value (at least its 9-byte header)",
                 fail_when="octet_length(geometry_wkb) < 9"),
    ))


def points_suite() -> TableSuite:
    return TableSuite("core_points", (
        *_generic("core_points"),
        _coordinates("core_points"),
        RowCheck("core_points", "district_assigned", "warning", "the point lies in one of the city's districts",
                 fail_when="district_id IS NULL AND EXISTS (SELECT 1 FROM core_areas a WHERE a.city_id = $city "
                           "AND a.area_type = 'district')"),
    ))


def transit_suite() -> TableSuite:
    return TableSuite("core_transit_stops", (
        *_generic("core_transit_stops"),
        _coordinates("core_transit_stops"),
        RowCheck("core_transit_stops", "non_negative", "error", "departures >= 0", fail_when="departures < 0"),
        RowCheck("core_transit_stops", "location_type_codelist", "error",
                 "location_type is a GTFS stops.txt location_type (0-4)",
                 fail_when=f"NOT list_contains({md.sql_list(GTFS_LOCATION_TYPES)}, location_type)"),
        RowCheck("core_transit_stops", "route_type_codelist", "warning",
                 "every route type serving the stop is a GTFS (or extended) route_type",
                 fail_when="len(list_filter(list_transform(list_filter(string_split(route_types, ','), "
                           "lambda s: trim(s) <> ''), lambda s: TRY_CAST(trim(s) AS INTEGER)), "
                           f"lambda c: NOT coalesce({_GTFS_ROUTE_TYPE_OK}, false))) > 0"),
    ))


def core_suites() -> list[TableSuite]:
    return [city_suite(), observations_suite(), areas_suite(), points_suite(), readings_suite(),
            transit_suite(), sources_suite()]


# ---- kpi_values -------------------------------------------------------------------------------


def kpi_suite() -> TableSuite:
    facts = md.indicator_facts()
    frameworks = {k: f for k, (f, _, _) in facts.items()}
    units = {k: u for k, (_, u, _) in facts.items()}
    point_rule = _point_rule("indicator_id", {k: list(p) for k, (_, _, p) in facts.items() if p})
    ids, dps = [], []
    for indicator_id, (_, _, points) in facts.items():
        for point in points or (None,):
            ids.append(indicator_id)
            dps.append(point)
    expected = f"(SELECT unnest({md.sql_list(ids)}) AS indicator_id, unnest({md.sql_list(dps)}) AS data_point)"
    checks: list[Check] = [
        schema_check("kpi_values"),
        *kpi_expectations(KEYS["kpi_values"]),  # GX on the rows: not_null, unique_key, status, ranges
        RowCheck("kpi_values", "indicator_codelist", "error",
                 "indicator_id and framework are a catalogue indicator (kpis/indicators/*.yaml)",
                 fail_when=f"framework IS DISTINCT FROM {md.sql_case('indicator_id', frameworks)}"),
        RowCheck("kpi_values", "unit_codelist", "error", "unit is the catalogue unit of the indicator",
                 fail_when=f"unit <> {md.sql_case('indicator_id', units)}"),
        RowCheck("kpi_values", "data_point_codelist", "error",
                 "data point is one of the indicator's catalogue data points (none if it has none)",
                 fail_when=point_rule),
        RowCheck("kpi_values", "status_consistent", "error",
                 "status 'computed' exactly when the value is a finite number",
                 fail_when="(status = 'computed') IS DISTINCT FROM coalesce(isfinite(value), false)",
                 detail="'status ' || status || ' with value ' || coalesce(CAST(value AS VARCHAR), 'NULL')"),
        QueryCheck("kpi_values", "complete", "error",
                   "one row per catalogue indicator, data point and reporting year",
                   failing_sql=f"""SELECT e.indicator_id, e.data_point, y.year FROM {expected} e,
                                   (SELECT unnest($years) AS year) y
                                   WHERE NOT EXISTS (SELECT 1 FROM kpi_values k WHERE k.city_id = $city
                                     AND k.year = y.year AND k.indicator_id = e.indicator_id
                                     AND k.data_point IS NOT DISTINCT FROM e.data_point) ORDER BY ALL""",
                   evaluated_sql=f"SELECT count(*) * len($years) FROM {expected}"),
    ]
    return TableSuite("kpi_values", tuple(checks))


def kpi_suites() -> list[TableSuite]:
    return [kpi_suite(), plausibility_suite()]


# ---- kpi_scores ------------------------------------------------------------------------------


def scores_suites() -> list[TableSuite]:
    """kpi_scores after the benchmarking stage: schema in DuckDB, the rows by GX (expectations.py)."""
    return [TableSuite("kpi_scores", (schema_check("kpi_scores"), *scores_expectations(KEYS["kpi_scores"])))]


def all_checks(suites: Sequence[TableSuite]) -> list[Check]:
    return [check for suite in suites for check in suite.checks]


def describe(suites: Sequence[TableSuite]) -> list[dict[str, Any]]:
    """A reviewable listing (table, check, severity, description) of the given suites."""
    return [{"table": c.table, "check": c.name, "severity": c.severity, "description": c.description}
            for c in all_checks(suites)]
