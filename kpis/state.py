"""Whether a city's indicator values (or scores) are current: the fingerprint of what they were
computed from, kept in `kpi_state` (migration 0005).

The fingerprint covers everything a whole-city computation reads: the city's observations (every
column, quality marks included), the reasons derivations withheld values (core_withheld), the kpis
package itself (catalogue, formulas, engine, default targets), the city's own targets file and the
reporting years. Equal fingerprint, equal rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import duckdb

from canonical.code_digest import package_digest

Stage = Literal["kpi_values", "scores"]


def inputs_fingerprint(con: duckdb.DuckDBPyConnection, city_id: str, reporting_years: Sequence[int],
                       targets: Path | None) -> str:
    """The fingerprint of a city's inputs; `targets` is the city's own target table (its path, whether
    or not a file is there: `LoadedConfig.targets_path`), None when it has none."""
    return inputs_fingerprints(con, [(city_id, reporting_years, targets)])[city_id]


def inputs_fingerprints(con: duckdb.DuckDBPyConnection, cities: Sequence[tuple[str, Sequence[int], Path | None]]
                        ) -> dict[str, str]:
    """{city: fingerprint} of (city, reporting years, targets) each, one statement per table for all the cities
    (a run over 1,000 unchanged cities asked three statements per city and stage: 8.6 s)."""
    ids = [city_id for city_id, _, _ in cities]

    def grouped(sql: str) -> dict[str, tuple[object, ...]]:
        return {str(row[0]): tuple(row[1:]) for row in con.execute(sql, [ids]).fetchall()}

    # One hash per row (all its columns together), summed: a value moved from one row to another (two years'
    # figures swapped in a corrected source) changes it, which per-column sums would not notice.
    observations = grouped("""SELECT city_id, count(*), coalesce(sum(hash(*COLUMNS(* EXCLUDE (city_id)))), 0)
                              FROM observations WHERE city_id IN (SELECT unnest(?)) GROUP BY city_id""")
    # Reasons a derivation withheld a value (core_withheld) are in the missing rows' status_reason.
    withheld = grouped("""SELECT city_id, count(*), coalesce(sum(hash(*COLUMNS(* EXCLUDE (city_id)))), 0)
                          FROM core_withheld WHERE city_id IN (SELECT unnest(?)) GROUP BY city_id""")
    # ... and the values the loads' own rules withheld (in the stored load reports).
    reports = grouped("""SELECT city_id, coalesce(sum(hash(source_id, load_report)), 0) FROM core_source_state
                         WHERE city_id IN (SELECT unnest(?)) GROUP BY city_id""")
    package = package_digest("kpis")
    out = {}
    for city_id, reporting_years, targets in cities:
        parts = {"observations": [str(v) for v in observations.get(city_id, (0, 0))],
                 "load_reports": str(reports.get(city_id, (0,))[0]),
                 "package": package,
                 "withheld": [str(v) for v in withheld.get(city_id, (0, 0))],
                 "targets": hashlib.sha256(targets.read_bytes()).hexdigest()
                 if targets is not None and targets.is_file() else None,
                 "years": sorted(reporting_years)}
        out[city_id] = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return out


def current_runs(con: duckdb.DuckDBPyConnection, stage: Stage, fingerprints: dict[str, str]) -> dict[str, str]:
    """{city: run} for the cities whose `stage` was computed from inputs with their fingerprint."""
    if not fingerprints:
        return {}
    rows = con.execute("""SELECT city_id, run_id FROM kpi_state
                          JOIN (SELECT unnest(?) AS city_id, unnest(?) AS inputs_sha256) USING (city_id, inputs_sha256)
                          WHERE stage = ?""", [list(fingerprints), list(fingerprints.values()), stage]).fetchall()
    return {str(city): str(run) for city, run in rows}


def current_run(con: duckdb.DuckDBPyConnection, city_id: str, stage: Stage, fingerprint: str) -> str | None:
    """The run that computed `stage` from inputs with this fingerprint, or None."""
    row = con.execute("SELECT run_id FROM kpi_state WHERE city_id = ? AND stage = ? AND inputs_sha256 = ?",
                      [city_id, stage, fingerprint]).fetchall()
    return str(row[0][0]) if row else None


def record(con: duckdb.DuckDBPyConnection, city_id: str, stage: Stage, fingerprint: str | None, run_id: str) -> None:
    """Remember what `stage` was computed from (None: a partial computation, nothing to rely on)."""
    if fingerprint is None:
        con.execute("DELETE FROM kpi_state WHERE city_id = ? AND stage = ?", [city_id, stage])
    else:
        con.execute("INSERT OR REPLACE INTO kpi_state VALUES (?, ?, ?, ?, now())",
                    [city_id, stage, fingerprint, run_id])
