"""sources.parsers.numbers and sources.parsers.tabular on real files written to tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import Workbook

from canonical.errors import SourceDataError
from sources.config import CsvOptions, ExcelOptions
from sources.parsers.numbers import NumberFormat, detect_number_format
from sources.parsers.tabular import read_csv, read_excel, read_json_records

GERMAN = NumberFormat(decimal=",", thousands=".")
ENGLISH = NumberFormat(decimal=".", thousands=",")

# ---- numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "text", "expected"), [
    (GERMAN, "1.234.567,5", 1234567.5),
    (GERMAN, "-3,2", -3.2),
    (GERMAN, "12 345,25", 12345.25),
    (GERMAN, "12\u00a0345", 12345.0),
    (GERMAN, " 42 ", 42.0),
    (GERMAN, "1.000", 1000.0),
    (ENGLISH, "1,234,567.5", 1234567.5),
    (ENGLISH, "-1,234.75", -1234.75),
    (ENGLISH, "1'234'567.5", 1234567.5),
    (ENGLISH, "12 345", 12345.0),
    (ENGLISH, ".5", 0.5),
    (ENGLISH, "1.5e3", 1500.0),
    (NumberFormat(), "-0.25", -0.25),
    (NumberFormat(decimal=",", thousands=""), "1,234", 1.234),
])
def test_parse_number(fmt: NumberFormat, text: str, expected: float) -> None:
    assert fmt.parse(text) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("fmt", "text"), [
    (GERMAN, "12a"),
    (ENGLISH, "12a"),
    (NumberFormat(decimal=",", thousands=""), "1.5"),
    (GERMAN, "1.5"),          # not a thousands group: must not become 15
    (GERMAN, "1234.5"),
    (GERMAN, "1,5.3"),
    (ENGLISH, "1,5"),         # not a thousands group: must not become 15
    (ENGLISH, "1,2345.0"),
    (NumberFormat(), "1,5"),
    (ENGLISH, "1 2"),
    (ENGLISH, "--1"),
    (ENGLISH, "n/a"),
])
def test_parse_number_rejects(fmt: NumberFormat, text: str) -> None:
    with pytest.raises(ValueError, match=repr(text).replace(".", r"\.")):
        fmt.parse(text)


def test_detect_number_format_from_evidence_and_delimiter() -> None:
    assert detect_number_format(["1.234,5", "17", "x"]) == GERMAN
    assert detect_number_format(["1,234.5", "17"], delimiter=";") == ENGLISH
    assert detect_number_format(["2,5", "3,75"], delimiter=",") == GERMAN
    # '1,234' is ambiguous: the delimiter decides.
    assert detect_number_format(["1,234"], delimiter=";") == GERMAN
    assert detect_number_format(["1,234"], delimiter=",") == NumberFormat(decimal=".", thousands="")


# ---- CSV --------------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_latin1_with_umlauts_is_detected(tmp_path: Path) -> None:
    text = "Jahr;Merkmal;Wert\n2023;Bevölkerung Größe;1.234,5\n2024;Ärzte;12\n"
    path = write(tmp_path, "stat.csv", text.encode("latin-1"))
    table = read_csv(path, None, "stat.csv")
    assert table.columns == ["Jahr", "Merkmal", "Wert"]
    assert table.rows == [["2023", "Bevölkerung Größe", "1.234,5"], ["2024", "Ärzte", "12"]]
    assert table.row_numbers == [2, 3]
    assert table.number_format == GERMAN
    assert table.number_format.parse(table.rows[0][2]) == 1234.5
    assert table.display_name == "stat.csv"


def test_utf8_bom_is_stripped_from_first_header(tmp_path: Path) -> None:
    path = write(tmp_path, "bom.csv", b"\xef\xbb\xbfJahr,Einwohner\n2023,100\n")
    table = read_csv(path, None, "bom.csv")
    assert table.columns == ["Jahr", "Einwohner"]
    assert table.column_index("Jahr") == 0


def test_bom_stripped_with_declared_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "bom.csv", b"\xef\xbb\xbfJahr,Einwohner\n2023,100\n")
    table = read_csv(path, CsvOptions(encoding="utf-8"), "bom.csv")
    assert table.columns[0] == "Jahr"


@pytest.mark.parametrize(("delimiter", "decimal_text", "expected"), [
    (";", "2,5", 2.5),
    ("\t", "2.5", 2.5),
    (",", "2.5", 2.5),
    ("|", "2.5", 2.5),
])
def test_delimiter_is_sniffed(tmp_path: Path, delimiter: str, decimal_text: str, expected: float) -> None:
    lines = [["Jahr", "Bezirk", "Wert"], ["2023", "01", decimal_text], ["2024", "02", "3"]]
    data = "\n".join(delimiter.join(line) for line in lines) + "\n"
    table = read_csv(write(tmp_path, "d.csv", data.encode()), None, "d.csv")
    assert table.columns == ["Jahr", "Bezirk", "Wert"]
    assert table.rows[0] == ["2023", "01", decimal_text]
    assert table.number_format.parse(table.rows[0][2]) == expected


def test_ambiguous_thousands_with_semicolon_reads_decimal_comma(tmp_path: Path) -> None:
    table = read_csv(write(tmp_path, "a.csv", b"Jahr;Wert\n2023;1,234\n"), None, "a.csv")
    assert table.number_format.parse(table.rows[0][1]) == pytest.approx(1.234)


def test_explicit_options_override_detection(tmp_path: Path) -> None:
    # Detection would say: UTF-8 decodes fine... but it is declared cp1252; ';' would be sniffed,
    # but ',' is declared; the evidence says decimal comma, but '.' is declared.
    data = "Jahr,Wert;Notiz\n2023,1.5;a\n2024,2.25;ü\n".encode("cp1252")
    table = read_csv(write(tmp_path, "o.csv", data),
                     CsvOptions(delimiter=",", decimal=".", thousands="", encoding="cp1252"), "o.csv")
    assert table.columns == ["Jahr", "Wert;Notiz"]
    assert table.rows[1] == ["2024", "2.25;ü"]
    assert table.number_format == NumberFormat(decimal=".", thousands="")


def test_declared_decimal_implies_the_other_thousands_separator(tmp_path: Path) -> None:
    # Nothing to detect from ('17'), tab-delimited -> detection says '.', the config says ','.
    table = read_csv(write(tmp_path, "t.csv", b"Jahr\tWert\n2023\t17\n"), CsvOptions(decimal=","), "t.csv")
    assert table.number_format == GERMAN


def test_declared_encoding_wins(tmp_path: Path) -> None:
    data = "Jahr,Name\n2023,Ärzte\n".encode()
    table = read_csv(write(tmp_path, "e.csv", data), CsvOptions(encoding="latin-1"), "e.csv")
    assert table.rows[0][1] == "Ã\x84rzte"  # mojibake proves the declared encoding was used


def test_unknown_encoding_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceDataError, match="cannot decode as no-such-codec"):
        read_csv(write(tmp_path, "e.csv", b"a,b\n1,2\n"), CsvOptions(encoding="no-such-codec"), "e.csv")


def test_blank_lines_skipped_and_row_numbers_are_file_lines(tmp_path: Path) -> None:
    data = b"Jahr,Wert\r\n2021,1\r\n\r\n2022,2\r\n ,  \r\n2023,3\r\n\r\n"
    table = read_csv(write(tmp_path, "b.csv", data), None, "b.csv")
    assert table.rows == [["2021", "1"], ["2022", "2"], ["2023", "3"]]
    assert table.row_numbers == [2, 4, 6]


def test_row_numbers_count_lines_of_multiline_quoted_fields(tmp_path: Path) -> None:
    data = b'Jahr,Notiz,Wert\n2021,"zwei\nZeilen",1\n2022,x,2\n2023,"drei\nganze\nZeilen",3\n2024,y,4\n'
    table = read_csv(write(tmp_path, "m.csv", data), None, "m.csv")
    assert [row[0] for row in table.rows] == ["2021", "2022", "2023", "2024"]
    assert table.row_numbers == [2, 4, 5, 8]
    assert table.rows[0][1] == "zwei\nZeilen"


def test_skip_rows_keeps_file_line_numbers(tmp_path: Path) -> None:
    data = b"Stadtstatistik Testville\nStand: 2024\nJahr;Wert\n2023;1\n2024;2\n"
    table = read_csv(write(tmp_path, "s.csv", data), CsvOptions(skip_rows=2), "s.csv")
    assert table.columns == ["Jahr", "Wert"]
    assert table.row_numbers == [4, 5]


def test_wrong_number_of_fields_names_file_and_row(tmp_path: Path) -> None:
    data = b"Jahr;Bezirk;Wert\n2021;01;1\n\n2022;02;2;extra\n"
    with pytest.raises(SourceDataError) as info:
        read_csv(write(tmp_path, "f.csv", data), None, "f.csv")
    assert info.value.path == "f.csv"
    assert info.value.row == 4
    assert str(info.value) == "f.csv, row 4: expected 3 fields, found 4"


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceDataError, match="empty"):
        read_csv(write(tmp_path, "empty.csv", b""), None, "empty.csv")


def test_missing_column_names_the_columns(tmp_path: Path) -> None:
    table = read_csv(write(tmp_path, "c.csv", b"Jahr,Wert\n2023,1\n"), None, "c.csv")
    with pytest.raises(SourceDataError) as info:
        table.column_index("Einwohner", source_id="stats")
    assert info.value.field == "Einwohner"
    assert "['Jahr', 'Wert']" in str(info.value)
    assert str(info.value).startswith("source 'stats': c.csv, field 'Einwohner'")


# ---- Excel ------------------------------------------------------------------------------------


def make_workbook(path: Path) -> Path:
    workbook = Workbook()
    first = workbook.active
    assert first is not None
    first.title = "Info"
    first.append(["Nur eine Titelseite"])
    sheet = workbook.create_sheet("Bevoelkerung")
    sheet.append(["Bevölkerung nach Bezirken 2023"])      # title row
    sheet.append(["Jahr", "Bezirk-Nr.", "Einwohner", None])  # header row 2 (trailing empty header cell)
    sheet.append([2023, "01", 1234.0, None])
    sheet.append([None, None, None, None])                 # empty row 4: skipped
    sheet.append([2023, "02", 1234.5, "Fußnote"])
    workbook.save(path)
    return path


def test_read_excel_with_title_row_and_header_row_2(tmp_path: Path) -> None:
    path = make_workbook(tmp_path / "bev.xlsx")
    table = read_excel(path, ExcelOptions(sheet="Bevoelkerung", header_row=2), "bev.xlsx")
    assert table.columns == ["Jahr", "Bezirk-Nr.", "Einwohner"]
    assert table.rows == [["2023", "01", "1234"], ["2023", "02", "1234.5"]]
    assert table.row_numbers == [3, 5]
    assert table.display_name == "bev.xlsx (sheet Bevoelkerung)"
    assert table.number_format.parse(table.rows[1][2]) == 1234.5


def test_read_excel_sheet_by_index(tmp_path: Path) -> None:
    path = make_workbook(tmp_path / "bev.xlsx")
    table = read_excel(path, ExcelOptions(sheet=1, header_row=2), "bev.xlsx")
    assert table.display_name == "bev.xlsx (sheet Bevoelkerung)"
    first = read_excel(path, None, "bev.xlsx")
    assert first.columns == ["Nur eine Titelseite"]
    assert first.rows == []


@pytest.mark.parametrize("sheet", ["Einwohner", 5, -1])
def test_read_excel_missing_sheet(tmp_path: Path, sheet: str | int) -> None:
    path = make_workbook(tmp_path / "bev.xlsx")
    with pytest.raises(SourceDataError) as info:
        read_excel(path, ExcelOptions(sheet=sheet), "bev.xlsx")
    assert info.value.path == "bev.xlsx"
    assert f"sheet {sheet!r} not found" in str(info.value)
    assert "['Info', 'Bevoelkerung']" in str(info.value)


def test_read_excel_header_row_beyond_sheet(tmp_path: Path) -> None:
    path = make_workbook(tmp_path / "bev.xlsx")
    with pytest.raises(SourceDataError, match="no header row 9"):
        read_excel(path, ExcelOptions(sheet="Bevoelkerung", header_row=9), "bev.xlsx")


def test_read_excel_not_a_workbook(tmp_path: Path) -> None:
    path = write(tmp_path, "fake.xlsx", b"Jahr,Wert\n")
    with pytest.raises(SourceDataError, match="cannot open workbook"):
        read_excel(path, None, "fake.xlsx")


# ---- JSON records -----------------------------------------------------------------------------


def test_read_json_records_array_and_wrapped(tmp_path: Path) -> None:
    records = [{"jahr": 2023, "wert": 1.5, "name": "A"}, {"jahr": 2024, "wert": 2.0, "extra": None}]
    plain = write(tmp_path, "r.json", json.dumps(records).encode())
    table = read_json_records(plain, "r.json")
    assert table.columns == ["jahr", "wert", "name", "extra"]
    assert table.rows == [["2023", "1.5", "A", ""], ["2024", "2", "", ""]]
    assert table.row_numbers == [1, 2]
    wrapped = write(tmp_path, "w.json", b"\xef\xbb\xbf" + json.dumps({"total": 2, "results": records}).encode())
    assert read_json_records(wrapped, "w.json").rows == table.rows


@pytest.mark.parametrize(("data", "message"), [
    (b"{not json", "not valid JSON"),
    (b'{"total": 3}', "expected a JSON array of records"),
    (b"[1, 2]", "expected a JSON array of records"),
])
def test_read_json_records_errors(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(SourceDataError, match=message) as info:
        read_json_records(write(tmp_path, "bad.json", data), "bad.json")
    assert info.value.path == "bad.json"
