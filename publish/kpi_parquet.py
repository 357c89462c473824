"""kpi_values.parquet: the canonical release table, typed (role `kpi_values_parquet`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from kpis.catalogue import Indicator
from publish import FileEntry, PublishContext, file_entry

NAME = "kpi_values.parquet"
ROLE = "kpi_values_parquet"


def write_parquet(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext,
                  folder: Path) -> list[FileEntry]:
    # zstd with statistics: small, and DuckDB/polars can prune on city_id and year.
    frame.write_parquet(folder / NAME, compression="zstd", statistics=True)
    return [file_entry(folder, NAME, ROLE, "indicator values: one row per city, year, indicator and data point "
                                           "(canonical, typed)")]
