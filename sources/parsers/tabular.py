"""Tabular files (CSV, Excel, JSON records) read as text cells with their file row numbers.

Everything is read as strings first so that a bad cell can be reported with its file, row and
field instead of being silently turned into null by type inference.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
import json
import unicodedata
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from canonical.errors import TOO_DEEP, SourceDataError
from sources.config import CsvOptions, ExcelOptions
from sources.parsers.numbers import NumberFormat, detect_number_format, shown

MAX_LISTED_COLUMNS = 20  # column names an error message lists
# Byte-order marks, longest first (the UTF-32 LE mark starts like the UTF-16 LE one).
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))

CANDIDATE_DELIMITERS = ";,\t|"
# Longest CSV line accepted. Open-data CSVs with WKT geometry columns reach a few MB per line; a
# line of hundreds of MB is a broken or hostile file and is rejected before anything is decoded.
MAX_LINE_BYTES = 64 << 20
_SCAN_CHUNK = 1 << 20


@dataclass
class TextTable:
    """Header, rows of text cells, the file row number of each row, and how numbers are written.

    `row_labels`, when given, say more than the number where a row came from (API pages:
    `27 (page 2 record 7)`); messages and `source_record` show them instead of the bare number.
    """

    path: Path
    display_name: str
    columns: list[str]
    rows: list[list[str]]
    row_numbers: list[int]
    number_format: NumberFormat
    row_labels: list[str] | None = None
    # With cells left out by a reader (read_csv's `keep`): each row's hash over all its cells, as read.
    row_hashes: array[int] | None = None

    def __post_init__(self) -> None:
        if self.row_labels is not None and len(self.row_labels) != len(self.row_numbers):
            raise ValueError("row_labels must name every row")

    def row_label(self, index: int) -> str:
        """How row `index` (0-based position in `rows`) is shown: its file row number, or its label."""
        return self.row_labels[index] if self.row_labels is not None else str(self.row_numbers[index])

    def column_index(self, name: str, *, source_id: str | None = None) -> int:
        """The column called `name` (see `find_column`)."""
        return find_column(self.columns, name, self.display_name, source_id)


def find_column(columns: list[str], name: str, display_name: str, source_id: str | None = None) -> int:
    """The column called `name`; else the one column equal to it once runs of spaces are one space and
    accents are composed the same way (headers like 'Nº  EXPEDIENTE' with a double space)."""
    try:
        return columns.index(name)
    except ValueError:
        pass
    loose = [i for i, column in enumerate(columns) if _loose(column) == _loose(name)]
    if len(loose) == 1:
        return loose[0]
    listed = ", ".join(shown(c) for c in columns[:MAX_LISTED_COLUMNS])
    more = f" and {len(columns) - MAX_LISTED_COLUMNS} more" if len(columns) > MAX_LISTED_COLUMNS else ""
    raise SourceDataError(display_name, f"column {shown(name)} not found; columns are [{listed}]{more}",
                          field=name[:40], source_id=source_id)


def _loose(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name).split())


def header_names(cells: list[str], display_name: str, row: int | None = None) -> list[str]:
    """Column names from a header row: an empty name becomes 'column <n>' (1-based position, e.g. the
    two trailing columns a line ending in ';;' makes); a name given twice is an error naming both."""
    names = [cell.strip() or f"column {position}" for position, cell in enumerate(cells, start=1)]
    first: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in first:
            raise SourceDataError(display_name, f"column name {shown(name)} appears twice in the header, at "
                                  f"columns {first[name]} and {position}; rename one (values could not be told "
                                  "apart)", row=row)
        first[name] = position
    return names


def detect_encoding(data: bytes, declared: str | None) -> str:
    if declared:
        return declared
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        # Western European portals: cp1252 is a superset of Latin-1's printable range.
        return "cp1252"


def detect_delimiter(text: str) -> str:
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=CANDIDATE_DELIMITERS).delimiter
    except csv.Error:
        header = sample.splitlines()[0] if sample else ""
        counts = {d: header.count(d) for d in CANDIDATE_DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def check_line_lengths(path: Path, display_name: str, limit: int | None = None) -> None:
    """Stream the file in chunks and fail on the first line longer than `limit` bytes.

    Only the current chunk (at most 1 MiB) is held in memory, so a 300 MB line costs 1 MiB to
    reject. A line inside one chunk is shorter than the chunk, which is never above the limit, so
    only the lines crossing chunk boundaries are measured (newlines are found and counted in C).
    """
    limit = MAX_LINE_BYTES if limit is None else limit
    size = max(1, min(_SCAN_CHUNK, limit))
    lines, length = 0, 0  # complete lines so far; bytes of the line in progress
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            first = chunk.find(b"\n")
            if first < 0:
                length += len(chunk)
            else:
                if length + first > limit:
                    length += first
                    break
                lines += chunk.count(b"\n")
                length = len(chunk) - chunk.rfind(b"\n") - 1
            if length > limit:
                break
        else:
            return
    raise SourceDataError(display_name, f"line longer than {limit:,} bytes ({length:,} bytes read so far); a CSV "
                          "line this long is a broken or hostile file and is not read", row=lines + 1)


def _file_encoding(path: Path, declared: str | None) -> str:
    """`detect_encoding` for a file, streamed: a byte-order mark, else UTF-8 if every chunk decodes, else cp1252."""
    if declared:
        return declared
    with path.open("rb") as handle:
        head = handle.read(4)
        for bom, encoding in _BOMS:
            if head.startswith(bom):
                return encoding
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while chunk := handle.read(_SCAN_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252"
    return "utf-8"


def _text_lines(handle: io.TextIOWrapper, display_name: str, encoding: str) -> Iterator[str]:
    """The file's lines (with their line ends, for the csv module), refusing NUL characters."""
    for number, line in enumerate(handle, start=1):
        if number == 1:
            line = line.lstrip("\ufeff")
        if "\x00" in line:
            # Text CSVs never hold NUL: UTF-16/32 without a byte-order mark, or not text at all.
            raise SourceDataError(display_name, f"the file holds NUL characters once decoded as {encoding}: not a "
                                  "text CSV, or UTF-16/UTF-32 without a byte-order mark (declare csv.encoding, e.g. "
                                  "utf-16-le)", row=number)
        yield line


