"""Whether a city's quality results of a stage still hold: the fingerprint of what its checks read
(issue #16), kept in `quality_state` (migration 0012).

A run over many cities where one city's source changed should not check the other cities again. The
fingerprint of a city and stage covers everything the stage's checks can read:

- the city's rows of every warehouse table with a `city_id` column (one hash per row over all its
  columns, summed per table, with the row count), except the tables later stages write (the core
  checks run before the KPIs exist) and the quality tables themselves;
- the suite context: country, reporting years, the quality settings, the annual-mean coverage rule;
- the code and metadata the suites are generated from (the quality, canonical, kpis and warehouse
  packages: suites, catalogue, variables, migrations);
- for the core stage, how many of the city's readings are dated after now (the one check that reads
  the clock: a reading flagged as in the future is judged again once that time has come).

It is taken after the stage wrote its results and marks; the next run takes it before the stage, and
where the two are equal the city's stored results of that stage are copied to the new run instead of
being measured again (`quality/run.py:run_cities`). A city whose data changed is checked again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict

import duckdb

from canonical.code_digest import package_digest
from canonical.sqltext import ident
from quality.model import SuiteContext

# Tables a stage's checks never read because later stages write them (or they are bookkeeping).
NOT_READ = {
    "core": {"kpi_values", "kpi_scores", "kpi_rollups", "kpi_progress"},
    "kpis": {"kpi_scores", "kpi_rollups", "kpi_progress"},
    "scores": set(),
}
BOOKKEEPING = {"quality_results", "quality_state", "kpi_state"}
CODE = ("quality", "canonical", "kpis", "warehouse")


def _city_tables(con: duckdb.DuckDBPyConnection, stage: str) -> list[str]:
    names = [row[0] for row in con.execute("""SELECT table_name FROM information_schema.columns
                                              WHERE column_name = 'city_id' AND table_schema = 'main'
                                              ORDER BY table_name""").fetchall()]
    return [n for n in names if n not in BOOKKEEPING and n not in NOT_READ[stage]]


def fingerprints(con: duckdb.DuckDBPyConnection, contexts: Sequence[SuiteContext], stage: str) -> dict[str, str]:
    """{city: fingerprint} of the stage for each context's city, one statement per table for all cities."""
    cities = [c.city_id for c in contexts]
    parts: dict[str, dict[str, list[str]]] = {city: {} for city in cities}
    for table in _city_tables(con, stage):
        rows = con.execute(f"""SELECT city_id, count(*), coalesce(sum(hash(*COLUMNS(* EXCLUDE (city_id)))), 0)
                               FROM {ident(table)} WHERE city_id IN (SELECT unnest(?)) GROUP BY city_id""",
                           [cities]).fetchall()
        for city, count, total in rows:
            parts[city][table] = [str(count), str(total)]
    if stage == "core":  # the one check that reads the clock: readings dated in the future
        for city, future in con.execute("""SELECT city_id, count(*) FROM core_readings
                                           WHERE city_id IN (SELECT unnest(?)) AND observed_at > now()
                                           GROUP BY city_id""", [cities]).fetchall():
            parts[city]["readings in the future"] = [str(future)]
    code = package_digest(*CODE)
    out = {}
    for ctx in contexts:
        facts = {"stage": stage, "tables": parts[ctx.city_id], "context": asdict(ctx), "code": code}
        out[ctx.city_id] = hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()
    return out


def unchanged_since(con: duckdb.DuckDBPyConnection, stage: str, current: dict[str, str]) -> dict[str, str]:
    """{city: run} for the cities whose stored fingerprint of the stage equals `current`: the run whose
    results still hold."""
    if not current:
        return {}
    rows = con.execute("""SELECT city_id, run_id FROM quality_state
                          JOIN (SELECT unnest(?) AS city_id, unnest(?) AS inputs_sha256) USING (city_id, inputs_sha256)
                          WHERE stage = ?""", [list(current), list(current.values()), stage]).fetchall()
    return {str(city): str(run) for city, run in rows}


def record(con: duckdb.DuckDBPyConnection, stage: str, after: dict[str, str], run_id: str) -> None:
    """Remember what each city's stage judged (fingerprints taken after its results and marks)."""
    if after:
        con.execute("""INSERT OR REPLACE INTO quality_state
                       SELECT unnest(?), ?, unnest(?), ?, now()""", [list(after), stage, list(after.values()), run_id])
