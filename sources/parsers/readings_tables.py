"""Readings tables (CSV, Excel, Parquet) in every published shape, converted to canonical readings.

`convert_readings_table` reads one file with the source's `readings` mapping and writes a Parquet of
canonical readings, `station_id, observed_at (UTC), code, value` (value null: an empty cell), in
file order. The three layouts (`long`, `wide`, `wide_hours`) become the same columns; the loader then
reads that Parquet with its one SQL path (warehouse/load.py), as it reads API pages converted by
`read_reading_pages`.

A CSV is read by polars as text (nothing is inferred) in chunks of about `CHUNK_BYTES` cut at line
ends outside quotes, and each chunk is converted and appended to the output Parquet, so memory stays
bounded whatever the file size; a non-UTF-8 file is first transcoded to UTF-8 in the cache folder,
chunk by chunk. Parquet is read in row batches. Every row keeps its file row number (a record's
number: the header is row 1), so a bad cell is reported with file, row and field. Excel sheets come
through `read_excel` (a workbook is at most a million rows).

Rules (the same for every layout):
- an empty value is a missing reading (kept as null; the load report counts it);
- a value whose validity flag is not in `valid_flags` counts as missing: dropped, counted as
  `flagged_invalid`;
- a value that is not a finite number is an error naming file, row and field, or with
  `invalid_values: skip` dropped and counted as `unreadable_values`;
- times without an offset are wall-clock times in `time_zone`: the first of two equal local times
  (clocks going back), an error for a local time that does not exist (clocks going forward) and
  holds a value;
- rows of codes the mapping does not list are kept (the loader counts them as unmapped codes) but
  not checked: a bad cell in a series nobody reads stops nothing.
"""

from __future__ import annotations

import codecs
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from canonical.errors import SourceDataError
from sources.config import ReadingsMapping, SourceConfig
from sources.parsers.tabular import check_line_lengths, detect_delimiter, detect_encoding, read_excel

ROW = "_row"
CANONICAL_SCHEMA: dict[str, Any] = {"station_id": pl.String, "observed_at": pl.Datetime("us", "UTC"), "code": pl.String,
                    "value": pl.Float64}
_ISO_OFFSET = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%d %H:%M%z")
_ISO_NAIVE = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d")
_DECIMAL_COMMA = r"^[+-]?\d+,\d+$"
_CHUNK = 1 << 20
CHUNK_BYTES = 1 << 20          # CSV bytes converted at a time: memory stays bounded whatever the file size
PARQUET_BATCH_ROWS = 250_000


def convert_readings_table(source: SourceConfig, path: Path, display_name: str, out: Path,
                           scratch: Path) -> dict[str, Any]:
    """Write the canonical readings of a CSV / Excel / Parquet file to `out` (atomically); return the
    counts for the load report. `scratch`: a folder for a transcoded copy of a non-UTF-8 CSV."""
    mapping = source.readings
    assert mapping is not None
    fmt = source.resolved_format
    transcoded: Path | None = None
    try:
        if fmt == "csv":
            path, transcoded = _utf8(source, path, display_name, scratch)
            schema, chunks = _csv_chunks(source, path)
        elif fmt == "excel":
            frame = _excel_frame(source, path, display_name)
            schema, chunks = frame.schema, iter([frame])
        elif fmt == "parquet":
            schema, chunks = _parquet_chunks(path)
        else:
            raise SourceDataError(display_name, f"readings tables are read from CSV, Excel or Parquet, not {fmt!r}",
                                  source_id=source.id)
        return _Converter(source, mapping, display_name, schema).write(out, chunks)
    except (pl.exceptions.PolarsError, pa.ArrowException) as exc:  # ragged rows, bad quoting, broken Parquet
        raise SourceDataError(display_name, f"cannot read the file: {str(exc).splitlines()[0]}",
                              source_id=source.id) from None
    finally:
        if transcoded is not None:
            transcoded.unlink(missing_ok=True)


