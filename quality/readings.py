"""The `core_readings` suite, without rescanning the (possibly 100-million-row) hourly table.

The group facts come from `core_readings_groups` (migration 0004), which the loader keeps exact in
the same transaction as the rows (rebuilt on a replace, merged with the appended rows on an
append): per source, station, variable, data point and year the row count, the readings off the
full hour and the distinct hours as a bitmap (8,784 bits). Code lists, station references,
coverage, time-series gaps and uniqueness are decided on those few thousand rows: for hourly data
"no two readings of a series in the same hour" is exactly "rows == distinct hours". When any
reading is off the full hour (sub-hourly data) uniqueness falls back to an exact GROUP BY on the key.

The value rules (NULLs, negative, non-finite, future readings) always read the table itself, so
they also see rows written around the loader, but as plain comparisons DuckDB answers from its zone
maps: a row group whose min/max (and NULL) statistics rule the predicate out is never read, so a
clean table costs a few milliseconds at any size. (`NOT isfinite(value)` cannot be pruned; in DuckDB
NaN sorts above +inf, so `value > max double OR value < -max double` is the same set, prunable.)

The aggregates are trusted when their row count equals the table's for every source of the city
(`warehouse/load.py:mismatched_groups`, one query for all the cities checked): a write around the
loader that adds or removes rows switches the suite back to one grouped scan of the table (`_scan`),
as does a warehouse whose aggregates were never built.

The year comes from `make_timestamp(epoch_us(observed_at))` (a plain UTC timestamp): `year(x AT TIME
ZONE 'UTC')` on a TIMESTAMPTZ goes through ICU per row and costs more than all checks together.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from canonical.sqltext import ident, literal
from quality import metadata as md
from quality.model import Check, Measurement, SuiteContext, TableSuite
from quality.schema import required_columns, schema_check
from quality.sql import fetch_sample, first_row, run
from warehouse.derive import days_with_readings
from warehouse.load import mismatched_groups

TABLE = "core_readings"
HOUR_US = 3_600_000_000


@dataclass(frozen=True)
class ScanCheck(Check):
    """A check measured from the grouped readings scan; `rows_when` selects its failing rows (for samples)."""

    rows_when: str | None = None


@dataclass
class Group:
    source_id: str | None
    station_id: str | None
    variable: str | None
    data_point: str | None
    year: int | None
    n: int
    nulls: int
    null_time: int
    off_grid: int
    hours: int
    negative: int
    non_finite: int
    future: int
    bitmap: str | None = None  # the hours of the year as 0/1 text, only for daily samplers (days are counted)

    def key(self) -> dict[str, Any]:
        return {"station_id": self.station_id, "variable": self.variable, "data_point": self.data_point,
                "year": self.year}


def _checks() -> tuple[ScanCheck, ...]:
    required = required_columns(TABLE)
    return (
        ScanCheck(TABLE, "not_null", "error", f"no NULL in the required columns ({', '.join(required)})",
                  rows_when=" OR ".join(f'"{c}" IS NULL' for c in required)),
        ScanCheck(TABLE, "unique_key", "error",
                  "one reading per (station_id, variable, data_point, observed_at); failing = surplus rows"),
        ScanCheck(TABLE, "variable_codelist", "error", "variable is a canonical variable",
                  rows_when=f"NOT list_contains({md.sql_list(sorted(md.canonical_units()))}, variable)"),
        ScanCheck(TABLE, "data_point_codelist", "warning",
                  "data point (pollutant) is one the catalogue's formulas read for the variable"),
        ScanCheck(TABLE, "finite_value", "error", "value is a finite number", rows_when="NOT isfinite(value)"),
        ScanCheck(TABLE, "non_negative", "error", "value >= 0 (concentrations are amounts)",
                  rows_when=f"value < 0 AND list_contains({md.sql_list(md.non_negative_variables())}, variable)"),
        ScanCheck(TABLE, "not_in_future", "error", "observed_at is not after the time of the check",
                  rows_when="observed_at > $now"),
        ScanCheck(TABLE, "station_reference", "warning", "station_id is a station in core_points",
                  rows_when="station_id NOT IN (SELECT point_id FROM core_points WHERE city_id = $city)"),
        ScanCheck(TABLE, "coverage", "warning",
                  "each station-year of a reporting year has the share of its hours (of its days for daily "
                  "samplers) the city's annual-mean rule asks (air_quality.min_coverage_pct, 75 % by default; "
                  "the rule in warehouse/derive.py); failing = station-years below"),
        ScanCheck(TABLE, "time_series_complete", "warning",
                  "every reporting year present for each station series that has any year; failing = missing "
                  "station-years"),
    )


def readings_suite() -> TableSuite:
    return TableSuite(TABLE, (schema_check(TABLE), *_checks()), scan=scan_readings)


def _scan(con: duckdb.DuckDBPyConnection, ctx: SuiteContext, now: datetime) -> list[Group]:
    nulls = " OR ".join(f"{ident(c)} IS NULL" for c in required_columns(TABLE))
    sql = f"""
        WITH r AS (SELECT *, make_timestamp(epoch_us(observed_at)) AS ts FROM core_readings WHERE city_id = $city)
        SELECT source_id, station_id, variable, data_point, year(ts) AS year, count(*) AS n,
               count(*) FILTER (WHERE {nulls}) AS nulls,
               count(*) FILTER (WHERE observed_at IS NULL) AS null_time,
               count(*) FILTER (WHERE epoch_us(observed_at) % {HOUR_US} <> 0) AS off_grid,
               coalesce(bit_count(bitstring_agg((dayofyear(ts) - 1) * 24 + hour(ts), 0, 8783)), 0) AS hours,
               count(*) FILTER (WHERE value < 0) AS negative,
               count(*) FILTER (WHERE NOT isfinite(value)) AS non_finite,
               count(*) FILTER (WHERE observed_at > $now) AS future,
               CASE WHEN list_contains($daily, any_value(source_id))  -- source_id is a group key
                    THEN CAST(bitstring_agg((dayofyear(ts) - 1) * 24 + hour(ts), 0, 8783) AS VARCHAR) END AS bitmap
        FROM r GROUP BY ALL"""
    return [Group(*row) for row in run(con, sql, city=ctx.city_id, now=now, daily=_daily_sources(con, ctx)).fetchall()]


def _daily_sources(con: duckdb.DuckDBPyConnection, ctx: SuiteContext) -> list[str]:
    """The city's readings sources of daily samplers (one value a day: coverage counts days)."""
    return [row[0] for row in run(con, """SELECT source_id FROM core_source_state
                                        WHERE city_id = $city AND readings_sampling = 'daily'""",
                                  city=ctx.city_id).fetchall()]


