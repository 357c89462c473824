"""Measure a suite in DuckDB: failing counts, evaluated counts and small samples.

All row checks of a table are answered by one scan (`count(*) FILTER (WHERE rule)` per check);
query checks and computed checks run their own (small) queries; a suite's `scan` measures the
rest in one pass. Samples are fetched afterwards and only for checks that failed, so a clean
table costs exactly one scan for its row rules.
"""

from __future__ import annotations

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
from quality.sql import context_params, fetch_sample, first_row, rows_as_dicts, run
from quality.suites import KEYS, SAMPLE_COLUMNS


def _params(ctx: SuiteContext) -> dict[str, Any]:
    return context_params(ctx, now=datetime.now(UTC), bound=ctx.settings.yoy_bound)


def _row_scan(con: duckdb.DuckDBPyConnection, ctx: SuiteContext, table: str, checks: list[RowCheck]
              ) -> tuple[int, list[Measurement]]:
    counts = ", ".join(f"count(*) FILTER (WHERE {c.fail_when}) AS c{int(i)}" for i, c in enumerate(checks))
    row = first_row(run(con, f"SELECT count(*), {counts} FROM {ident(table)} WHERE city_id = $city", **_params(ctx)))
    assert row is not None
    total = int(row[0])
    out = []
    for check, failing in zip(checks, row[1:], strict=True):
        sample = []
        if failing:
            columns = check.sample_columns or SAMPLE_COLUMNS.get(table, KEYS.get(table, ()))
            sample = fetch_sample(con, table, check.fail_when, columns, [c for c in KEYS[table] if c != "city_id"],
                                  ctx, detail=check.detail, **_params(ctx))
        out.append(Measurement(check, int(failing), total, sample))
    return total, out


def _query(con: duckdb.DuckDBPyConnection, ctx: SuiteContext, check: QueryCheck, total: int) -> Measurement:
    params = _params(ctx)
    evaluated = total
    if check.evaluated_sql:
        row = first_row(run(con, check.evaluated_sql, **params))
        evaluated = int(row[0] or 0) if row else 0
        if evaluated == 0:
            return Measurement(check, None, 0, note="inputs missing: nothing to evaluate")
    row = first_row(run(con, f"SELECT {check.count_sql} FROM ({check.failing_sql})", **params))
    failing = int(row[0] or 0) if row else 0
    sample = rows_as_dicts(run(con, f"SELECT * FROM ({check.failing_sql}) LIMIT {int(ctx.settings.sample_size)}",
                               **params)) if failing else []
    return Measurement(check, failing, evaluated, sample)


def measure_suite(con: duckdb.DuckDBPyConnection, ctx: SuiteContext, suite: TableSuite) -> list[Measurement]:
    """Every check of the suite that DuckDB measures, in the suite's order (ExpectationChecks are GX's:
    `table_frame` reads their rows)."""
    rows = [c for c in suite.checks if isinstance(c, RowCheck)]
    total, found = 0, list[Measurement]()
    if rows:
        total, found = _row_scan(con, ctx, suite.table, rows)
    elif suite.table in KEYS:
        row = first_row(run(con, f"SELECT count(*) FROM {ident(suite.table)} WHERE city_id = $city", city=ctx.city_id))
        total = int(row[0]) if row else 0
    rest: list[Check] = []
    for check in suite.checks:
        if isinstance(check, QueryCheck):
            found.append(_query(con, ctx, check, total))
        elif isinstance(check, ComputedCheck):
            assert check.measure is not None
            found.append(check.measure(con, ctx))
        elif not isinstance(check, RowCheck | ExpectationCheck):
            rest.append(check)
    if rest:
        if suite.scan is None:
            raise TypeError(f"suite {suite.table} has checks no measure handles: {[c.name for c in rest]}")
        found += suite.scan(con, ctx, rest)
    order = {check.key: i for i, check in enumerate(suite.checks)}
    return sorted(found, key=lambda m: order[m.check.key])


def table_frame(con: duckdb.DuckDBPyConnection, table: str, city_ids: Sequence[str], columns: Sequence[str]
                ) -> Any:
    """The rows of `table` for the given cities as one pandas frame (what GX validates), with the
    warehouse rowid as `_rowid` (the rows GX finds failing are marked by it, in the same transaction)."""
    from quality.gx import ROWID

    wanted = list(dict.fromkeys(["city_id", *columns]))
    cols = ", ".join(ident(c) for c in wanted)
    sql = f"SELECT rowid AS {ROWID}, {cols} FROM {ident(table)} WHERE list_contains($cities, city_id) ORDER BY rowid"
    return con.execute(sql.replace("$cities", "?"), [list(city_ids)]).df()
