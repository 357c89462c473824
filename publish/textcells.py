"""Text from configs and data stays text in spreadsheets (OWASP CSV injection).

A spreadsheet opening a CSV evaluates a cell starting with `=`, `+`, `-` or `@` (and, in some,
after a tab or carriage return) as a formula: `=HYPERLINK(...)` or `=cmd|...` in a data point or a
city name would run on the reader's machine. In the CSV files of a release such a text cell is
written with a leading apostrophe (`'=1+2`), which spreadsheets show as text; a text cell that is a
plain number (`-12.5`) is left as it is, and numeric columns are never touched. In the U4SSC
workbook every text cell is stored as a string (never a formula), its text unchanged.
docs/releases.md states the rule for readers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_START_RE = r"^[=+\-@\t\r]"
_PLAIN_NUMBER_RE = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"
_PLAIN_NUMBER = re.compile(_PLAIN_NUMBER_RE)


def escape_cell(value: Any) -> Any:
    """One cell for a CSV writer: risky text gets a leading apostrophe; anything else is returned as is."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def escape_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """The same rule over every text column of a frame (numbers, dates and lists untouched)."""
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    if not text:
        return frame
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(_FORMULA_START_RE) & ~pl.col(c).str.contains(_PLAIN_NUMBER_RE))
        .then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c in text)


CSV_SLICE_ROWS = 50_000


def write_escaped_csv(frame: pl.DataFrame, path: Path, prepare: Callable[[pl.DataFrame], pl.DataFrame] | None = None
                      ) -> None:
    """`escape_frame(prepare(frame))` as CSV (floats as the shortest text that reads back to the same double),
    written a slice of rows at a time: the escaped copy of every text column of 1,000 cities' rows held at
    once added about a gigabyte to a release's peak. The bytes are those of the whole frame written at once."""
    with path.open("wb") as out:
        for start in range(0, max(frame.height, 1), CSV_SLICE_ROWS):
            part = frame.slice(start, CSV_SLICE_ROWS)
            escape_frame(part if prepare is None else prepare(part)).write_csv(
                out, include_header=start == 0, float_precision=None)
