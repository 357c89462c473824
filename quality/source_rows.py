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
from collections.abc import Sequence

import duckdb

from quality.model import ComputedCheck, Measurement, SuiteContext, TableSuite

TABLE = "sources"
NAME = "rows_present"
# Rows each source of the cities put into the core tables; readings are counted from their exact group
# aggregates. `{cities}` becomes one `?` per city, the same list for each of the seven filters: constants
# let DuckDB skip other cities' row groups (a semi-join with a list read every city's rows).
_COUNTS = """
    SELECT s.city_id, s.source_id, coalesce(sum(t.n), 0)::BIGINT AS n_rows
    FROM core_source_state s LEFT JOIN (
        SELECT city_id, source_id, count(*) AS n FROM observations
            WHERE city_id IN ({cities}) AND derivation IS NULL GROUP BY ALL
        UNION ALL SELECT city_id, source_id, count(*) FROM core_areas WHERE city_id IN ({cities}) GROUP BY ALL
        UNION ALL SELECT city_id, source_id, count(*) FROM core_points WHERE city_id IN ({cities}) GROUP BY ALL
        UNION ALL SELECT city_id, source_id, sum(n) FROM core_readings_groups WHERE city_id IN ({cities}) GROUP BY ALL
        UNION ALL SELECT city_id, source_id, count(*) FROM core_transit_stops WHERE city_id IN ({cities}) GROUP BY ALL
        UNION ALL SELECT city_id, source_id, count(*) FROM core_street_edges WHERE city_id IN ({cities}) GROUP BY ALL
    ) t USING (city_id, source_id)
    WHERE s.city_id IN ({cities}) GROUP BY ALL ORDER BY ALL"""
_FILTERS = _COUNTS.count("{cities}")


def _previous(con: duckdb.DuckDBPyConnection, city_ids: list[str]) -> dict[str, dict[str, int]]:
    """Per city, the counts this check kept at its latest run (its stored sample)."""
    marks = ", ".join("?" for _ in city_ids)
    rows = con.execute(f"""SELECT city_id, first(sample ORDER BY evaluated_at DESC, run_id DESC) FROM quality_results
                           WHERE city_id IN ({marks}) AND table_name = ? AND check_name = ? GROUP BY ALL""",
                       [*city_ids, TABLE, NAME]).fetchall()
    return {str(city): {str(r["source_id"]): int(r["rows"]) for r in json.loads(sample)
                        if isinstance(r, dict) and isinstance(r.get("rows"), int)}
            for city, sample in rows if sample}


def _withheld_by_rules(con: duckdb.DuckDBPyConnection, city_ids: list[str]) -> dict[str, dict[str, str]]:
    """Per city, the sources whose file had rows that the config's own rules kept out (a partial year
    withheld by `periods`, every row left out by `where`): no rows in the core tables is then the rule
    at work, said in the load report, not a source that stopped delivering."""
    out: dict[str, dict[str, str]] = {}
    marks = ", ".join("?" for _ in city_ids)
    for city_id, source_id, report in con.execute(
            f"SELECT city_id, source_id, load_report FROM core_source_state WHERE city_id IN ({marks})",
            city_ids).fetchall():
        data = json.loads(report) if report else {}
        read = data.get("rows_read")
        if isinstance(read, int) and read > 0 and (data.get("incomplete_aggregates") or data.get("filtered_rows")):
            withheld = data.get("incomplete_aggregates") or []
            out.setdefault(str(city_id), {})[str(source_id)] = (
                f"{read:,} rows read, none kept by the config's rules"
                + (f" (withheld: {withheld[0]})" if withheld else ""))
    return out


def measure_many(con: duckdb.DuckDBPyConnection, contexts: Sequence[SuiteContext]) -> dict[str, Measurement]:
    """The check for every city, in three queries for all of them (per city it was 17 s of checking 1,000)."""
    city_ids = [ctx.city_id for ctx in contexts]
    if not city_ids:
        return {}
    counts: dict[str, dict[str, int]] = {city: {} for city in city_ids}
    marks = ", ".join("?" for _ in city_ids)  # placeholders only: the ids are parameters
    for city_id, source_id, rows in con.execute(_COUNTS.format(cities=marks), city_ids * _FILTERS).fetchall():
        counts[str(city_id)][str(source_id)] = int(rows)
    by_rules, previous = _withheld_by_rules(con, city_ids), _previous(con, city_ids)
    return {ctx.city_id: _judge(ctx, counts[ctx.city_id], by_rules.get(ctx.city_id, {}),
                                previous.get(ctx.city_id, {})) for ctx in contexts}


def _judge(ctx: SuiteContext, counts: dict[str, int], by_rules: dict[str, str], previous: dict[str, int]
           ) -> Measurement:
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
                      measure_many=measure_many)


def sources_suite() -> TableSuite:
    return TableSuite(TABLE, (CHECK,))