def _utf8(source: SourceConfig, path: Path, name: str, scratch: Path) -> tuple[Path, Path | None]:
    """The CSV as UTF-8: the file itself, or a transcoded copy in `scratch` (returned to be removed)."""
    options = source.csv
    check_line_lengths(path, name)
    with path.open("rb") as handle:
        head = handle.read(_CHUNK)
    encoding = detect_encoding(head, options.encoding if options else None)
    if encoding == "utf-8" and len(head) == _CHUNK:
        encoding = _whole_file_encoding(path)
    if encoding.replace("_", "-").lower() in ("utf-8", "utf8", "utf-8-sig", "ascii"):
        return path, None
    scratch.mkdir(parents=True, exist_ok=True)
    transcoded = scratch / f".transcoded-{os.getpid()}-{path.name}"
    _transcode(path, transcoded, encoding, name)
    return transcoded, transcoded


def _csv_chunks(source: SourceConfig, path: Path) -> tuple[pl.Schema, Iterator[pl.DataFrame]]:
    """The header's columns (all text) and the rows in chunks of about CHUNK_BYTES, in file order, each
    with its file row numbers (the header is row `skip_rows + 1`). A chunk ends at a line end outside
    quotes (an even number of quote characters so far), so a quoted field spanning lines stays whole."""
    options = source.csv
    skip = options.skip_rows if options else 0
    with path.open("rb") as handle:
        for _ in range(skip):
            handle.readline()
        header = handle.readline().removeprefix(codecs.BOM_UTF8)
        sample = header + handle.read(_CHUNK)
    text = sample.decode("utf-8", errors="replace")
    delimiter = (options.delimiter if options and options.delimiter else
                 detect_delimiter("\n".join(text.splitlines()[:50])))

    def read(body: bytes, first_row: int) -> pl.DataFrame:
        frame = pl.read_csv(io.BytesIO(header + body), separator=delimiter, has_header=True, infer_schema=False,
                            quote_char='"', row_index_name=ROW, row_index_offset=first_row)
        return frame.rename({c: c.strip() for c in frame.columns if c != c.strip()})

    schema = read(b"", skip + 2).drop(ROW).schema

    def chunks() -> Iterator[pl.DataFrame]:
        row = skip + 2
        with path.open("rb") as handle:
            for _ in range(skip + 1):
                handle.readline()
            while body := handle.read(CHUNK_BYTES):
                body += handle.readline()
                while body.count(b'"') % 2 and (line := handle.readline()):
                    body += line
                frame = read(body, row)
                row += frame.height
                yield frame

    return schema, chunks()


def _parquet_chunks(path: Path) -> tuple[pl.Schema, Iterator[pl.DataFrame]]:
    parquet = pq.ParquetFile(path)
    schema = pl.DataFrame(pl.from_arrow(parquet.schema_arrow.empty_table())).schema

    def chunks() -> Iterator[pl.DataFrame]:
        row = 1
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            frame = pl.DataFrame(pl.from_arrow(batch)).with_row_index(ROW, offset=row)
            row += frame.height
            yield frame

    return schema, chunks()


