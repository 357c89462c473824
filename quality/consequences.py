"""What a failed blocking check does to the data: rows are marked, KPIs notice.

- `observations.failed_check` names the blocking checks a row failed (with a short detail). The KPI
  engine turns every indicator reading a marked observation into `failed_check` with the reason,
  and the release still lists it.
- Derived observations inherit the mark of their inputs: station annual means of failing reading
  groups (precise: station, pollutant and year), every row of a derivation whose core table failed
  (polygon areas, transit stops, district means from station locations: coarse but safe), and the
  city and district aggregates of marked rows.
- `kpi_values` rows failing a blocking check (a percentage above 100, a negative rate) become
  `failed_check` themselves, with the value removed and the check named as the reason.

Marks are recomputed from scratch by each quality run of the city, inside its transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import polars as pl

from canonical.sqltext import ident
from quality.metadata import sql_literal
from quality.model import CheckResult, ExpectationCheck, QueryCheck, RowCheck, SuiteContext
from quality.sql import first_row, run

# core table -> derivations (warehouse/derive.py names) computed from it
DERIVED_FROM: dict[str, tuple[str, ...]] = {
    "core_areas": ("polygon_area",),
    "core_points": ("district_annual_mean",),
    "core_transit_stops": ("transit_stops",),
}
# aggregate derivation -> area type of the observations it aggregates
AGGREGATES: dict[str, str] = {
    "district_rollup": "district",
    "city_annual_mean": "station",
    "district_annual_mean": "station",
}


def _label(result: CheckResult) -> str:
    return f"{result.check.table}.{result.check.name}"


def _append(column: str, text_sql: str) -> str:
    return f"{column} = concat_ws('; ', {column}, {text_sql})"


def _marked_by_rowid(con: duckdb.DuckDBPyConnection, table: str, result: CheckResult, set_sql: str) -> int:
    """UPDATE the rows GX found failing (an ExpectationCheck's rowids, read in this transaction)."""
    frame = pl.DataFrame({"rid": list(result.rows), "detail": list(result.rows.values())},
                         schema={"rid": pl.Int64, "detail": pl.String})
    con.register("_failing_rows", frame.to_arrow())
    try:
        row = first_row(run(con, f"UPDATE {ident(table)} o SET {set_sql} FROM _failing_rows f WHERE o.rowid = f.rid"))
    finally:
        con.unregister("_failing_rows")
    return int(row[0]) if row else 0


def _mark_rows(con: duckdb.DuckDBPyConnection, ctx: SuiteContext, result: CheckResult) -> None:
    check, label = result.check, _label(result)
    if isinstance(check, ExpectationCheck):
        _marked_by_rowid(con, "observations", result,
                         _append("failed_check", f"{sql_literal(label)} || coalesce(': ' || f.detail, '')"))
    elif isinstance(check, RowCheck):
        detail = sql_literal(label)
        if check.detail:
            detail += f" || coalesce(': ' || ({check.detail}), '')"
        run(con, f"UPDATE observations SET {_append('failed_check', detail)} "
                 f"WHERE city_id = $city AND ({check.fail_when})",
            city=ctx.city_id, years=list(ctx.reporting_years))
    elif isinstance(check, QueryCheck) and check.flag_sql:
        text = f"{sql_literal(label)} || coalesce(': ' || f.detail, '')"
        run(con, f"""UPDATE observations o SET {_append('failed_check', text)}
                     FROM (SELECT rowid AS rid, string_agg(DISTINCT detail, ', ') AS detail
                           FROM ({check.flag_sql}) GROUP BY rowid) f
                     WHERE o.rowid = f.rid""", city=ctx.city_id, years=list(ctx.reporting_years))


def _mark_affected(con: duckdb.DuckDBPyConnection, ctx: SuiteContext, result: CheckResult,
                   affected: Sequence[dict[str, object]]) -> None:
    """Station annual means computed from failing reading groups."""
    frame = pl.DataFrame(list(affected), schema={"year": pl.Int32, "variable": pl.String, "data_point": pl.String,
                                                 "area_type": pl.String, "area_id": pl.String})
    con.register("_affected", frame.unique().to_arrow())
    try:
        run(con, f"""UPDATE observations o SET {_append('failed_check', sql_literal(_label(result)))}
                     FROM _affected a
                     WHERE o.city_id = $city AND o.derivation IS NOT NULL AND o.year = a.year
                       AND o.variable = a.variable AND o.data_point IS NOT DISTINCT FROM a.data_point
                       AND o.area_type = a.area_type AND o.area_id = a.area_id""", city=ctx.city_id)
    finally:
        con.unregister("_affected")


def _mark_derivations(con: duckdb.DuckDBPyConnection, ctx: SuiteContext, result: CheckResult,
                      derivations: Sequence[str]) -> None:
    text = sql_literal(f"derived from {result.check.table}, which failed {_label(result)}")
    run(con, f"""UPDATE observations SET {_append('failed_check', text)}
                 WHERE city_id = $city AND list_contains($names, split_part(derivation, '@', 1))""",
        city=ctx.city_id, names=list(derivations))


def _propagate(con: duckdb.DuckDBPyConnection, ctx: SuiteContext) -> None:
    """Aggregates (city totals, city and district means) inherit the marks of what they aggregate."""
    text = "'derived from ' || f.n || ' flagged ' || $input || ' value(s): ' || f.checks"
    for derivation, input_area in AGGREGATES.items():
        run(con, f"""UPDATE observations o SET {_append('failed_check', text)}
                     FROM (SELECT d.rowid AS rid, count(*) AS n,
                                  string_agg(DISTINCT split_part(i.failed_check, ':', 1), ', ') AS checks
                           FROM observations d JOIN observations i
                             ON i.city_id = d.city_id AND i.year = d.year AND i.variable = d.variable
                            AND i.data_point IS NOT DISTINCT FROM d.data_point AND i.area_type = $input
                           WHERE d.city_id = $city AND split_part(d.derivation, '@', 1) = $derivation
                             AND i.failed_check IS NOT NULL
                           GROUP BY d.rowid) f
                     WHERE o.rowid = f.rid""", city=ctx.city_id, input=input_area, derivation=derivation)


def mark_observations(con: duckdb.DuckDBPyConnection, ctx: SuiteContext, results: Sequence[CheckResult],
                      affected: dict[str, list[dict[str, object]]]) -> int:
    """Recompute the city's marks from the core results; returns the number of marked observations."""
    run(con, "UPDATE observations SET failed_check = NULL WHERE city_id = $city AND failed_check IS NOT NULL",
        city=ctx.city_id)
    if not any(result.blocking_failure for result in results):
        return 0  # nothing marked, nothing to propagate (per city, the propagation's updates were 15 s of 1,000)
    for result in results:
        if not result.blocking_failure:
            continue
        table = result.check.table
        if table == "observations":
            _mark_rows(con, ctx, result)
        elif affected.get(result.check.key):
            _mark_affected(con, ctx, result, affected[result.check.key])
        elif table in DERIVED_FROM:
            _mark_derivations(con, ctx, result, DERIVED_FROM[table])
    _propagate(con, ctx)
    row = first_row(run(con, "SELECT count(*) FROM observations WHERE city_id = $city AND failed_check IS NOT NULL",
              city=ctx.city_id))
    return int(row[0]) if row else 0


def mark_kpi_values(con: duckdb.DuckDBPyConnection, ctx: SuiteContext, results: Sequence[CheckResult]) -> int:
    """KPI rows failing a blocking row rule become failed_check (value removed, the check as reason)."""
    marked = 0
    for result in results:
        check = result.check
        if not result.blocking_failure or check.table != "kpi_values":
            continue
        if isinstance(check, ExpectationCheck):
            reason = f"{sql_literal('failed blocking check ' + _label(result))} || coalesce(': ' || f.detail, '')"
            marked += _marked_by_rowid(con, "kpi_values", result,
                                       f"status = 'failed_check', value = NULL, status_reason = {reason}")
            continue
        if not isinstance(check, RowCheck):
            continue
        detail = f"coalesce(': ' || ({check.detail}), '')" if check.detail else "''"
        rows = first_row(run(con, f"""UPDATE kpi_values SET status = 'failed_check', value = NULL,
                               status_reason = {sql_literal('failed blocking check ' + _label(result))} || {detail}
                            WHERE city_id = $city AND ({check.fail_when})""",
                   city=ctx.city_id, years=list(ctx.reporting_years)))
        marked += int(rows[0]) if rows else 0
    return marked