# Values of a column are shared (one string object per distinct value) until it has this many: years,
# months and district codes repeat on every row of a big file; measured values rarely do.
_INTERN_LIMIT = 4096


def _open_text(path: Path, options: CsvOptions, display_name: str) -> str:
    """Checks before any row is read (line lengths, streamed); the encoding to read the file with."""
    check_line_lengths(path, display_name)
    encoding = _file_encoding(path, options.encoding)
    try:
        codecs.lookup(encoding)
    except LookupError as exc:
        raise SourceDataError(display_name, f"cannot decode as {encoding}: {shown(str(exc), 120)}") from None
    return encoding


def _decode_error(path: Path, encoding: str, display_name: str, exc: UnicodeDecodeError) -> SourceDataError:
    with path.open("rb") as handle:
        head = handle.read(4)
    bom = next((name for mark, name in _BOMS if head.startswith(mark)), None)
    hint = f" (the file starts with a {bom} byte-order mark)" if bom and bom != encoding else ""
    return SourceDataError(display_name, f"cannot decode as {encoding}{hint}: {shown(str(exc), 120)}")


class _Records:
    """The data rows of an open CSV text stream: trimmed cells and file line number, blank lines skipped;
    a ragged row, a malformed quote or a file without rows is an error naming the line."""

    def __init__(self, lines: Iterator[str], delimiter: str, skip_rows: int, display_name: str) -> None:
        self.reader = csv.reader(lines, delimiter=delimiter)
        self.skip_rows, self.display_name = skip_rows, display_name
        first = self._next()
        if first is None:
            detail = f" after skip_rows {skip_rows}" if skip_rows else ""
            raise SourceDataError(display_name, f"file is empty{detail}: no header row")
        record, self.header_line = first
        self.header = header_names(record, display_name, self.header_line)

    _last_line = 0  # the reader's line count after the previous record

    def _next(self) -> tuple[list[str], int] | None:
        try:
            record = next(self.reader, None)
        except csv.Error as exc:
            raise SourceDataError(self.display_name, f"malformed CSV: {exc}",
                                  row=self.reader.line_num + self.skip_rows) from None
        if record is None:
            return None
        line_num, previous = self.reader.line_num, self._last_line
        self._last_line = line_num
        if line_num - previous == 1:  # one line read: no cell holds a line break
            return record, line_num + self.skip_rows
        # A quoted field may span lines, so count lines, not records.
        return record, line_num - sum(cell.count("\n") for cell in record) + self.skip_rows

    def __iter__(self) -> Iterator[tuple[list[str], int]]:
        width = len(self.header)
        any_rows = False
        while (item := self._next()) is not None:
            record, line = item
            cells = [cell.strip() for cell in record]
            if not any(cells):
                continue  # blank line
            if len(cells) != width:
                raise SourceDataError(self.display_name, f"expected {width} fields, found {len(cells)}", row=line)
            any_rows = True
            yield cells, line
        if not any_rows:
            raise SourceDataError(self.display_name, f"no data rows: the header (line {self.header_line}, {width} "
                                  "columns) is followed by nothing but blank lines", row=self.header_line)


