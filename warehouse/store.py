"""Small writes shared by the stages: snapshot manifest and run records."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import duckdb

from sources.landing import Snapshot
from warehouse.db import insert_values

SNAPSHOT_COLUMNS = ("snapshot_id", "city_id", "source_id", "kind", "location", "format", "content_sha256", "size_bytes",
                    "path", "fetched_at", "request")


def record_snapshots(con: duckdb.DuckDBPyConnection, snapshots: Iterable[Snapshot]) -> None:
    """Add the snapshots the warehouse does not know yet (one statement for all of them)."""
    insert_values(con, "source_snapshots", SNAPSHOT_COLUMNS, [
        [s.snapshot_id, s.city_id, s.source_id, s.kind, s.location, s.format, s.content_sha256, s.size_bytes,
         s.relative_path, s.fetched_at, json.dumps(s.request, sort_keys=True)] for s in snapshots], conflict="ignore")


def start_run(con: duckdb.DuckDBPyConnection, run_id: str, configs: list[str], code_version: str,
              started_at: datetime | None = None) -> None:
    con.execute("INSERT OR REPLACE INTO runs VALUES (?, coalesce(?, now()), NULL, 'running', ?, ?)",
                [run_id, started_at, json.dumps(configs), code_version])


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, status: str) -> None:
    con.execute("UPDATE runs SET finished_at = now(), status = ? WHERE run_id = ?", [status, run_id])


def snapshot_records(con: duckdb.DuckDBPyConnection, city_ids: list[str]) -> list[dict[str, Any]]:
    """The snapshots the warehouse currently reflects for these cities (for release manifests)."""
    rows = con.execute("""
        SELECT s.city_id, s.source_id, s.snapshot_id, n.kind, n.location, n.format, n.content_sha256,
               n.size_bytes, CAST(n.fetched_at AS VARCHAR), s.row_count
        FROM core_source_state s JOIN source_snapshots n USING (snapshot_id)
        WHERE s.city_id IN (SELECT unnest(?)) ORDER BY s.city_id, s.source_id""", [city_ids]).fetchall()
    keys = ("city_id", "source_id", "snapshot_id", "kind", "location", "format", "content_sha256", "size_bytes",
            "fetched_at", "rows_loaded")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def record_derive_report(con: duckdb.DuckDBPyConnection, city_id: str, derived: dict[str, Any]) -> None:
    """Keep what the city's last derivation did beside its state (the release's `loads` section)."""
    if derived.get("mode", "none") != "none":
        con.execute("UPDATE core_derive_state SET report = ? WHERE city_id = ?",
                    [json.dumps(derived, sort_keys=True, default=str), city_id])


def load_reports(con: duckdb.DuckDBPyConnection, city_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per city, the report of the load that wrote each source's rows (and when) and of its last
    derivation: what a release's `loads` section says, whichever process or graph ran the loads."""
    out: dict[str, dict[str, Any]] = {city: {"sources": {}} for city in city_ids}
    for city_id, source_id, snapshot_id, loaded_at, rows, report in con.execute("""
            SELECT city_id, source_id, snapshot_id, CAST(loaded_at AS VARCHAR), row_count, load_report
            FROM core_source_state WHERE city_id IN (SELECT unnest(?)) ORDER BY city_id, source_id""",
                                                                            [city_ids]).fetchall():
        entry = {"snapshot_id": snapshot_id, "loaded_at": loaded_at, "rows_loaded": rows,
                 **(json.loads(report) if report else {})}
        out[city_id]["sources"][source_id] = entry
    for city_id, derived_at, report in con.execute("""
            SELECT city_id, CAST(derived_at AS VARCHAR), report FROM core_derive_state
            WHERE city_id IN (SELECT unnest(?))""", [city_ids]).fetchall():
        if report:
            out[city_id]["derived"] = {"derived_at": derived_at, **json.loads(report)}
    return out
