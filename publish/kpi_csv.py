"""kpi_values.csv: the release table as CSV (role `kpi_values_csv`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from kpis.catalogue import Indicator
from publish import FileEntry, PublishContext, file_entry
from publish.textcells import escape_frame

NAME = "kpi_values.csv"
ROLE = "kpi_values_csv"
LIST_SEPARATOR = ";"


def csv_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """CSV has no lists: missing_inputs becomes ';'-joined text (variable refs never contain ';')."""
    return frame.with_columns(pl.col("missing_inputs").list.join(LIST_SEPARATOR))


def write_csv(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext,
              folder: Path) -> list[FileEntry]:
    # float_precision=None writes the shortest text that reads back to the same double.
    escape_frame(csv_frame(frame)).write_csv(folder / NAME, float_precision=None)
    return [file_entry(folder, NAME, ROLE, "indicator values as CSV (UTF-8, missing_inputs as ';'-joined text)")]