@contextlib.contextmanager
def _csv_records(path: Path, options: CsvOptions, encoding: str, display_name: str, delimiter: str | None
                 ) -> Iterator[tuple[_Records, list[tuple[list[str], int]], Iterator[tuple[list[str], int]]]]:
    """Open the file as CSV rows: the reader, its first 500 rows (read ahead, for the number format) and
    the rows after them. The delimiter is sniffed from the first 50 lines unless given."""
    with path.open("rb") as raw:
        handle = io.TextIOWrapper(raw, encoding=encoding, newline="")
        try:
            lines = _text_lines(handle, display_name, encoding)
            for _ in range(options.skip_rows):
                next(lines, None)
            head = list(itertools.islice(lines, 50))
            delimiter = delimiter or options.delimiter or detect_delimiter("".join(head))
            records = _Records(itertools.chain(head, lines), delimiter, options.skip_rows, display_name)
            rows = iter(records)
            first = list(itertools.islice(rows, _FORMAT_SAMPLE_ROWS))
            yield records, first, _decoded(rows, path, encoding, display_name)
        except UnicodeDecodeError as exc:
            raise _decode_error(path, encoding, display_name, exc) from None


def _decoded(rows: Iterator[tuple[list[str], int]], path: Path, encoding: str, display_name: str
             ) -> Iterator[tuple[list[str], int]]:
    try:
        yield from rows
    except UnicodeDecodeError as exc:
        raise _decode_error(path, encoding, display_name, exc) from None


_FORMAT_SAMPLE_ROWS = 500  # rows whose cells decide the number format


def read_csv(path: Path, options: CsvOptions | None, display_name: str, keep: set[str] | None = None) -> TextTable:
    """Read a CSV as text cells, streaming the file (never the whole text in memory): rows are lists of
    trimmed cells, repeated values of a column share one string, and each row keeps its file line number.

    With `keep` (the columns a mapping reads, matched as `TextTable.column_index` matches), the other
    columns' cells are left empty to save memory; each row's hash over all its cells is kept in
    `row_hashes` so that rows identical cell for cell are still found. For files too large to hold as
    rows at all, `open_csv` streams them."""
    options = options or CsvOptions()
    encoding = _open_text(path, options, display_name)
    with _csv_records(path, options, encoding, display_name, None) as (records, first, rest):
        delimiter = records.reader.dialect.delimiter
        rows, numbers, hashes = _kept_rows(records.header, itertools.chain(first, rest), keep)
    number_format = _number_format(options, rows, delimiter)
    return TextTable(path, display_name, records.header, rows, numbers, number_format, row_hashes=hashes)


