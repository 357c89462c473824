"""The expected schema of every warehouse table, read from the migrations themselves.

Rather than restating column names and types in the suites, the reference is an in-memory
DuckDB with every shipped migration applied: a new migration changes the expectation with it,
and a warehouse that drifted from its migrations (a hand-made ALTER, a half-applied change)
fails the `schema` check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import duckdb

from quality.model import ComputedCheck, Measurement, SuiteContext


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    nullable: bool


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[Column]:
    rows = con.execute("""SELECT column_name, data_type, is_nullable = 'YES' FROM information_schema.columns
                          WHERE table_name = ? AND table_schema = 'main' ORDER BY ordinal_position""",
                       [table]).fetchall()
    return [Column(name, data_type, nullable) for name, data_type, nullable in rows]


@cache
def reference_schema() -> dict[str, tuple[Column, ...]]:
    """table -> columns, as the migrations define them (computed once per process, ~10 ms)."""
    from warehouse.db import migrate

    con = duckdb.connect(":memory:")
    try:
        migrate(con)
        tables = [row[0] for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()]
        return {table: tuple(table_columns(con, table)) for table in tables}
    finally:
        con.close()


def required_columns(table: str) -> list[str]:
    """Columns the migrations declare NOT NULL."""
    return [c.name for c in reference_schema()[table] if not c.nullable]


def schema_differences(con: duckdb.DuckDBPyConnection, table: str) -> list[dict[str, str]]:
    """One entry per column that is missing, extra, of another type or lost its NOT NULL."""
    expected = {c.name: c for c in reference_schema()[table]}
    actual = {c.name: c for c in table_columns(con, table)}
    out: list[dict[str, str]] = []
    for name, column in expected.items():
        found = actual.get(name)
        if found is None:
            out.append({"column": name, "problem": "missing", "expected": column.data_type})
        elif found.data_type != column.data_type:
            out.append({"column": name, "problem": "type", "expected": column.data_type, "actual": found.data_type})
        elif found.nullable and not column.nullable:
            out.append({"column": name, "problem": "NOT NULL constraint dropped", "expected": "NOT NULL"})
    out += [{"column": name, "problem": "unexpected column", "actual": actual[name].data_type}
            for name in actual if name not in expected]
    return out


def _indexes(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, bool]:
    return {name: unique for name, unique in con.execute(
        "SELECT index_name, is_unique FROM duckdb_indexes() WHERE table_name = ?", [table]).fetchall()}


@cache
def reference_indexes() -> dict[str, dict[str, bool]]:
    from warehouse.db import migrate

    con = duckdb.connect(":memory:")
    try:
        migrate(con)
        return {table: _indexes(con, table) for table in reference_schema()}
    finally:
        con.close()


def index_differences(con: duckdb.DuckDBPyConnection, table: str) -> list[dict[str, str]]:
    actual = _indexes(con, table)
    return [{"index": name, "problem": "missing"} for name in reference_indexes().get(table, {})
            if name not in actual]


def schema_check(table: str) -> ComputedCheck:
    """Columns, types, NOT NULL constraints and indexes of `table` as the migrations made them."""

    def measure_many(con: duckdb.DuckDBPyConnection, contexts: Sequence[SuiteContext]) -> dict[str, Measurement]:
        # One table, one schema: asked once for all the cities (per city it was 14 s of checking 1,000).
        diffs = schema_differences(con, table) + index_differences(con, table)
        return {ctx.city_id: Measurement(check, len(diffs), len(reference_schema()[table]),
                                         diffs[: ctx.settings.sample_size]) for ctx in contexts}

    check = ComputedCheck(table, "schema", "error",
                          f"columns, types, NOT NULL constraints and indexes of {table} match the migrations",
                          measure_many=measure_many)
    return check