# The value rules as comparisons DuckDB prunes with its zone maps (one branch, one table scan each).
_MAX_DOUBLE = "1.7976931348623157e308"
_VALUE_RULES = {
    "negative": "value < 0",
    "non_finite": f"(value > {_MAX_DOUBLE} OR value < -{_MAX_DOUBLE})",
    "future": "observed_at > $now",
    "null_time": "observed_at IS NULL",
}


def _groups_from_aggregates(con: duckdb.DuckDBPyConnection, ctx: SuiteContext, now: datetime) -> list[Group]:
    groups = {tuple(row[:5]): Group(row[0], row[1], row[2], row[3], row[4], n=row[5], nulls=0, null_time=0,
                                    off_grid=row[6], hours=row[7], negative=0, non_finite=0, future=0, bitmap=row[8])
              for row in run(con, """SELECT source_id, station_id, variable, data_point, year, n, off_grid,
                                            coalesce(bit_count(hours), 0),
                                            CASE WHEN list_contains($daily, source_id) THEN CAST(hours AS VARCHAR) END
                                     FROM core_readings_groups WHERE city_id = $city""", city=ctx.city_id,
                             daily=_daily_sources(con, ctx)).fetchall()}
    nulls = " OR ".join(f"{ident(c)} IS NULL" for c in required_columns(TABLE))
    branches = [f"""SELECT {literal(name)} AS rule, source_id, station_id, variable, data_point,
                           CAST(year(make_timestamp(epoch_us(observed_at))) AS INTEGER) AS year, count(*) AS n
                    FROM core_readings WHERE city_id = $city AND {condition} GROUP BY ALL"""
                for name, condition in {**_VALUE_RULES, "nulls": nulls}.items()]
    for rule, *key, count in run(con, " UNION ALL ".join(branches), city=ctx.city_id, now=now).fetchall():
        group = groups.get(tuple(key))
        if group is None:  # a row moved to a new key around the loader: count it where it is now
            group = groups[tuple(key)] = Group(key[0], key[1], key[2], key[3], key[4], n=0, nulls=0, null_time=0,
                                               off_grid=0, hours=0, negative=0, non_finite=0, future=0)
        setattr(group, rule, int(count))
    return list(groups.values())