def _whole_file_encoding(path: Path) -> str:
    """UTF-8 when every chunk decodes as UTF-8, else cp1252 (the head alone can mislead)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _transcode(path: Path, target: Path, encoding: str, name: str) -> None:
    try:
        decoder = codecs.getincrementaldecoder(encoding)()
    except LookupError:
        raise SourceDataError(name, f"unknown encoding {encoding!r}") from None
    try:
        with path.open("rb") as raw, target.open("w", encoding="utf-8", newline="") as text:
            while chunk := raw.read(_CHUNK):
                text.write(decoder.decode(chunk))
            text.write(decoder.decode(b"", final=True))
    except UnicodeDecodeError as exc:
        raise SourceDataError(name, f"cannot decode as {encoding}: {exc}") from None


def _excel_frame(source: SourceConfig, path: Path, name: str) -> pl.DataFrame:
    table = read_excel(path, source.excel, name)
    columns = {column: [row[i] for row in table.rows] for i, column in enumerate(table.columns) if column}
    frame = pl.DataFrame({**columns, ROW: table.row_numbers},
                         schema={**{c: pl.String for c in columns}, ROW: pl.Int64})
    return frame


class _Converter:
    """One file's rows in the canonical columns, with the checks every layout shares."""

    def __init__(self, source: SourceConfig, mapping: ReadingsMapping, name: str, schema: pl.Schema) -> None:
        self.source, self.mapping, self.name, self.schema = source, mapping, name, schema
        self.decimal_comma: bool | None = None  # decided on the first chunk

    def fail(self, message: str, row: Any = None, field: str | None = None) -> SourceDataError:
        return SourceDataError(self.name, message, row=int(row) if row is not None else None, field=field,
                               source_id=self.source.id)

    def need(self, *columns: str) -> None:
        present = [c for c in self.schema.names() if c != ROW]
        for column in columns:
            if column not in present:
                raise self.fail(f"column {column!r} not found; columns are {present}", field=column)

    def text(self, column: str) -> pl.Expr:
        return pl.col(column).cast(pl.String).str.strip_chars()

    # -- shapes: rows of (station, code, time parts, value text, flag, field name, file row) ----------

    def shaped(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        m = self.mapping
        station = self.text(m.station_field) if m.station_field else pl.lit(m.station, pl.String)
        if m.station_field:
            self.need(m.station_field)
        if m.layout == "wide_hours":
            return self._wide_hours(frame, station)
        assert m.time_field is not None
        self.need(m.time_field)
        time = pl.col(m.time_field)
        if m.layout == "long":
            assert m.variable_field and m.value_field
            self.need(m.variable_field, m.value_field, *([m.flag_field] if m.flag_field else []))
            parts = [self._row(frame, station, self.text(m.variable_field), time, m.value_field,
                               self.text(m.flag_field) if m.flag_field else None)]
        else:
            self.need(*m.variables)
            parts = [self._row(frame, station, pl.lit(code, pl.String), time, code, None) for code in m.variables]
        return pl.concat(parts, how="vertical")

    def _row(self, frame: pl.LazyFrame, station: pl.Expr, code: pl.Expr, time: pl.Expr, value_column: str,
             flag: pl.Expr | None, hour: int | None = None) -> pl.LazyFrame:
        value = pl.col(value_column)
        numeric = self.schema[value_column].is_numeric()
        return frame.select(
            station.alias("station_id"), code.alias("code"), time.alias("time"),
            (pl.lit(None, pl.String) if numeric else self.text(value_column)).alias("value_text"),
            (value.cast(pl.Float64) if numeric else pl.lit(None, pl.Float64)).alias("value_number"),
            (flag if flag is not None else pl.lit(None, pl.String)).alias("flag"),
            pl.lit(value_column).alias("field"), pl.lit(hour, pl.Int32).alias("hour"),
            pl.col(ROW).cast(pl.Int64).alias(ROW))

    def _wide_hours(self, frame: pl.LazyFrame, station: pl.Expr) -> pl.LazyFrame:
        m = self.mapping
        assert m.variable_field is not None
        self.need(m.variable_field)
        numbers = range(1, 25) if m.hours == "ending" else range(0, 24)
        hour_columns = [_hour_name(m.hour_columns, n) for n in numbers]
        flag_columns = [_hour_name(m.flag_columns, n) for n in numbers] if m.flag_columns else []
        date_columns = list(m.date_fields) if m.date_fields else [m.time_field or ""]
        self.need(*date_columns, *hour_columns, *flag_columns)
        if m.date_fields:
            year, month, day = (self.text(c).cast(pl.Int32, strict=False) for c in m.date_fields)
            date = pl.date(year, month, day)
        else:
            date = self._date(pl.col(date_columns[0]))
        code = self.text(m.variable_field)
        parts = []
        for index, number in enumerate(numbers):
            flag = self.text(flag_columns[index]) if flag_columns else None
            # The hour a reading covers starts at (number - 1) for hour-ending columns (H01 = 00:00-01:00).
            start = number - 1 if m.hours == "ending" else number
            parts.append(self._row(frame, station, code, date, hour_columns[index], flag, hour=start))
        return pl.concat(parts, how="vertical")

    # -- times ------------------------------------------------------------------------------------

    def _date(self, column: pl.Expr) -> pl.Expr:
        """The day of a wide_hours row (a Date / Datetime column, or text read with time_format)."""
        fmt = self.mapping.time_format
        name = self.mapping.time_field or ""
        dtype = self.schema[name]
        if dtype == pl.Date:
            return column
        if isinstance(dtype, pl.Datetime):
            return column.dt.date()
        text = column.cast(pl.String).str.strip_chars()
        if fmt:
            return text.str.to_datetime(fmt, strict=False, time_unit="us").dt.date()
        return pl.coalesce([text.str.to_datetime(f, strict=False, time_unit="us") for f in _ISO_NAIVE]).dt.date()

    def _utc(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """`local` (naive wall-clock time, or already UTC) and `observed_at` (UTC) from the time parts."""
        m = self.mapping
        zone = m.time_zone
        if m.layout == "wide_hours":
            local = pl.col("time").cast(pl.Datetime("us")) + pl.duration(hours=pl.col("hour"))
            return frame.with_columns(local.alias("local")).with_columns(_localize(pl.col("local"), zone))
        assert m.time_field is not None
        dtype = self.schema[m.time_field]
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            aware = pl.col("time").dt.convert_time_zone("UTC").dt.cast_time_unit("us")
            return frame.with_columns(aware.alias("local"), aware.alias("observed_at"))
        if isinstance(dtype, pl.Datetime | pl.Date):
            local = pl.col("time").cast(pl.Datetime("us"))
            return frame.with_columns(local.alias("local")).with_columns(_localize(pl.col("local"), zone))
        text = pl.col("time").cast(pl.String).str.strip_chars()
        fmt = m.time_format
        if fmt and "%z" not in fmt:
            naive = text.str.to_datetime(fmt, strict=False, time_unit="us")
            return frame.with_columns(naive.alias("local")).with_columns(_localize(pl.col("local"), zone))
        formats = [fmt] if fmt else list(_ISO_OFFSET)
        aware = pl.coalesce([text.str.replace(r"Z$", "+00:00").str.to_datetime(
            f, strict=False, time_unit="us", time_zone="UTC") for f in formats])
        naive = pl.lit(None, pl.Datetime("us")) if fmt else pl.coalesce(
            [text.str.to_datetime(f, strict=False, time_unit="us") for f in _ISO_NAIVE])
        frame = frame.with_columns(aware.alias("aware"), naive.alias("local"))
        return frame.with_columns(pl.coalesce(pl.col("aware"), _localize(pl.col("local"), zone)).alias(
            "observed_at"), pl.coalesce(pl.col("local"), pl.col("aware").dt.replace_time_zone(None)).alias("local"))

    # -- values and checks --------------------------------------------------------------------------

    def _decimal_comma(self, frame: pl.LazyFrame) -> bool:
        options = self.source.csv
        if options is not None and options.decimal is not None:
            return options.decimal == ","
        if self.source.resolved_format != "csv":
            return False
        sample = frame.select("value_text").drop_nulls().head(2000).collect()["value_text"]
        commas = int(sample.str.contains(_DECIMAL_COMMA).sum())
        points = int(sample.str.contains(r"\.").sum())
        return commas > 0 and points == 0

    def _prepared(self, chunk: pl.DataFrame) -> pl.DataFrame:
        """One chunk of the file in canonical columns plus the flags the checks read."""
        m = self.mapping
        frame = self._utc(self.shaped(chunk.lazy()))
        text = pl.col("value_text")
        thousands = self.source.csv.thousands if self.source.csv else None
        if thousands:
            text = text.str.replace_all(thousands, "", literal=True)
        if self.decimal_comma is None:
            self.decimal_comma = self._decimal_comma(frame)
        if self.decimal_comma:
            text = text.str.replace(",", ".", literal=True)
        number = pl.coalesce(pl.col("value_number"), text.cast(pl.Float64, strict=False))
        has_value = pl.col("value_number").is_not_null() | (pl.col("value_text").fill_null("") != "")
        flagged = pl.col("flag").is_not_null() & ~pl.col("flag").is_in(m.valid_flags) if (
            m.flag_columns or m.flag_field) else pl.lit(False)
        unreadable = has_value & ~flagged & (number.is_null() | ~number.is_finite())
        return frame.with_columns(number.alias("value"), pl.col("code").is_in(list(m.variables)).alias("mapped"),
                                  has_value.alias("has_value"), flagged.alias("flagged"),
                                  unreadable.alias("unreadable")).collect()

    def write(self, out: Path, chunks: Iterator[pl.DataFrame]) -> dict[str, Any]:
        """Convert chunk by chunk (memory bounded by the chunk size) into `out`, written atomically."""
        m = self.mapping
        checks = {
            "no_station": (pl.col("station_id").fill_null("") == "") & ~pl.col("flagged"),
            "no_code": pl.col("code").fill_null("") == "",
            "bad_time": pl.col("mapped") & ~pl.col("flagged") & pl.col("local").is_null() & pl.col("has_value"),
            "no_local_time": pl.col("mapped") & pl.col("has_value") & ~pl.col("flagged")
            & pl.col("local").is_not_null() & pl.col("observed_at").is_null(),
            "unreadable": pl.col("mapped") & pl.col("unreadable"),
        }
        fatal = [name for name in checks if not (name == "unreadable" and m.invalid_values == "skip")]
        keep = ~pl.col("flagged") & ~pl.col("unreadable") & ~(pl.col("observed_at").is_null() & ~pl.col("has_value"))
        totals = {"readings_in_file": 0, "flagged_invalid": 0, "unreadable_values": 0}
        staging = out.with_name(f".{out.name}.{os.getpid()}")
        out.parent.mkdir(parents=True, exist_ok=True)
        schema = pl.Schema(CANONICAL_SCHEMA)
        writer = pq.ParquetWriter(staging, pl.DataFrame(schema=schema).to_arrow().schema)
        try:
            for chunk in chunks:
                frame = self._prepared(chunk)
                # The first failing row of the file is in the first chunk that has one (chunks in file order).
                failing = frame.filter(pl.any_horizontal(checks[name] for name in fatal))
                if failing.height:
                    for name in fatal:
                        if failing.filter(checks[name]).height:
                            raise self._first_failure(failing.sort(ROW), name, checks[name])
                totals["readings_in_file"] += frame.height
                totals["flagged_invalid"] += int(frame["flagged"].sum())
                totals["unreadable_values"] += int(frame["unreadable"].sum())
                rows = frame.filter(keep).select(pl.col(c).cast(t) for c, t in schema.items())
                if rows.height:
                    writer.write_table(rows.to_arrow())
        except BaseException:
            writer.close()
            staging.unlink(missing_ok=True)
            raise
        writer.close()
        report: dict[str, Any] = {"layout": m.layout, **totals}
        if m.time_zone != "UTC":
            report["time_zone"] = m.time_zone
        out.with_suffix(".report.json").write_text(json.dumps(report), encoding="utf-8")
        os.replace(staging, out)  # complete or absent, never half-written (the report is written first)
        return report

    def _first_failure(self, frame: pl.DataFrame, name: str, condition: pl.Expr) -> SourceDataError:
        row = frame.filter(condition).row(0, named=True)
        m = self.mapping
        time_field = m.time_field or ", ".join(m.date_fields or [])
        if name == "no_station":
            return self.fail("no station id", row[ROW], m.station_field)
        if name == "no_code":
            return self.fail("no variable code", row[ROW], m.variable_field or row["field"])
        if name == "bad_time":
            how = f"time_format {m.time_format!r}" if m.time_format else "ISO 8601 (or set time_format)"
            shown = row["time"]
            if m.date_fields:
                return self.fail("year, month and day do not form a date", row[ROW], time_field)
            if shown is None or str(shown).strip() == "":
                return self.fail("no time", row[ROW], time_field)
            return self.fail(f"time {shown!s:.60} cannot be read with {how}", row[ROW], time_field)
        if name == "no_local_time":
            return self.fail(f"local time {row['local']:%Y-%m-%d %H:%M} does not exist in {m.time_zone} "
                             "(clocks go forward); if the publisher keeps standard time all year, declare a "
                             "fixed-offset zone such as Etc/GMT-1", row[ROW], row["field"])
        value = row["value_text"] if row["value_text"] is not None else row["value_number"]
        return self.fail(f"value {value!s:.60} of {row['code']!r} is not a finite number (invalid_values: skip "
                         "drops such values and counts them)", row[ROW], row["field"])


def _hour_name(pattern: str | None, number: int) -> str:
    assert pattern is not None
    return pattern.replace("{hh}", f"{number:02d}").replace("{h}", str(number))


def _localize(local: pl.Expr, zone: str) -> pl.Expr:
    """Wall-clock times in `zone` as UTC: the earlier of two equal local times, null for none."""
    if zone == "UTC":
        return local.dt.replace_time_zone("UTC").alias("observed_at")
    return local.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null").dt.convert_time_zone(
        "UTC").alias("observed_at")


def read_report(out: Path) -> dict[str, Any]:
    """The counts written beside a converted Parquet (a cache hit loads with the same report)."""
    side = out.with_suffix(".report.json")
    return json.loads(side.read_text(encoding="utf-8")) if side.exists() else {}
