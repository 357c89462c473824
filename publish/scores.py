"""kpi_scores / kpi_rollups / kpi_progress as Parquet and CSV: the benchmarking tables of the release.

Roles (docs/releases.md): `scores` (every U4SSC KPI data point scored against its target, or
excluded with the reason), `rollups` (points per category, sub-dimension and dimension) and
`progress` (progress towards the target per indicator, data point and method). Each table is
written twice, typed (Parquet) and as CSV, from `kpis.benchmarking.store.release_frames`: the
run-independent columns in a stable order, so equal inputs give equal bytes (data files).

Targets are citykpi defaults from public references or the city's own table, never the official
U4SSC benchmarks (not public): `target_source`, `target_citation` and `official_u4ssc_benchmark`
travel with every scored row.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from kpis.catalogue import Indicator
from publish import FileEntry, PublishContext, file_entry
from publish.textcells import write_escaped_csv

# The four U4SSC City Snapshot bands, red to green (citykpi's palette; the report and the workbook share it).
BAND_COLORS: dict[str, str] = {"<33": "#d7301f", "33-66": "#fdae61", "66-95": "#a6d96a", "95+": "#1a9641"}
NO_BAND_COLOR = "#d9d9d9"  # excluded / not scored: N/A

# table -> (role, description)
TABLES: dict[str, tuple[str, str]] = {
    "kpi_scores": ("scores", "U4SSC scores: every KPI data point with its target, target source, share of target, "
                             "points and band, or excluded with the reason (targets are public references, not "
                             "the official U4SSC benchmarks)"),
    "kpi_rollups": ("rollups", "U4SSC roll-ups: points / (4 x scored KPIs) per category, sub-dimension and "
                               "dimension, with the band"),
    "kpi_progress": ("progress", "progress towards the targets: CAGR against the CAGR required by the deadline, "
                                 "UN and Eurostat cut-offs, per indicator and data point"),
}


def write_scores(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext,
                 folder: Path) -> list[FileEntry]:
    """Both files of every benchmarking table; nothing when the release carries no benchmarking."""
    if context.benchmarks is None:
        return []
    entries = []
    for table, (role, description) in TABLES.items():
        rows = context.benchmarks[table]
        rows.write_parquet(folder / f"{table}.parquet", compression="zstd", statistics=True)
        write_escaped_csv(rows, folder / f"{table}.csv")
        entries += [file_entry(folder, f"{table}.parquet", role, f"{description} (Parquet)"),
                    file_entry(folder, f"{table}.csv", role, f"{description} (CSV)")]
    return entries
