"""Tabular files (CSV, Excel, JSON records) read as text cells with their file row numbers.

Everything is read as strings first so that a bad cell can be reported with its file, row and
field instead of being silently turned into null by type inference.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sources.config import CsvOptions, ExcelOptions
from sources.errors import SourceDataError
from sources.parsers.numbers import NumberFormat, detect_number_format

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

    def __post_init__(self) -> None:
        if self.row_labels is not None and len(self.row_labels) != len(self.row_numbers):
            raise ValueError("row_labels must name every row")

    def row_label(self, index: int) -> str:
        """How row `index` (0-based position in `rows`) is shown: its file row number, or its label."""
        return self.row_labels[index] if self.row_labels is not None else str(self.row_numbers[index])

    def column_index(self, name: str, *, source_id: str | None = None) -> int:
        try:
            return self.columns.index(name)
        except ValueError:
            raise SourceDataError(
                self.display_name, f"column {name!r} not found; columns are {self.columns}",
                field=name, source_id=source_id,
            ) from None


def detect_encoding(data: bytes, declared: str | None) -> str:
    if declared:
        return declared
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
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


def read_csv(path: Path, options: CsvOptions | None, display_name: str) -> TextTable:
    options = options or CsvOptions()
    check_line_lengths(path, display_name)
    data = path.read_bytes()
    encoding = detect_encoding(data, options.encoding)
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise SourceDataError(display_name, f"cannot decode as {encoding}: {exc}") from None
    text = text.lstrip("\ufeff")
    lines = text.splitlines()[options.skip_rows:]
    delimiter = options.delimiter or detect_delimiter("\n".join(lines))
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    records: list[tuple[int, list[str]]] = []  # (file line where the record starts, cells)
    try:
        for record in reader:
            # A quoted field may span lines, so count lines, not records.
            start = reader.line_num - sum(cell.count("\n") for cell in record)
            records.append((start + options.skip_rows, record))
    except csv.Error as exc:
        raise SourceDataError(display_name, f"malformed CSV: {exc}",
                              row=reader.line_num + options.skip_rows) from None
    if not records:
        raise SourceDataError(display_name, "file is empty")
    header = [h.strip() for h in records[0][1]]
    rows, numbers = [], []
    for line, record in records[1:]:
        if not any(cell.strip() for cell in record):
            continue  # blank line
        if len(record) != len(header):
            raise SourceDataError(display_name, f"expected {len(header)} fields, found {len(record)}",
                                  row=line)
        rows.append([cell.strip() for cell in record])
        numbers.append(line)
    number_format = _number_format(options, rows, delimiter)
    return TextTable(path, display_name, header, rows, numbers, number_format)


def _number_format(options: CsvOptions, rows: list[list[str]], delimiter: str | None) -> NumberFormat:
    detected = detect_number_format((cell for row in rows[:500] for cell in row), delimiter)
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
    rows, numbers = [], []
    for excel_row, values in enumerate(all_rows[options.header_row:], start=options.header_row + 1):
        cells = [_cell_text(v) for v in values[: len(header)]]
        cells += [""] * (len(header) - len(cells))
        if any(cells):
            rows.append(cells)
            numbers.append(excel_row)
    # Numeric cells come out of openpyxl as Python numbers, so '.' is the decimal separator.
    return TextTable(path, f"{display_name} (sheet {sheet.title})", header, rows, numbers, NumberFormat())


def read_json_records(path: Path, display_name: str) -> TextTable:
    try:
        payload = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceDataError(display_name, f"not valid JSON: {exc}") from None
    if isinstance(payload, dict):
        for key in ("records", "results", "data", "value"):
            if isinstance(payload.get(key), list):
                payload = payload[key]
                break
    if not isinstance(payload, list) or not all(isinstance(r, dict) for r in payload):
        raise SourceDataError(display_name, "expected a JSON array of records (objects)")
    columns: list[str] = []
    for record in payload:
        for key in record:
            if key not in columns:
                columns.append(key)
    rows = [[_cell_text(record.get(c)) for c in columns] for record in payload]
    return TextTable(path, display_name, columns, rows, list(range(1, len(rows) + 1)), NumberFormat())
