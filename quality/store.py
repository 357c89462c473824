"""Stored results (`quality_results`, migration 0002) and what releases and `--strict` read from them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb
import polars as pl

from canonical.errors import CitykpiError
from canonical.listing import first_and_more
from quality.model import Check, CheckResult
from quality.sql import json_safe

_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
            "run_id": pl.String, "city_id": pl.String, "table_name": pl.String, "check_name": pl.String,
            "severity": pl.String, "status": pl.String, "failing_count": pl.Int64, "evaluated_count": pl.Int64,
            "sample": pl.String, "description": pl.String, "expectation": pl.String,
            "evaluated_at": pl.Datetime("us", "UTC")}


def store_cities_results(con: duckdb.DuckDBPyConnection, run_id: str,
                         by_city: Mapping[str, Sequence[CheckResult]]) -> None:
    """Insert (or replace, when a check is re-run in the same run) one row per result, for every city in
    one statement (a statement per city was 16 s of checking 1,000 cities, profiled)."""
    now = datetime.now(UTC)
    rows = [(run_id, city_id, r.check.table, r.check.name, r.check.severity, r.status, r.failing, r.evaluated,
             json.dumps(json_safe(r.sample), ensure_ascii=False),
             r.check.description if not r.note else f"{r.check.description} ({r.note})",
             json.dumps(json_safe(r.expectation), ensure_ascii=False) if r.expectation is not None else None, now)
            for city_id, results in by_city.items() for r in results]
    if not rows:
        return
    # One INSERT from a frame: executemany() costs a round trip per row (~5 ms each in DuckDB).
    con.register("_quality_results", pl.DataFrame(rows, schema=_COLUMNS, orient="row").to_arrow())
    try:
        con.execute(f"INSERT OR REPLACE INTO quality_results ({', '.join(_COLUMNS)}) "
                    f"SELECT {', '.join(_COLUMNS)} FROM _quality_results")
    finally:
        con.unregister("_quality_results")


def copy_results(con: duckdb.DuckDBPyConnection, kept: dict[str, str], run_id: str, checks: Sequence[Check]) -> None:
    """Copy each kept city's results of `checks` from the run that judged them (`kept`: city -> run) into
    `run_id`, unchanged (evaluated_at included: when they were judged)."""
    kept = {city: run for city, run in kept.items() if run != run_id}
    if not kept:
        return
    con.execute("""
        INSERT OR REPLACE INTO quality_results BY NAME
        SELECT q.* REPLACE (?::VARCHAR AS run_id) FROM quality_results q
        JOIN (SELECT unnest(?) AS city_id, unnest(?) AS run_id) k ON q.city_id = k.city_id AND q.run_id = k.run_id
        JOIN (SELECT unnest(?) AS table_name, unnest(?) AS check_name) c
             ON q.table_name = c.table_name AND q.check_name = c.check_name""",
                [run_id, list(kept), list(kept.values()), [c.table for c in checks], [c.name for c in checks]])


def read_results(con: duckdb.DuckDBPyConnection, city_ids: Sequence[str], run_id: str, checks: Sequence[Check], *,
                 with_expectations: bool = True) -> dict[str, list[CheckResult]]:
    """The stored results of `checks` for these cities in one run, as CheckResults in the order of `checks`
    (without their GX results unless `with_expectations`)."""
    by_key = {(c.table, c.name): c for c in checks}
    order = {key: i for i, key in enumerate(by_key)}
    out: dict[str, list[CheckResult]] = {city: [] for city in city_ids}
    for city, table, name, status, failing, evaluated, sample, description, expectation in con.execute(
            """SELECT city_id, table_name, check_name, status, failing_count, evaluated_count, sample, description,
                      expectation FROM quality_results WHERE run_id = ? AND city_id IN (SELECT unnest(?))""",
            [run_id, list(city_ids)]).fetchall():
        check = by_key.get((table, name))
        if check is None:
            continue  # another stage's check
        # store_cities_results wrote "<description> (<note>)" for a result with a note.
        note = description[len(check.description) + 2:-1] if description != check.description else None
        out[city].append(CheckResult(check, status, failing, int(evaluated), json.loads(sample),
                                     json.loads(expectation) if expectation and with_expectations else None, note))
    return {city: sorted(found, key=lambda r: order[(r.check.table, r.check.name)]) for city, found in out.items()}


def _results(con: duckdb.DuckDBPyConnection, run_id: str | None, city_ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """(run, city, table, check, severity, status, failing, description, expectation) of one run, or with
    `run_id` None the newest result of every check whatever run produced it: partitioned Dagster runs
    check a city's core tables in one run and each city-year's KPI values in others, so their release
    reports those."""
    columns = "run_id, city_id, table_name, check_name, severity, status, failing_count, description, expectation"
    if run_id is not None:
        return con.execute(f"""SELECT {columns} FROM quality_results WHERE run_id = ? AND city_id IN (SELECT unnest(?))
                               ORDER BY city_id, table_name, check_name""", [run_id, list(city_ids)]).fetchall()
    return con.execute(f"""
        SELECT {columns} FROM quality_results
        WHERE city_id IN (SELECT unnest(?))
        QUALIFY row_number() OVER (PARTITION BY city_id, table_name, check_name
                                   ORDER BY evaluated_at DESC, run_id DESC) = 1
        ORDER BY city_id, table_name, check_name""", [list(city_ids)]).fetchall()


def gx_expectations(expectation: str | None) -> list[str]:
    """The native GX expectation types of a stored result (none for counts measured in DuckDB)."""
    if not expectation:
        return []
    stored = json.loads(expectation)
    configs = [part.get("expectation_config") or {} for part in stored.get("results", [stored])]
    return sorted({str(c.get("type")) for c in configs if c.get("type") and "measured" not in (c.get("meta") or {})})


def quality_rows(con: duckdb.DuckDBPyConnection, run_id: str | None, city_ids: Sequence[str]) -> pl.DataFrame:
    """The stored results `quality_summary` counts (one run's, or the newest of every check), with their
    GX results: what the release's Data Docs render."""
    where = "run_id = ? AND city_id IN (SELECT unnest(?))" if run_id is not None else "city_id IN (SELECT unnest(?))"
    newest = "" if run_id is not None else """QUALIFY row_number() OVER (PARTITION BY city_id, table_name, check_name
                                                 ORDER BY evaluated_at DESC, run_id DESC) = 1"""
    params: list[Any] = [run_id, list(city_ids)] if run_id is not None else [list(city_ids)]
    table = con.sql(f"""SELECT run_id, city_id, table_name, check_name, severity, status, failing_count,
                                   evaluated_count, description, expectation, evaluated_at
                            FROM quality_results WHERE {where} {newest}
                            ORDER BY city_id, table_name, check_name""", params=params).to_arrow_table()
    return pl.from_arrow(table)  # type: ignore[return-value]


def quality_summary(con: duckdb.DuckDBPyConnection, run_id: str | None, city_ids: Sequence[str]) -> dict[str, Any]:
    """The release manifest's `quality` block: counts by status and the checks that did not pass, of
    one run (or, with `run_id` None, of the newest result of every check; `runs` lists which)."""
    rows = _results(con, run_id, city_ids)
    counts = {status: sum(1 for r in rows if r[5] == status) for status in ("passed", "failed", "warned", "skipped")}
    listed = [{"city_id": c, "table": t, "check": k, "severity": s, "failing_count": n, "run_id": run,
               "description": d, "gx_expectations": gx_expectations(e)}
              for run, c, t, k, s, status, n, d, e in rows if status in ("failed", "warned")]
    return {"run_id": run_id, "runs": sorted({r[0] for r in rows}),
            "checks_run": counts["passed"] + counts["failed"] + counts["warned"], **counts,
            "failed_checks": [e for e in listed if e["severity"] == "error"],
            "warned_checks": [e for e in listed if e["severity"] == "warning"]}


def blocking_failures(con: duckdb.DuckDBPyConnection, run_id: str | None, city_ids: Sequence[str]) -> list[str]:
    """'city/table.check (n failing)' for every failed error check of the run (None: newest results),
    with the sources it names (sources.rows_present: which source lost its rows)."""
    out = []
    for run, c, t, k, s, status, n, _, _ in _results(con, run_id, city_ids):
        if s == "error" and status == "failed":
            out.append(f"{c}/{t}.{k} ({n:,} failing{_named_sources(con, run, c, t, k)})")
    return out


def _named_sources(con: duckdb.DuckDBPyConnection, run_id: str, city_id: str, table: str, check: str) -> str:
    if table != "sources":
        return ""
    row = con.execute("""SELECT sample FROM quality_results
                         WHERE run_id = ? AND city_id = ? AND table_name = ? AND check_name = ?""",
                      [run_id, city_id, table, check]).fetchall()
    samples = json.loads(row[0][0]) if row and row[0][0] else []
    named = [f"{e['source_id']} ({e.get('previous_rows') or 0:,} -> {e['rows']:,} rows)" for e in samples
             if isinstance(e, dict) and e.get("failing")]
    return f": {', '.join(named)}" if named else ""


class QualityGateError(CitykpiError):
    """`--strict`: a blocking check failed, so no release is published (the CLI exits with status 2)."""

    def __init__(self, run_id: str, failures: Sequence[str]) -> None:
        self.run_id = run_id
        self.failures = list(failures)
        shown = first_and_more(self.failures, 8)
        super().__init__(f"--strict: {len(self.failures)} blocking quality check(s) failed, so no release was "
                         f"published: {shown}. The warehouse holds the checked data with the failing rows marked; "
                         f"see quality_results for run {run_id} (samples of failing rows), or run without --strict "
                         "to publish with the dependent KPIs as failed_check.")
