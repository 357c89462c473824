"""The latest quality result of every check, whatever run produced it.

Partitioned Dagster runs check a city's core tables in one run and each city-year's KPI values in
others, so a release built by a separate run cannot select results by its own run id: it reports
the newest result per (city, table, check) instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

_LATEST = """
    SELECT run_id, city_id, table_name, check_name, severity, status, failing_count FROM quality_results
    WHERE list_contains(?, city_id)
    QUALIFY row_number() OVER (PARTITION BY city_id, table_name, check_name ORDER BY evaluated_at DESC, run_id DESC) = 1
    ORDER BY city_id, table_name, check_name"""


def latest_quality_summary(con: duckdb.DuckDBPyConnection, city_ids: Sequence[str]) -> dict[str, Any]:
    """The release manifest's `quality` block from the newest result of each check (runs listed)."""
    rows = con.execute(_LATEST, [list(city_ids)]).fetchall()
    counts = {status: sum(1 for r in rows if r[5] == status) for status in ("passed", "failed", "warned", "skipped")}
    listed = [{"city_id": c, "table": t, "check": k, "severity": s, "failing_count": n, "run_id": run}
              for run, c, t, k, s, status, n in rows if status in ("failed", "warned")]
    return {"run_id": None, "runs": sorted({r[0] for r in rows}),
            "checks_run": counts["passed"] + counts["failed"] + counts["warned"], **counts,
            "failed_checks": [e for e in listed if e["severity"] == "error"],
            "warned_checks": [e for e in listed if e["severity"] == "warning"]}


def latest_blocking_failures(con: duckdb.DuckDBPyConnection, city_ids: Sequence[str]) -> list[str]:
    """'city/table.check (n failing)' for every error check whose newest result failed."""
    rows = con.execute(_LATEST, [list(city_ids)]).fetchall()
    return [f"{c}/{t}.{k} ({n:,} failing)" for _, c, t, k, s, status, n in rows
            if s == "error" and status == "failed"]