def _exact_surplus(con: duckdb.DuckDBPyConnection, ctx: SuiteContext) -> int:
    """Surplus rows by an exact GROUP BY on the key (the slow path, for sub-hourly readings)."""
    row = first_row(run(con, """SELECT coalesce(sum(n - 1), 0) FROM (
                         SELECT count(*) AS n FROM core_readings WHERE city_id = $city
                         GROUP BY station_id, variable, data_point, observed_at HAVING count(*) > 1)""",
              city=ctx.city_id))
    return int(row[0]) if row else 0


def _duplicate_sample(con: duckdb.DuckDBPyConnection, ctx: SuiteContext, stations: list[str | None]) -> list[
        dict[str, Any]]:
    cur = run(con, """SELECT station_id, variable, data_point, observed_at, count(*) AS rows FROM core_readings
                      WHERE city_id = $city AND list_contains($stations, station_id)
                      GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL LIMIT $n""",
              city=ctx.city_id, stations=stations, n=ctx.settings.sample_size)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _hours_in_year(year: int) -> int:
    return 8784 if calendar.isleap(year) else 8760


def _coverage(group: Group) -> tuple[float, int, str]:
    """(share of the year covered, covered count, unit): days for a daily sampler, else hours."""
    hours_in_year = _hours_in_year(group.year or 0)
    if group.bitmap is not None:
        days = days_with_readings(group.bitmap)
        return days / (hours_in_year // 24), days, "days"
    return group.hours / hours_in_year, group.hours, "hours"


def scan_readings(con: duckdb.DuckDBPyConnection, contexts: Sequence[SuiteContext], checks: Sequence[Check]
                  ) -> dict[str, list[Measurement]]:
    """Each city's readings checks, from its maintained aggregates where they cover exactly its rows
    (asked for every city in one query: per city it was 26 s of checking 1,000), else one grouped scan."""
    mismatched = mismatched_groups(con, [ctx.city_id for ctx in contexts])
    return {ctx.city_id: _scan_city(con, ctx, checks, groups_current=not mismatched[ctx.city_id])
            for ctx in contexts}


def _scan_city(con: duckdb.DuckDBPyConnection, ctx: SuiteContext, checks: Sequence[Check], *,
               groups_current: bool) -> list[Measurement]:
    now = datetime.now(UTC)
    groups = _groups_from_aggregates(con, ctx, now) if groups_current else _scan(con, ctx, now)
    total = sum(g.n for g in groups)
    canonical = set(md.canonical_units())
    non_negative = set(md.non_negative_variables())
    allowed_points = md.variable_data_points()
    stations = {row[0] for row in con.execute("SELECT point_id FROM core_points WHERE city_id = ?",
                                              [ctx.city_id]).fetchall()}
    years = set(ctx.reporting_years)

    def point_ok(g: Group) -> bool:
        allowed = allowed_points.get(g.variable or "")
        return g.data_point in allowed if allowed else g.data_point is None

    off_grid = sum(g.off_grid for g in groups)
    surplus_by_group = {id(g): max(g.n - g.null_time - g.hours, 0) for g in groups}
    surplus = _exact_surplus(con, ctx) if off_grid else sum(surplus_by_group.values())
    series: dict[tuple[Any, ...], set[int]] = {}
    for g in groups:
        series.setdefault((g.station_id, g.variable, g.data_point), set()).add(g.year or 0)
    coverage = {id(g): _coverage(g) for g in groups if g.year in years}
    low = [g for g in groups if id(g) in coverage and coverage[id(g)][0] < ctx.min_coverage]
    gaps = [{"station_id": s, "variable": v, "data_point": dp, "missing_year": y}
            for (s, v, dp), seen in sorted(series.items(), key=str) for y in sorted(years - seen)]

    # failing count, evaluated units, failing groups (for consequences) per check name
    found: dict[str, tuple[int, int, list[Group]]] = {
        "not_null": (sum(g.nulls for g in groups), total, [g for g in groups if g.nulls]),
        "unique_key": (surplus, total, [g for g in groups if surplus_by_group[id(g)]] if not off_grid
                       else [g for g in groups if g.off_grid]),
        "variable_codelist": (sum(g.n for g in groups if g.variable not in canonical), total,
                              [g for g in groups if g.variable not in canonical]),
        "data_point_codelist": (sum(g.n for g in groups if not point_ok(g)), total, []),
        "finite_value": (sum(g.non_finite for g in groups), total, [g for g in groups if g.non_finite]),
        "non_negative": (sum(g.negative for g in groups if g.variable in non_negative), total,
                         [g for g in groups if g.negative and g.variable in non_negative]),
        "not_in_future": (sum(g.future for g in groups), total, [g for g in groups if g.future]),
        "station_reference": (sum(g.n for g in groups if g.station_id not in stations), total, []),
        "coverage": (len(low), sum(1 for g in groups if g.year in years), []),
        "time_series_complete": (len(gaps), len(series) * len(years), []),
    }
    out = []
    for check in checks:
        failing, evaluated, failing_groups = found[check.name]
        sample: list[dict[str, Any]] = []
        if failing and isinstance(check, ScanCheck) and check.rows_when:
            sample = fetch_sample(con, TABLE, check.rows_when, ("station_id", "observed_at", "variable", "data_point",
                                                                "value", "source_id"),
                                  ("station_id", "observed_at"), ctx, now=now)
        elif failing and check.name == "unique_key":
            sample = _duplicate_sample(con, ctx, sorted({g.station_id for g in failing_groups}, key=str))
        elif failing and check.name == "coverage":
            sample = [{**g.key(), "covered": coverage[id(g)][1], "unit": coverage[id(g)][2],
                       "coverage": round(coverage[id(g)][0], 4), "needed": ctx.min_coverage}
                      for g in low[: ctx.settings.sample_size]]
        elif failing and check.name == "time_series_complete":
            sample = gaps[: ctx.settings.sample_size]
        elif failing:
            bad = [g for g in groups if (check.name == "data_point_codelist" and not point_ok(g))
                   or (check.name == "station_reference" and g.station_id not in stations)]
            sample = [{**g.key(), "rows": g.n} for g in bad[: ctx.settings.sample_size]]
        # Observation-level consequences: the station annual means computed from failing groups.
        affected = [{"year": g.year, "variable": g.variable, "data_point": g.data_point, "area_type": "station",
                     "area_id": g.station_id} for g in failing_groups if g.year is not None]
        out.append(Measurement(check, failing, evaluated, sample, affected=affected))
    return out
