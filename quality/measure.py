"""Measure a suite in DuckDB: failing counts, evaluated counts and small samples.

All row checks of a table are answered by one scan (`count(*) FILTER (WHERE rule)` per check);
query checks and computed checks run their own (small) queries; a suite's `scan` measures the
rest in one pass. Samples are fetched afterwards and only for checks that failed, so a clean
table costs exactly one scan for its row rules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb

from canonical.sqltext import ident
from quality.model import (
    Check,
    ComputedCheck,
    ExpectationCheck,
    Measurement,
    QueryCheck,
    RowCheck,
    SuiteContext,
    TableSuite,
)
from quality.sql import context_params, fetch_sample, rows_as_dicts, run
from quality.suites import KEYS, SAMPLE_COLUMNS


def _params(ctx: SuiteContext) -> dict[str, Any]:
    return context_params(ctx, now=datetime.now(UTC), bound=ctx.settings.yoy_bound)


# ---- batched: one statement per check for all the cities of a stage ---------------------------------
#
# A check's SQL is written for one city ($city, $years). For many cities it runs once, correlated with a
# small relation of the cities and their years (`__c`): $city becomes __c.__city and $years __c.__years,
# so a stage issues one query per check, not one per check and city. Samples (only of failing checks)
# are fetched for all failing cities in one statement when the check orders its rows by all their
# columns (`ORDER BY ALL`, the sample is then the same rows as one city's query gives: a lateral join
# keeps no order of its own); else per city with the check's own SQL.

_CITY = re.compile(r"\$city\b")
_YEARS = re.compile(r"\$years\b")
_CITIES = "(SELECT unnest($__cities) AS __city, unnest($__years) AS __years) __c"
_ORDERED_BY_ALL = re.compile(r"\bORDER\s+BY\s+ALL\s*$", re.IGNORECASE)


def _correlated(sql: str) -> str:
    """The check's SQL for the row of `__c`."""
    return _YEARS.sub("__c.__years", _CITY.sub("__c.__city", sql))


def _batch_params(contexts: Sequence[SuiteContext]) -> dict[str, Any]:
    first = contexts[0]
    return {"__cities": [c.city_id for c in contexts], "__years": [list(c.reporting_years) for c in contexts],
            "now": datetime.now(UTC), "bound": first.settings.yoy_bound}


def _row_scans(con: duckdb.DuckDBPyConnection, contexts: Sequence[SuiteContext], table: str,
               checks: list[RowCheck]) -> dict[str, tuple[int, list[Measurement]]]:
    counts = "".join(f", count(t.city_id) FILTER (WHERE {_correlated(c.fail_when)}) AS c{int(i)}"
                     for i, c in enumerate(checks))
    sql = (f"SELECT __c.__city, count(t.city_id){counts} FROM {_CITIES} "
           f"LEFT JOIN {ident(table)} t ON t.city_id = __c.__city GROUP BY __c.__city")
    found = {str(row[0]): row[1:] for row in run(con, sql, **_batch_params(contexts)).fetchall()}
    out: dict[str, tuple[int, list[Measurement]]] = {}
    for ctx in contexts:
        row = found[ctx.city_id]
        total, measurements = int(row[0]), []
        for check, failing in zip(checks, row[1:], strict=True):
            sample = []
            if failing:
                columns = check.sample_columns or SAMPLE_COLUMNS.get(table, KEYS.get(table, ()))
                sample = fetch_sample(con, table, check.fail_when, columns,
                                      [c for c in KEYS[table] if c != "city_id"], ctx, detail=check.detail,
                                      **_params(ctx))
            measurements.append(Measurement(check, int(failing or 0), total, sample))
        out[ctx.city_id] = (total, measurements)
    return out


def _table_counts(con: duckdb.DuckDBPyConnection, contexts: Sequence[SuiteContext], table: str) -> dict[str, int]:
    return {city: total for city, (total, _) in _row_scans(con, contexts, table, []).items()}


# Up to this many cities, a query check runs once per city with the city as a constant: correlated with a
# relation of cities, DuckDB scans every city's rows (one city of 1,000: 3.6 s for the query checks of both
# stages, 0.5 s with constants), which is what a run where one city changed pays.
PER_CITY_QUERIES_MAX = 4


def _queries(con: duckdb.DuckDBPyConnection, contexts: Sequence[SuiteContext], check: QueryCheck,
             totals: dict[str, int]) -> dict[str, Measurement]:
    if len(contexts) <= PER_CITY_QUERIES_MAX:
        evaluated = f", ({check.evaluated_sql}) AS evaluated" if check.evaluated_sql else ", NULL AS evaluated"
        sql = f"SELECT (SELECT {check.count_sql} FROM ({check.failing_sql})) AS failing{evaluated}"
        found = {ctx.city_id: run(con, sql, **_params(ctx)).fetchall()[0] for ctx in contexts}
    else:
        evaluated = (f", ({_correlated(check.evaluated_sql)}) AS evaluated" if check.evaluated_sql
                     else ", NULL AS evaluated")
        sql = (f"SELECT __c.__city, (SELECT {check.count_sql} FROM ({_correlated(check.failing_sql)})) AS failing"
               f"{evaluated} FROM {_CITIES}")
        found = {str(row[0]): row[1:] for row in run(con, sql, **_batch_params(contexts)).fetchall()}
    out = {}
    counted: dict[str, tuple[int, int]] = {}  # city -> (failing, units) of the cities with something evaluated
    for ctx in contexts:
        failing_value, evaluated_value = found[ctx.city_id]
        units = totals.get(ctx.city_id, 0)
        if check.evaluated_sql:
            units = int(evaluated_value or 0)
            if units == 0:
                out[ctx.city_id] = Measurement(check, None, 0, note="inputs missing: nothing to evaluate")
                continue
        counted[ctx.city_id] = (int(failing_value or 0), units)
    samples = _samples(con, [ctx for ctx in contexts if counted.get(ctx.city_id, (0, 0))[0]], check)
    for city, (failing, units) in counted.items():
        out[city] = Measurement(check, failing, units, samples.get(city, []))
    return out


