"""A source that suddenly delivers nothing (or far less) is a blocking failure naming it.

A portal serving only a header row, a filter that stops matching or an export cut short loads
cleanly and turns every KPI computed from the source `missing` without a word. This check counts
each loaded source's rows in the core tables (observations it published, areas, points, readings,
transit stops, street edges) and fails (severity error) for every source with no rows, or whose rows fell by more
than `QualitySettings.row_drop` (default 0.5, $CITYKPI_QUALITY_ROW_DROP) against the counts this
check recorded at its previous run for the city (kept in its stored sample).
"""

from __future__ import annotations

import json

import duckdb

from quality.model import ComputedCheck, Measurement, SuiteContext, TableSuite

TABLE = "sources"
NAME = "rows_present"
# Rows a source put into the core tables; readings are counted from their exact group aggregates.
_COUNTS = """
    SELECT s.source_id, coalesce(sum(t.n), 0)::BIGINT AS n_rows
    FROM core_source_state s LEFT JOIN (
        SELECT source_id, count(*) AS n FROM observations WHERE city_id = $city AND derivation IS NULL GROUP BY 1
        UNION ALL SELECT source_id, count(*) FROM core_areas WHERE city_id = $city GROUP BY 1
        UNION ALL SELECT source_id, count(*) FROM core_points WHERE city_id = $city GROUP BY 1
        UNION ALL SELECT source_id, sum(n) FROM core_readings_groups WHERE city_id = $city GROUP BY 1
        UNION ALL SELECT source_id, count(*) FROM core_transit_stops WHERE city_id = $city GROUP BY 1
        UNION ALL SELECT source_id, count(*) FROM core_street_edges WHERE city_id = $city GROUP BY 1
    ) t USING (source_id)
    WHERE s.city_id = $city GROUP BY 1 ORDER BY 1"""


def _previous(con: duckdb.DuckDBPyConnection, city_id: str) -> dict[str, int]:
    row = con.execute("""SELECT sample FROM quality_results WHERE city_id = ? AND table_name = ? AND check_name = ?
                         ORDER BY evaluated_at DESC, run_id DESC LIMIT 1""", [city_id, TABLE, NAME]).fetchall()
    if not row or not row[0][0]:
        return {}
    return {str(r["source_id"]): int(r["rows"]) for r in json.loads(row[0][0])
            if isinstance(r, dict) and isinstance(r.get("rows"), int)}


def _withheld_by_rules(con: duckdb.DuckDBPyConnection, city_id: str) -> dict[str, str]:
    """Sources whose file had rows that the config's own rules kept out (a partial year withheld by
    `periods`, every row left out by `where`): no rows in the core tables is then the rule at work,
    said in the load report, not a source that stopped delivering."""
    out = {}
    for source_id, report in con.execute("SELECT source_id, load_report FROM core_source_state WHERE city_id = ?",
                                         [city_id]).fetchall():
        data = json.loads(report) if report else {}
        read = data.get("rows_read")
        if isinstance(read, int) and read > 0 and (data.get("incomplete_aggregates") or data.get("filtered_rows")):
            withheld = data.get("incomplete_aggregates") or []
            out[str(source_id)] = f"{read:,} rows read, none kept by the config's rules" + (
                f" (withheld: {withheld[0]})" if withheld else "")
    return out


def measure(con: duckdb.DuckDBPyConnection, ctx: SuiteContext) -> Measurement:
    counts = dict(con.execute(_COUNTS, {"city": ctx.city_id}).fetchall())
    by_rules = _withheld_by_rules(con, ctx.city_id)
    previous = _previous(con, ctx.city_id)
    share = ctx.settings.row_drop
    sample, failing = [], []
    for source_id, rows in sorted(counts.items()):
        before = previous.get(source_id)
        if rows == 0 and source_id in by_rules:
            sample.append({"source_id": source_id, "rows": 0, "previous_rows": before, "failing": False,
                           "note": by_rules[source_id]})
            continue
        fell = rows == 0 or (before is not None and before > 0 and rows < before * (1 - share))
        if rows == 0:
            failing.append(f"{source_id} has no rows" + (f" (had {before:,})" if before else ""))
        elif fell:
            failing.append(f"{source_id} fell from {before:,} to {rows:,} rows (more than {share:.0%})")
        sample.append({"source_id": source_id, "rows": int(rows), "previous_rows": before, "failing": fell})
    # Every source's count is kept (the next run compares against it); the failing ones first.
    sample.sort(key=lambda e: (not e["failing"], e["source_id"]))
    return Measurement(CHECK, len(failing), len(counts), sample, note="; ".join(failing) or None)


CHECK = ComputedCheck(TABLE, NAME, "error", "every loaded source has rows, and none fell by more than the "
                      "allowed share (CITYKPI_QUALITY_ROW_DROP, default 50 %) since the previous check",
                      measure=measure)


def sources_suite() -> TableSuite:
    return TableSuite(TABLE, (CHECK,))
