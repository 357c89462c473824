"""kpi_values.sdmx.csv: SDMX-CSV 1.0 with the SDG data structure's concepts (role `sdmx_csv`).

Columns: DATAFLOW, the dimensions FREQ, SERIES, REF_AREA, COMPOSITE_BREAKDOWN, TIME_PERIOD, the
measure OBS_VALUE and the attributes UNIT_MEASURE, UNIT_MULT, OBS_STATUS; the concept ids are the
SDG DSD's (IAEG-SDGs). The dataflow is citykpi's own (`CITYKPI:DF_CITYKPI(1.0)`): the values are
city-level and the U4SSC KPIs have no SDG series codes, so claiming the global SDG dataflow would
be wrong. Only computed values are written (SDMX leaves missing observations out; the reasons are
in kpi_values).

Codes must be SDMX ids (letters, digits, '_', '-', '@', '$'), so indicator codes and data points
are turned into ids: SERIES = `SDG_11_6_2`, `U4SSC_EC_ICT_ICT_1C`; COMPOSITE_BREAKDOWN = the data
point (`PM2_5`) or `_Z` (not applicable), as in the SDG DSD.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from kpis.catalogue import Indicator
from publish import FileEntry, PublishContext, file_entry
from publish.pieces import PieceCache, PieceJob
from publish.textcells import escape_cell

NAME = "kpi_values.sdmx.csv"
ROLE = "sdmx_csv"
KIND = "sdmx_city"  # the piece kind of a city's lines
CHUNK = 64  # cities whose lines are looked up (or made) at a time
DATAFLOW = "CITYKPI:DF_CITYKPI(1.0)"
COLUMNS = ["DATAFLOW", "FREQ", "SERIES", "REF_AREA", "COMPOSITE_BREAKDOWN", "TIME_PERIOD", "OBS_VALUE",
           "UNIT_MEASURE", "UNIT_MULT", "OBS_STATUS"]
NOT_APPLICABLE = "_Z"
SDMX_ID = re.compile(r"^[A-Za-z0-9_@$\-]+$")

# Units with a code in the SDG global unit code list; any other unit becomes an id built from its text.
UNIT_CODES = {
    "%": "PERCENT",
    "µg/m3": "UG_PER_M3",
    "ug/m3": "UG_PER_M3",
    "number": "NUMBER",
    "per 100,000 inhabitants": "PER_100000_POP",
    "per 100,000 population": "PER_100000_POP",
    "ratio": "RATIO",
    "years": "YR",
    "minutes": "MIN",
}


def sdmx_id(text: str) -> str:
    """An SDMX id from free text: runs of other characters become '_', upper case."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper() or NOT_APPLICABLE


def series_code(framework: str, indicator_id: str) -> str:
    return f"{'SDG' if framework == 'sdg11' else 'U4SSC'}_{sdmx_id(indicator_id)}"


def unit_code(unit: str) -> str:
    if unit in UNIT_CODES:
        return UNIT_CODES[unit]
    if unit.startswith("%"):
        return "PERCENT"  # "% of city GDP" etc.: the qualifier is in the indicator's definition
    if unit.startswith("ratio"):
        return "RATIO"
    return sdmx_id(unit.replace("%", " percent ").replace("/", " per "))


def sdmx_rows(frame: pl.DataFrame) -> list[list[str]]:
    """The rows of the frame's computed values."""
    return _rows(frame.filter(pl.col("status") == "computed", pl.col("value").is_not_null()))


def _rows(observed: pl.DataFrame) -> list[list[str]]:
    rows = []
    for r in observed.iter_rows(named=True):
        rows.append([DATAFLOW, "A", series_code(r["framework"], r["indicator_id"]), r["city_id"],
                     sdmx_id(r["data_point"]) if r["data_point"] else NOT_APPLICABLE, str(r["year"]),
                     repr(float(r["value"])), unit_code(r["unit"]), "0", "A"])
    return rows


def city_csv(rows: pl.DataFrame) -> bytes:
    """A city's SDMX-CSV lines (its computed values, `pieces.OBSERVED_COLUMNS`), without the header."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([escape_cell(v) for v in row] for row in _rows(rows))
    return buffer.getvalue().encode("utf-8")


def write_sdmx_csv(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext,
                   folder: Path) -> list[FileEntry]:
    # Written city by city; each city's lines are a piece kept between releases (publish/pieces.py).
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(COLUMNS)
    path = folder / NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    pieces = context.pieces or PieceCache(None)
    slices = pieces.observed_by_city(frame)
    try:
        with path.open("wb") as out:
            out.write(header.getvalue().encode("utf-8"))
            for start in range(0, len(slices), CHUNK):
                jobs = [PieceJob(part.city_id, (part.digest,), city_csv, (part.rows,))
                        for part in slices[start:start + CHUNK]]
                for lines in pieces.get_many(KIND, jobs, local=True):
                    out.write(lines)
    finally:
        if pieces is not context.pieces:
            pieces.close()
    return [file_entry(folder, NAME, ROLE, "SDMX-CSV 1.0 observations with the SDG DSD's concepts (FREQ, SERIES, "
                                           "REF_AREA, COMPOSITE_BREAKDOWN, TIME_PERIOD, OBS_VALUE, UNIT_MEASURE, "
                                           "UNIT_MULT, OBS_STATUS)")]
