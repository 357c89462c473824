"""u4ssc/<city>-<year>.xlsx: the U4SSC submission workbook, one per city and year (role `u4ssc_workbook`).

Sheets:
- `KPIs`: one row per U4SSC KPI and data point, in catalogue order, with the columns the U4SSC
  data-collection template asks for (VM p163): code, name, core/advanced, numerator, denominator,
  value, unit, data quality, data origin, data sources, notes; then the catalogue's confidence in the
  formula, the method variant (the inputs' derivations) and the caveats. Rows without a value stay in the
  sheet (the officer completes them) and are listed again in `Not reported`.
  The score columns follow (issue #9): the target in force, where it came from (citykpi default or
  the city's own table, with the citation), the share of target, the points 1-4 and the band, or
  why the KPI was not scored. Targets are public references, not the official U4SSC benchmarks.
- `Not reported`: the KPIs and data points without a value, with the status and the reason.
- `About`: city, year, the sources with their snapshots, and the data-quality vocabulary that the
  `Data quality` column's drop-down offers.

Data quality and origin come from the city config when a source declares them; otherwise the
quality cell is left for the officer (citykpi cannot know how a statistics office measured) and
the origin is the source's description. The bytes are deterministic: fixed document dates and
fixed zip entry times, so equal inputs give equal files. Written with XlsxWriter (about a third of
openpyxl's time, measured below in docs/performance.md), each cell by its type: text is always a string.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from kpis.catalogue import Indicator
from publish import City, FileEntry, PublishContext, SourceInfo, file_entry, write_bytes
from publish.pieces import PieceCache, PieceJob, split_by
from publish.scores import BAND_COLORS
from sources.config import DATA_QUALITY_LABELS

ROLE = "u4ssc_workbook"
CHUNK = 64  # city-years whose workbooks are made (in worker processes) and written at a time
FOLDER = "u4ssc"
# The U4SSC template's six data-quality categories (VM p163), best first.
DATA_QUALITY = list(DATA_QUALITY_LABELS.values())  # the template's order, best first
# A fixed document date: a workbook's bytes must not depend on when it was written.
DOC_DATE = datetime(1980, 1, 1)

KPI_HEADER = ["Code", "Dimension", "Sub-dimension", "Category", "Name", "Core/Advanced", "Data point", "Numerator",
              "Denominator", "Value", "Unit", "Status", "Data quality", "Data origin", "Data sources", "Notes",
              "Confidence", "Method variant", "Caveats",
              "Target", "Target source", "Share of target (%)", "Points", "Band", "Scoring note"]
KPI_WIDTHS = [16, 14, 16, 20, 40, 13, 16, 14, 14, 14, 22, 12, 30, 40, 60, 60, 18, 30, 40, 12, 50, 12, 8, 18, 50]
NUMBER_COLUMNS = [KPI_HEADER.index(c) for c in ("Numerator", "Denominator", "Value")]  # 0-based
SCORE_NUMBER_COLUMNS = [KPI_HEADER.index(c) for c in ("Target", "Share of target (%)")]
BAND_COLUMN = KPI_HEADER.index("Band")
CELL_CHARACTERS = 32_767
DISCLAIMER = ("Targets are citykpi defaults from public references or the city's own table, NOT the official U4SSC "
              "benchmarks (not public): scores are not U4SSC verification results.")
NOT_REPORTED_HEADER = ["Code", "Name", "Core/Advanced", "Data point", "Status", "Reason", "Missing inputs"]
NUMBER_FORMAT = "#,##0.00##"
HEADER_FILL = "#DDEBF7"


def path_for(city_id: str, year: int) -> str:
    return f"{FOLDER}/{city_id}-{year}.xlsx"


def _sources_of(inputs: list[dict[str, Any]], sources: Sequence[SourceInfo]) -> list[SourceInfo]:
    """The configured sources behind the inputs; a derived input names its source in its record text."""
    found: dict[str, SourceInfo] = {}
    by_id = {s.source_id: s for s in sources}
    for item in inputs:
        source_id = item.get("source_id")
        if source_id in by_id:
            found[source_id] = by_id[source_id]
        else:
            for s in sources:
                if s.source_id in str(item.get("source_record", "")):
                    found[s.source_id] = s
    return [found[k] for k in sorted(found)]


def _data_quality(used: Sequence[SourceInfo]) -> str:
    """The weakest declared category among the sources (a value is as good as its worst input)."""
    declared = [s.data_quality for s in used if s.data_quality in DATA_QUALITY]
    if not declared or len(declared) < len(used):
        return ""  # not declared for every source: the officer chooses
    return max(declared, key=lambda q: DATA_QUALITY.index(q or ""))


def _data_sources(inputs: list[dict[str, Any]]) -> str:
    parts = []
    for item in inputs:
        where = item.get("source_record") or ""
        if item.get("source_id") == "derived":
            parts.append(f"{item.get('variable')}: derived, {where}")
        else:
            parts.append(f"{item.get('variable')}: {item.get('source_id')} ({item.get('snapshot_id', '')}), {where}")
    return "; ".join(dict.fromkeys(parts))


def _notes(row: dict[str, Any]) -> str:
    notes = []
    if row["status"] == "computed" and row["formula"]:
        notes.append(f"formula v{row['formula_version']}: {row['formula']}")
    if row["status_reason"]:
        notes.append(row["status_reason"])
    return "; ".join(notes)


def _kpi_row(indicator: Indicator, data_point: str | None, row: dict[str, Any] | None,
             sources: Sequence[SourceInfo]) -> list[Any]:
    facts = [indicator.id, indicator.dimension, indicator.subdimension, indicator.category, indicator.name,
             (indicator.type or "").capitalize(), data_point or ""]
    if row is None:  # the warehouse has no row (should not happen: every KPI is in kpi_values)
        return [*facts, None, None, None, indicator.unit, "missing", "", "", "", "not in this release", "", "", ""]
    inputs = json.loads(row["inputs"] or "[]")
    used = _sources_of(inputs, sources)
    origin = "; ".join(dict.fromkeys(s.data_origin or s.description or s.source_id for s in used))
    computed = row["status"] == "computed"
    return [*facts, row["numerator"] if computed else None, row["denominator"] if computed else None,
            row["value"] if computed else None, row["unit"], row["status"],
            _data_quality(used) if computed else "", origin if computed else "",
            _data_sources(inputs) if computed else "", _notes(row),
            # How sure the formula is, how the inputs were made, the known deviation (issue #15).
            row.get("confidence") or "", row.get("method_variant") or "", row.get("caveats") or ""]


def _score_cells(score: dict[str, Any] | None) -> list[Any]:
    """Target, target source, share of target, points, band and a note, for one KPI data point."""
    if score is None:
        return [None, "", None, None, "", "no score in this release"]
    source = "; ".join(p for p in (score["target_source"], score["target_citation"]) if p)
    if score["status"] != "scored":
        return [score["target"], source, None, None, "N/A", score["status_reason"] or "not scored"]
    notes = [f"{score['direction']} is better"]
    if score["worst"] is not None:
        notes.append(f"worst {score['worst']:g}")
    if score["share_pct"] != score["share_capped_pct"]:
        notes.append(f"uncapped share {score['share_pct']:.1f} %")
    notes.append("official U4SSC benchmark" if score["official_u4ssc_benchmark"]
                 else "not the official U4SSC benchmark")
    return [score["target"], source, score["share_capped_pct"], score["points"], score["band_label"],
            "; ".join(notes)]


class _Sheet:
    """One worksheet written row by row: text always as a string (never a formula, whatever it starts
    with), numbers as numbers, None and "" as an empty cell."""

    def __init__(self, sheet: Worksheet, formats: _Formats) -> None:
        self.sheet, self.formats, self.rows = sheet, formats, 0

    def append(self, values: Sequence[Any], styles: dict[int, Format] | None = None) -> int:
        """Write the next row (`styles`: a format per 0-based column); returns its 0-based row index."""
        row = self.rows
        for column, value in enumerate(values):
            style = styles.get(column) if styles else None
            if value is None or value == "":  # an empty cell, as the officer would leave it
                if style is not None:
                    self.sheet.write_blank(row, column, None, style)
            elif isinstance(value, bool):
                self.sheet.write_boolean(row, column, value, style)
            elif isinstance(value, int | float):
                self.sheet.write_number(row, column, value, style)
            else:
                self.sheet.write_string(row, column, _fits_a_cell(str(value)), style)
        self.rows += 1
        return row

    def header(self, header: list[str], widths: list[int]) -> None:
        self.append(header, dict.fromkeys(range(len(header)), self.formats.header))
        for index, width in enumerate(widths):
            self.sheet.set_column(index, index, width)
        self.sheet.freeze_panes(1, 0)


def _fits_a_cell(text: str) -> str:
    """A cell holds at most 32,767 characters (Excel's limit): a longer text is cut and says so."""
    if len(text) <= CELL_CHARACTERS:
        return text
    note = f" [cut: {len(text):,} characters, past Excel's limit of {CELL_CHARACTERS:,} a cell]"
    return text[:CELL_CHARACTERS - len(note)] + note


@dataclasses.dataclass(frozen=True)
class _Formats:
    header: Format
    bold: Format
    title: Format
    number: Format
    bands: dict[str, Format]

    @classmethod
    def of(cls, wb: xlsxwriter.Workbook) -> _Formats:
        return cls(header=wb.add_format({"bold": True, "bg_color": HEADER_FILL, "pattern": 1, "text_wrap": True,
                                         "valign": "top"}),
                   bold=wb.add_format({"bold": True}), title=wb.add_format({"bold": True, "font_size": 12}),
                   number=wb.add_format({"num_format": NUMBER_FORMAT}),
                   bands={band: wb.add_format({"bg_color": color.upper(), "pattern": 1})
                          for band, color in BAND_COLORS.items()})


def _about(sheet: _Sheet, city_name: str, city_id: str, country: str, year: int,
           sources: Sequence[SourceInfo]) -> str:
    """Fill the About sheet; return the range of the data-quality list (for the drop-down)."""
    sheet.append(["U4SSC KPI submission workbook"], {0: sheet.formats.title})
    for label, value in (("City", city_name), ("City id", city_id), ("Country", country), ("Reporting year", year),
                         ("Prepared with", "citykpi (computed from the city's open data; every value's inputs "
                                           "are in the Data sources column)"),
                         ("Targets and scores", DISCLAIMER)):
        sheet.append([label, value])
    sheet.append([])
    sheet.append(["Data quality categories (U4SSC template)"])
    first = sheet.rows + 1  # 1-based, as Excel names rows
    for category in DATA_QUALITY:
        sheet.append(["", category])
    last = sheet.rows
    sheet.append([])
    source_header = ["Source", "Description", "License", "Kind", "Location", "Snapshot", "SHA-256"]
    sheet.append(source_header, dict.fromkeys(range(len(source_header)), sheet.formats.bold))
    for s in sources:
        sheet.append([s.source_id, s.description, s.license or "", s.kind, s.location, s.snapshot_id, s.content_sha256])
    for index, width in enumerate((22, 60, 12, 10, 30, 36, 66)):
        sheet.sheet.set_column(index, index, width)
    return f"About!$B${first}:$B${last}"


def workbook_xlsx(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext, city_id: str,
                  year: int, *, scored: pl.DataFrame | None = None) -> bytes:
    """The city-year's workbook file from `frame` (any rows; this city-year's are picked) and the scores
    (`scored`, else the context's kpi_scores). Its bytes depend only on these: fixed document dates,
    and XlsxWriter stamps every zip entry 1980-01-01."""
    city = context.city(city_id)
    sources = list(context.city_sources(city_id))
    rows = {(r["indicator_id"], r["data_point"]): r
            for r in frame.filter(pl.col("city_id") == city_id, pl.col("year") == year).iter_rows(named=True)}
    scored = context.benchmark("kpi_scores") if scored is None else scored
    scores = {} if scored is None else {
        (r["indicator_id"], r["data_point"]): r
        for r in scored.filter(pl.col("city_id") == city_id, pl.col("year") == year).iter_rows(named=True)}
    buffer = io.BytesIO()
    # Text never becomes a formula, a number or a link: every cell is written by its type (_Sheet).
    wb = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False, "strings_to_numbers": False,
                                      "strings_to_urls": False, "nan_inf_to_errors": True})
    wb.set_properties({"author": "citykpi", "created": DOC_DATE})
    formats = _Formats.of(wb)
    kpis = _Sheet(wb.add_worksheet("KPIs"), formats)
    not_reported = _Sheet(wb.add_worksheet("Not reported"), formats)
    about = _Sheet(wb.add_worksheet("About"), formats)
    quality_range = _about(about, city.name, city_id, city.country, year, sources)
    kpis.header(KPI_HEADER, KPI_WIDTHS)
    not_reported.header(NOT_REPORTED_HEADER, [16, 40, 13, 16, 12, 60, 40])
    # Full precision is stored (verifiers recompute); the display rounds to what a reader needs.
    numbers = dict.fromkeys([*NUMBER_COLUMNS, *SCORE_NUMBER_COLUMNS], formats.number)
    for indicator in (i for i in catalogue if i.framework == "u4ssc"):
        points: list[str | None] = [*indicator.data_points] or [None]
        for data_point in points:
            row = rows.get((indicator.id, data_point))
            score = scores.get((indicator.id, data_point))
            styles = numbers
            if score is not None and score["band"] in formats.bands:
                styles = {**numbers, BAND_COLUMN: formats.bands[score["band"]]}
            kpis.append([*_kpi_row(indicator, data_point, row, sources), *_score_cells(score)], styles)
            if row is None or row["status"] != "computed":
                missing = ", ".join(row["missing_inputs"] or []) if row else ""
                reason = (row["status_reason"] or "") if row else "not in this release"
                not_reported.append([indicator.id, indicator.name, (indicator.type or "").capitalize(),
                                     data_point or "", row["status"] if row else "missing", reason, missing])
    last = max(kpis.rows - 1, 1)
    # The officer picks a category where the config declared none: offer exactly the template's list.
    quality_column = KPI_HEADER.index("Data quality")
    kpis.sheet.data_validation(1, quality_column, last, quality_column,
                               {"validate": "list", "source": f"={quality_range}", "ignore_blank": True})
    kpis.sheet.autofilter(0, 0, kpis.rows - 1, len(KPI_HEADER) - 1)
    wb.close()
    return buffer.getvalue()


