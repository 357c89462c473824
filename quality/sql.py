"""Small helpers for running check SQL: named parameters, samples, JSON-safe rows."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb

from canonical.sqltext import ident
from quality.model import SuiteContext

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def run(con: duckdb.DuckDBPyConnection, sql: str, **params: Any) -> duckdb.DuckDBPyConnection:
    """Execute with the named parameters the statement uses (DuckDB rejects unused ones)."""
    used = set(_PARAM.findall(sql))
    missing = used - set(params)
    if missing:
        raise KeyError(f"SQL uses parameter(s) {sorted(missing)} that were not given")
    return con.execute(sql, {k: v for k, v in params.items() if k in used} or None)


def first_row(cur: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row, reading the result to its end: DuckDB 2 refuses further work on a connection
    while a result is partly read (see warehouse.db.one_row)."""
    rows = cur.fetchall()
    return rows[0] if rows else None


def context_params(ctx: SuiteContext, **extra: Any) -> dict[str, Any]:
    return {"city": ctx.city_id, "years": list(ctx.reporting_years), **extra}


def json_safe(value: Any) -> Any:
    """Values as they can go into JSON (sample rows, Dagster metadata)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return "NaN"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return str(value)
    return value


def rows_as_dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description or []]
    return [json_safe(dict(zip(names, row, strict=True))) for row in cur.fetchall()]


def fetch_sample(con: duckdb.DuckDBPyConnection, table: str, where: str, columns: Sequence[str],
                 order: Sequence[str], ctx: SuiteContext, detail: str | None = None, **extra: Any
                 ) -> list[dict[str, Any]]:
    """The first failing rows of a row rule, in key order (run only for checks that failed)."""
    cols = ", ".join(ident(c) for c in columns)
    if detail:
        cols += f", {detail} AS detail"
    sql = (f"SELECT {cols} FROM {ident(table)} WHERE city_id = $city AND ({where}) "
           f"ORDER BY {', '.join(ident(c) for c in order)} LIMIT {int(ctx.settings.sample_size)}")
    return rows_as_dicts(run(con, sql, **context_params(ctx, **extra)))
