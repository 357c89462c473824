"""Hostile and odd tabular input (issue #14): duplicated headers, locale-only numbers, UTF-16/32,
bounded error messages, files without data rows, JSON envelopes of saved API responses."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest
from openpyxl import Workbook
from shared_data import require_shared

from canonical.errors import SourceDataError
from sources.config import CsvOptions, ExcelOptions
from sources.parsers.numbers import NumberFormat
from sources.parsers.tabular import read_csv, read_excel, read_json_records


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("text", ["5_0000", "1_000.5", "nan", "NaN", "inf", "-infinity", "\u0661\u0662", "0x10",
                                  "1e", "+-1", "١٢٣"])
def test_only_locale_numbers_are_numbers(text: str) -> None:
    for fmt in (NumberFormat(), NumberFormat(decimal=",", thousands=".")):
        with pytest.raises(ValueError, match="not a number"):
            fmt.parse(text)


def test_long_cells_are_cut_in_number_errors() -> None:
    with pytest.raises(ValueError) as info:
        NumberFormat().parse("x" * 10_000)
    assert len(str(info.value)) < 100


def test_duplicated_header_names_both_positions(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", b"Year;Value;District;Value\n2023;1;01;2\n")
    with pytest.raises(SourceDataError) as info:
        read_csv(path, None, "d.csv")
    assert "'Value' appears twice in the header, at columns 2 and 4" in str(info.value)
    assert info.value.row == 1


def test_duplicated_header_in_excel(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Jahr", "Wert", "Wert"])
    sheet.append([2023, 1, 2])
    workbook.save(tmp_path / "d.xlsx")
    with pytest.raises(SourceDataError, match="'Wert' appears twice in the header, at columns 2 and 3"):
        read_excel(tmp_path / "d.xlsx", ExcelOptions(), "d.xlsx")


def test_empty_header_names_are_positions(tmp_path: Path) -> None:
    path = write(tmp_path, "e.csv", b"Year;;Value;;\r\n2023;x;1;;\r\n")
    table = read_csv(path, None, "e.csv")
    assert table.columns == ["Year", "column 2", "Value", "column 4", "column 5"]
    assert table.rows == [["2023", "x", "1", "", ""]]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_utf16_and_utf32_are_detected_by_bom(tmp_path: Path, encoding: str) -> None:
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE, "utf-32-le": codecs.BOM_UTF32_LE,
           "utf-32-be": codecs.BOM_UTF32_BE}[encoding]
    path = write(tmp_path, "u.csv", bom + "Jahr;Größe\r\n2023;1,5\r\n".encode(encoding))
    table = read_csv(path, None, "u.csv")
    assert table.columns == ["Jahr", "Größe"]
    assert table.rows == [["2023", "1,5"]]
    assert table.number_format.parse("1,5") == 1.5


def test_utf16_without_bom_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "u.csv", "Jahr;Wert\n2023;1\n".encode("utf-16-le"))
    with pytest.raises(SourceDataError, match=r"NUL characters .* UTF-16/UTF-32 without a byte-order mark"):
        read_csv(path, None, "u.csv")
    assert read_csv(path, CsvOptions(encoding="utf-16-le"), "u.csv").rows == [["2023", "1"]]


def test_column_not_found_lists_at_most_20_names_escaped_and_cut(tmp_path: Path) -> None:
    names = [f"SECRET_{i}=" + "v" * 200 + "\x1b[31m" for i in range(500)]
    path = write(tmp_path, "env.csv", (";".join(names) + "\n" + ";".join("1" for _ in names) + "\n").encode())
    table = read_csv(path, None, "env.csv")
    with pytest.raises(SourceDataError) as info:
        table.column_index("Year")
    message = str(info.value)
    # At most 20 names, each cut; the whole message is then cut to a short excerpt (canonical/errors.py).
    assert "SECRET_0=" in message and "SECRET_20=" not in message
    assert "\x1b" not in message and "vvvvv..." in message
    assert len(message) < 20 * 60 + 200


def test_proc_environ_like_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = write(tmp_path, "environ", b"HOME=/root\x00API_TOKEN=abcdef\x00PATH=/usr/bin\x00")
    with pytest.raises(SourceDataError) as info:
        read_csv(path, None, "environ")
    assert "abcdef" not in str(info.value) and "NUL" in str(info.value)


def test_header_only_csv_says_it_has_no_data_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "h.csv", b"Jahr;Wert\r\n\r\n\r\n")
    with pytest.raises(SourceDataError, match=r"no data rows: the header \(line 1, 2 columns\)"):
        read_csv(path, None, "h.csv")
    with pytest.raises(SourceDataError, match="file is empty after skip_rows 3"):
        read_csv(path, CsvOptions(skip_rows=3), "h.csv")


def test_column_names_match_across_double_spaces() -> None:
    from sources.parsers.tabular import TextTable

    table = TextTable(Path("x"), "x", ["Nº  EXPEDIENTE", "A  B", "A B"], [], [], NumberFormat())
    assert table.column_index("Nº EXPEDIENTE") == 0
    with pytest.raises(SourceDataError, match="not found"):
        table.column_index("A   B")  # two columns match loosely: none is chosen


# ---- JSON envelopes --------------------------------------------------------------------------------


def test_ckan_datastore_search_response(tmp_path: Path) -> None:
    payload = {"success": True, "result": {"fields": [{"id": "_id"}, {"id": "Year"}, {"id": "geo"}],
                                           "records": [{"_id": 1, "Year": 2023, "geo": {"lat": 1.5, "lon": 2}}],
                                           "total": 1}}
    table = read_json_records(write(tmp_path, "c.json", json.dumps(payload).encode()), "c.json")
    assert table.columns == ["_id", "Year", "geo.lat", "geo.lon"]
    assert table.rows == [["1", "2023", "1.5", "2"]]


def test_ckan_error_response_is_named(tmp_path: Path) -> None:
    payload = {"success": False, "error": {"__type": "Not Found Error", "message": "Resource not found"}}
    with pytest.raises(SourceDataError, match=r"CKAN error response .*Resource not found"):
        read_json_records(write(tmp_path, "c.json", json.dumps(payload).encode()), "c.json")


def test_records_path_and_its_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "n.json", json.dumps({"a": {"b": [{"x": 1}, {"x": 2, "y": [1, 2]}]}}).encode())
    table = read_json_records(path, "n.json", "a.b")
    assert table.columns == ["x", "y"] and table.rows == [["1", ""], ["2", "[1, 2]"]]
    with pytest.raises(SourceDataError, match=r"records_path 'a.c': no 'c' at a; keys there are \['b'\]"):
        read_json_records(path, "n.json", "a.c")
    with pytest.raises(SourceDataError, match="does not lead to an array of records"):
        read_json_records(path, "n.json", "a")


def test_json_without_records_says_so(tmp_path: Path) -> None:
    with pytest.raises(SourceDataError, match="no data rows"):
        read_json_records(write(tmp_path, "e.json", b"[]"), "e.json")


def test_real_socrata_page_as_a_file() -> None:
    path = require_shared("fixtures/payloads/socrata/sodapy_resource_bike_counts_page_1.json")
    table = read_json_records(path, path.name)
    raw = json.loads(path.read_text())
    assert table.columns == ["id", "date", "counts", "status"] and len(table.rows) == len(raw)
    assert table.rows[0] == ["100009424", "2016-09-21T15:45:00.000", "100", "0"]


def test_real_opendatasoft_records_as_a_file() -> None:
    path = require_shared("fixtures/payloads/opendatasoft/ods-openapi-v2.1_example_records-v2.1.json")
    table = read_json_records(path, path.name)
    assert len(table.rows) == 2
    row = dict(zip(table.columns, table.rows[0], strict=True))
    assert (row["name"], row["coordinates.lat"], row["population"]) == ("Saint-Leu", "46.7306", "29278")
    assert row["alternate_names"] == '["Saint-Leu"]' and row["elevation"] == ""


def test_real_ckan_action_response_through_records_path() -> None:
    path = require_shared("fixtures/payloads/ckan/datagovuk_package_search.json")
    raw = json.loads(path.read_text())
    table = read_json_records(path, path.name, "result.results")
    assert len(table.rows) == len(raw["result"]["results"]) and "name" in table.columns