def workbook_bytes(rows: pl.DataFrame, scored: pl.DataFrame | None, catalogue: Sequence[Indicator], city: City,
                   sources: tuple[SourceInfo, ...], year: int) -> bytes:
    """One city-year's workbook file from plain values (what a worker process makes)."""
    context = PublishContext(cities=(city,), sources=sources)
    return workbook_xlsx(rows, catalogue, context, city.id, year, scored=scored)


def _job(rows: pl.DataFrame, scored: pl.DataFrame | None, catalogue: Sequence[Indicator], context: PublishContext,
         city_id: str, year: int, catalogue_digest: str) -> PieceJob:
    city, sources = context.city(city_id), context.city_sources(city_id)
    # Everything workbook() reads: the catalogue, the rows, the scores, the city's facts and sources (the
    # code is in the cache's salt).
    facts = json.dumps([city.id, city.name, city.country, year, scored is None,
                        [dataclasses.astuple(s) for s in sources]], ensure_ascii=False)
    return PieceJob(city_id, (catalogue_digest, facts, rows, scored), workbook_bytes,
                    (rows, scored, catalogue, city, sources, year))


def _plan(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext, pieces: PieceCache
          ) -> list[tuple[tuple[str, int], PieceJob]]:
    """Each city-year's workbook job, in file order."""
    # Split once: filtering the whole release per city-year grew with cities squared.
    parts = split_by(frame, "city_id", "year")
    all_scores = context.benchmark("kpi_scores")
    score_parts = {} if all_scores is None else split_by(all_scores, "city_id", "year")
    digest = pieces.catalogue_digest(catalogue)
    keys = frame.select("city_id", "year").unique().sort("city_id", "year").iter_rows()
    return [((city_id, year), _job(parts[(city_id, year)], None if all_scores is None else
                                   score_parts.get((city_id, year), all_scores.clear()), catalogue, context, city_id,
                                   year, digest)) for city_id, year in keys]


def start_u4ssc_workbooks(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext) -> None:
    """Hand the workbooks not in the piece cache to the worker processes before any file is written."""
    if context.pieces is not None:
        pieces = context.pieces
        planned = pieces.planned(ROLE, frame, lambda: _plan(frame, catalogue, context, pieces))
        pieces.start(ROLE, [job for _, job in planned])


def write_u4ssc_workbooks(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext,
                          folder: Path) -> list[FileEntry]:
    entries = []
    pieces = context.pieces or PieceCache(None)  # without a cache: every workbook made, still in parallel
    planned = pieces.planned(ROLE, frame, lambda: _plan(frame, catalogue, context, pieces))
    try:
        for start in range(0, len(planned), CHUNK):
            chunk = planned[start:start + CHUNK]
            made = pieces.get_many(ROLE, [job for _, job in chunk])
            for ((city_id, year), _), data in zip(chunk, made, strict=True):
                relative = path_for(city_id, year)
                write_bytes(folder, relative, data)
                entries.append(file_entry(folder, relative, ROLE,
                                          f"U4SSC submission workbook: {context.city(city_id).name}, {year}"))
    finally:
        if pieces is not context.pieces:
            pieces.close()
    return entries