@dataclass
class CsvStream:
    """A CSV read row by row, as often as needed, never held (issue #14: bounded memory for large
    statistics tables). Opening it checks the file (line lengths, encoding, header, the first rows, the
    number format); `rows()` reads it again from the start each time, with every check of `read_csv`."""

    path: Path
    display_name: str
    columns: list[str]
    number_format: NumberFormat
    options: CsvOptions
    encoding: str
    delimiter: str
    row_labels: None = None  # rows are named by their line number

    def column_index(self, name: str, *, source_id: str | None = None) -> int:
        return find_column(self.columns, name, self.display_name, source_id)

    def rows(self) -> Iterator[tuple[list[str], int]]:
        """Every data row in file order: its trimmed cells and its file line number."""
        with _csv_records(self.path, self.options, self.encoding, self.display_name, self.delimiter) as (
                _, first, rest):
            yield from first
            yield from rest


def open_csv(path: Path, options: CsvOptions | None, display_name: str) -> CsvStream:
    """A CSV to stream (see `CsvStream`); fails as `read_csv` fails on a bad header, encoding or first rows."""
    options = options or CsvOptions()
    encoding = _open_text(path, options, display_name)
    with _csv_records(path, options, encoding, display_name, None) as (records, first, _):
        delimiter = records.reader.dialect.delimiter
        number_format = _number_format(options, [cells for cells, _ in first], delimiter)
        return CsvStream(path, display_name, records.header, number_format, options, encoding, delimiter)


def _kept(header: list[str], keep: set[str]) -> list[bool]:
    kept = [False] * len(header)
    for name in keep:
        with contextlib.suppress(SourceDataError):  # the mapping reports a missing column itself
            kept[find_column(header, name, "")] = True
    return kept


def _kept_rows(header: list[str], records: Iterator[tuple[list[str], int]], keep: set[str] | None
               ) -> tuple[list[list[str]], list[int], array[int] | None]:
    rows: list[list[str]] = []
    numbers: list[int] = []
    shared: list[dict[str, str] | None] = [{} for _ in header]
    hashes = array("q") if keep is not None else None
    dropped: list[int] = []
    if keep is not None:
        dropped = [index for index, kept in enumerate(_kept(header, keep)) if not kept]
        for index in dropped:
            shared[index] = None
    for cells, line in records:
        if hashes is not None:
            hashes.append(hash(tuple(cells)))
            for index in dropped:
                cells[index] = ""
        for index, pool in enumerate(shared):
            if pool is not None:
                cells[index] = pool.setdefault(cells[index], cells[index])
                if len(pool) > _INTERN_LIMIT:
                    shared[index] = None
        rows.append(cells)
        numbers.append(line)
    return rows, numbers, hashes


def _number_format(options: CsvOptions, rows: Sequence[Sequence[str]], delimiter: str | None) -> NumberFormat:
    detected = detect_number_format((cell for row in rows[:_FORMAT_SAMPLE_ROWS] for cell in row), delimiter)
    decimal = options.decimal or detected.decimal
    thousands: str
    if options.thousands is not None:
        thousands = options.thousands
    elif options.decimal and options.decimal != detected.decimal:
        thousands = "." if decimal == "," else ","
    else:
        thousands = detected.thousands
    return NumberFormat(decimal=decimal, thousands=thousands)


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_excel(path: Path, options: ExcelOptions | None, display_name: str) -> TextTable:
    from openpyxl import load_workbook  # heavy import, only for Excel sources

    options = options or ExcelOptions()
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for corrupt files
        raise SourceDataError(display_name, f"cannot open workbook: {exc}") from None
    try:
        if isinstance(options.sheet, int) and 0 <= options.sheet < len(workbook.worksheets):
            sheet = workbook.worksheets[options.sheet]
        elif isinstance(options.sheet, str) and options.sheet in workbook.sheetnames:
            sheet = workbook[options.sheet]
        else:
            raise SourceDataError(display_name,
                                  f"sheet {options.sheet!r} not found; sheets are {workbook.sheetnames}")
        all_rows = list(sheet.iter_rows(values_only=True))
    finally:
        workbook.close()
    if len(all_rows) < options.header_row:
        raise SourceDataError(display_name, f"sheet has no header row {options.header_row}")
    header = [_cell_text(v) for v in all_rows[options.header_row - 1]]
    while header and not header[-1]:
        header.pop()
    header = header_names(header, f"{display_name} (sheet {sheet.title})", options.header_row)
    rows, numbers = [], []
    for excel_row, values in enumerate(all_rows[options.header_row:], start=options.header_row + 1):
        cells = [_cell_text(v) for v in values[: len(header)]]
        cells += [""] * (len(header) - len(cells))
        if any(cells):
            rows.append(cells)
            numbers.append(excel_row)
    # Numeric cells come out of openpyxl as Python numbers, so '.' is the decimal separator.
    return TextTable(path, f"{display_name} (sheet {sheet.title})", header, rows, numbers, NumberFormat())