def _samples(con: duckdb.DuckDBPyConnection, contexts: Sequence[SuiteContext], check: QueryCheck
             ) -> dict[str, list[dict[str, Any]]]:
    """The first failing rows of each city (`sample_size`, the same in one batch of measure_suites)."""
    if not contexts:
        return {}
    limit = int(contexts[0].settings.sample_size)
    if len(contexts) <= PER_CITY_QUERIES_MAX or not _ORDERED_BY_ALL.search(check.failing_sql.strip()):
        return {ctx.city_id: rows_as_dicts(run(con, f"SELECT * FROM ({check.failing_sql}) LIMIT {limit}",
                                               **_params(ctx))) for ctx in contexts}
    cur = run(con, f"SELECT __c.__city, __s.* FROM {_CITIES}, LATERAL (SELECT * FROM "
                   f"({_correlated(check.failing_sql)}) ORDER BY ALL LIMIT {limit}) __s ORDER BY ALL",
              **_batch_params(contexts))
    out: dict[str, list[dict[str, Any]]] = {ctx.city_id: [] for ctx in contexts}
    for row in rows_as_dicts(cur):
        out[str(row.pop("__city"))].append(row)
    return out


def measure_suites(con: duckdb.DuckDBPyConnection, contexts: Sequence[SuiteContext], suites: Sequence[TableSuite]
                   ) -> dict[str, list[Measurement]]:
    """Every check of the suites that DuckDB measures, for every city, each city's in the suites' order
    (ExpectationChecks are GX's: `table_frame` reads their rows). Row and query checks run once for all
    cities; computed checks with `measure_many` once for all, other computed checks per city, suite
    scans per city with what they share asked once. Cities whose quality settings differ (the
    year-over-year bound) are measured in separate batches."""
    out: dict[str, list[Measurement]] = {ctx.city_id: [] for ctx in contexts}
    batches: dict[Any, list[SuiteContext]] = {}
    for ctx in contexts:
        batches.setdefault(ctx.settings, []).append(ctx)
    for batch in batches.values():
        for suite in suites:
            for city, found in _measure_suite_batch(con, batch, suite).items():
                out[city] += found
    return out


def _measure_suite_batch(con: duckdb.DuckDBPyConnection, contexts: Sequence[SuiteContext], suite: TableSuite
                         ) -> dict[str, list[Measurement]]:
    rows = [c for c in suite.checks if isinstance(c, RowCheck)]
    found: dict[str, list[Measurement]] = {ctx.city_id: [] for ctx in contexts}
    totals: dict[str, int] = {}
    if rows:
        for city, (total, measured) in _row_scans(con, contexts, suite.table, rows).items():
            totals[city] = total
            found[city] += measured
    elif suite.table in KEYS:
        totals = _table_counts(con, contexts, suite.table)
    rest: list[Check] = []
    for check in suite.checks:
        if isinstance(check, QueryCheck):
            for city, measurement in _queries(con, contexts, check, totals).items():
                found[city].append(measurement)
        elif isinstance(check, ComputedCheck) and check.measure_many is not None:
            for city, measurement in check.measure_many(con, contexts).items():
                found[city].append(measurement)
        elif isinstance(check, ComputedCheck):
            assert check.measure is not None
            for ctx in contexts:
                found[ctx.city_id].append(check.measure(con, ctx))
        elif not isinstance(check, RowCheck | ExpectationCheck):
            rest.append(check)
    if rest:
        if suite.scan is None:
            raise TypeError(f"suite {suite.table} has checks no measure handles: {[c.name for c in rest]}")
        for city, measured in suite.scan(con, contexts, rest).items():
            found[city] += measured
    order = {check.key: i for i, check in enumerate(suite.checks)}
    return {city: sorted(measured, key=lambda m: order[m.check.key]) for city, measured in found.items()}


def measure_suite(con: duckdb.DuckDBPyConnection, ctx: SuiteContext, suite: TableSuite) -> list[Measurement]:
    """One city's measurements of one suite (a batch of one)."""
    return _measure_suite_batch(con, [ctx], suite)[ctx.city_id]


def table_frame(con: duckdb.DuckDBPyConnection, table: str, city_ids: Sequence[str], columns: Sequence[str]
                ) -> Any:
    """The rows of `table` for the given cities as one pandas frame (what GX validates), with the
    warehouse rowid as `_rowid` (the rows GX finds failing are marked by it, in the same transaction)."""
    from quality.gx import ROWID

    wanted = list(dict.fromkeys(["city_id", *columns]))
    cols = ", ".join(ident(c) for c in wanted)
    sql = (f"SELECT rowid AS {ROWID}, {cols} FROM {ident(table)} WHERE city_id IN (SELECT unnest($cities)) "
           "ORDER BY rowid")
    return con.execute(sql.replace("$cities", "?"), [list(city_ids)]).df()
