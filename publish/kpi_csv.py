"""kpi_values.csv: the release table as CSV (role `kpi_values_csv`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from kpis.catalogue import Indicator
from publish import FileEntry, PublishContext, file_entry
from publish.textcells import write_escaped_csv

NAME = "kpi_values.csv"
ROLE = "kpi_values_csv"
LIST_SEPARATOR = ";"


def csv_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """CSV has no lists: missing_inputs becomes ';'-joined text (variable refs never contain ';')."""
    return frame.with_columns(pl.col("missing_inputs").list.join(LIST_SEPARATOR))


def write_csv(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext,
              folder: Path) -> list[FileEntry]:
    write_escaped_csv(frame, folder / NAME, csv_frame)
    return [file_entry(folder, NAME, ROLE, "indicator values as CSV (UTF-8, missing_inputs as ';'-joined text)")]