def read_json_records(path: Path, display_name: str, records_path: str | None = None) -> TextTable:
    """Records of a JSON file, in the envelopes the API path unwraps (sources/parsers/pages.py): an array
    (Socrata), CKAN `{"success", "result": {"records"}}`, OpenDataSoft v2.1 `{"total_count", "results"}`,
    `{records|results|data|value: [...]}`; or the array at a dotted `records_path`. Nested objects become
    dotted columns (`coordinates.lat`), lists JSON text, as on API pages."""
    from sources.parsers.pages import _flatten, page_records  # pages imports this module

    if records_path is None:
        try:
            records = page_records(path, display_name)
        except SourceDataError:
            _check_ckan_success(path, display_name)  # a saved error response says more than "no records"
            raise
    else:
        records = _at_path(path, display_name, records_path)
    if not records:
        raise SourceDataError(display_name, "no data rows: the file holds no records")
    flat = [_flatten(record) for record in records]
    columns: list[str] = []
    seen: set[str] = set()
    for record in flat:
        for key in record:
            if key not in seen:
                seen.add(key)
                columns.append(key)
    rows = [[_cell_text(record.get(c)) for c in columns] for record in flat]
    return TextTable(path, display_name, columns, rows, list(range(1, len(rows) + 1)), NumberFormat())


def _load_json(path: Path, display_name: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceDataError(display_name, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise SourceDataError(display_name, TOO_DEEP) from None


def _check_ckan_success(path: Path, display_name: str) -> None:
    payload = _load_json(path, display_name)
    if isinstance(payload, dict) and payload.get("success") is False:
        raise SourceDataError(display_name, f"a saved CKAN error response (success: false): "
                              f"{shown(json.dumps(payload.get('error'), ensure_ascii=False), 200)}")


def _at_path(path: Path, display_name: str, records_path: str) -> list[dict[str, Any]]:
    node: Any = _load_json(path, display_name)
    walked: list[str] = []
    for key in records_path.split("."):
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            keys = ", ".join(shown(str(k)) for k in list(node)[:MAX_LISTED_COLUMNS]) if isinstance(node, dict) else ""
            found = f"keys there are [{keys}]" if isinstance(node, dict) else f"found {type(node).__name__}"
            raise SourceDataError(display_name, f"records_path {records_path!r}: no {key!r} at "
                                  f"{'.'.join(walked) or 'the top'}; {found}")
        walked.append(key)
    if not isinstance(node, list) or not all(isinstance(r, dict) for r in node):
        raise SourceDataError(display_name, f"records_path {records_path!r} does not lead to an array of records "
                              "(objects)")
    return node


def read_parquet_table(path: Path, display_name: str) -> TextTable:
    """A Parquet statistics table as text cells (numbers written back with '.' decimals); rows are
    numbered from 1 in file order, since a Parquet file has no lines."""
    import polars as pl

    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for a corrupt file
        raise SourceDataError(display_name, f"cannot read as Parquet: {shown(str(exc))}") from None
    columns = frame.columns
    if len(set(columns)) != len(columns):
        raise SourceDataError(display_name, "a column name appears twice")
    text = frame.select(pl.col(c).cast(pl.String) for c in columns)
    rows = [["" if cell is None else _cell_text(cell) for cell in row] for row in text.iter_rows()]
    return TextTable(path, display_name, list(columns), rows, list(range(1, len(rows) + 1)), NumberFormat())
