"""How the U4SSC workbook writes a cell (publish/u4ssc_workbook.py, `_Sheet`): text is always a string,
whatever it starts with, numbers stay numbers, empty text is an empty cell, a text past Excel's cell
limit is cut and says so, and control characters do not break the file. Read back with openpyxl."""

from __future__ import annotations

import io

import openpyxl
import xlsxwriter

from publish.u4ssc_workbook import CELL_CHARACTERS, _Formats, _Sheet

RISKY = ['=HYPERLINK("http://example.com","x")', "+1+2", "-2+3+cmd|' /C calc'!A0", "@SUM(A1)", "\t=1", "http://x.y"]


def _written(values: list[object]) -> tuple[list[openpyxl.cell.Cell], list[object]]:
    buffer = io.BytesIO()
    wb = xlsxwriter.Workbook(buffer, {"in_memory": True})  # defaults on: _Sheet alone must keep text as text
    sheet = _Sheet(wb.add_worksheet("S"), _Formats.of(wb))
    sheet.append(values)
    wb.close()
    read = openpyxl.load_workbook(io.BytesIO(buffer.getvalue()))["S"]
    cells = [read.cell(1, column) for column in range(1, len(values) + 1)]
    return cells, [cell.value for cell in cells]


def test_text_stays_text_and_numbers_stay_numbers() -> None:
    cells, values = _written([*RISKY, "12.5", 12.5, 7, None, ""])
    assert values[:len(RISKY)] == RISKY
    assert all(cell.data_type == "s" for cell in cells[:len(RISKY) + 1])  # no formula, no link, no number
    assert values[len(RISKY)] == "12.5"
    assert values[len(RISKY) + 1:] == [12.5, 7, None, None]
    assert [cells[len(RISKY) + 1].data_type, cells[len(RISKY) + 2].data_type] == ["n", "n"]


def test_a_text_past_the_cell_limit_is_cut_and_says_so() -> None:
    long = "x" * (CELL_CHARACTERS + 10)
    _, [value] = _written([long])
    assert isinstance(value, str) and len(value) <= CELL_CHARACTERS
    assert value.startswith("x" * 1000) and f"cut: {len(long):,} characters" in value


def test_control_characters_do_not_break_the_workbook() -> None:
    _, [value] = _written(["bell\x07 and nul\x00"])
    assert isinstance(value, str) and value.startswith("bell")
