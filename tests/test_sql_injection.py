"""Quotes, semicolons and SQL comments in every configurable name go through a real run as text.

Source ids are slugs (the config refuses anything else). Everything else that is free text is made
hostile here: CSV column names (year, area, variable and value fields), long-layout variable codes,
data points, area ids (values), an Excel sheet name, Parquet readings' station ids and variable
codes. The run must succeed, store each hostile string verbatim, lose no row, and leave every table
in place (nothing executed). The static half of this is tests/test_sql_quoting.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import yaml
from conftest import run_cli

EVIL = "x'); DROP TABLE kpi_values; --"
EVIL2 = 'y"; DELETE FROM observations; /*'
YEAR_COL = "Year'; DROP TABLE runs; --"
AREA_COL = 'Area" --'
CODE_COL = "Code'--"
VALUE_COL = 'Value"; SELECT 1; --'
SHEET = "Sheet'; --"
STATION = "st'; DROP TABLE core_readings; --"


def _write_city(folder: Path) -> Path:
    folder.mkdir(parents=True)
    long = pl.DataFrame({YEAR_COL: [2023, 2023, 2023, 2024],
                         AREA_COL: [EVIL, EVIL2, "plain", EVIL],
                         CODE_COL: [EVIL2, EVIL2, EVIL2, EVIL2],
                         VALUE_COL: [100, 200, 300, 110]})
    long.write_csv(folder / "long.csv")
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = SHEET
    sheet.append([YEAR_COL, EVIL])
    sheet.append([2023, 5000])
    sheet.append([2024, 5100])
    book.save(folder / "wide.xlsx")
    start = datetime(2023, 1, 1, tzinfo=UTC)
    hours = 48
    pl.DataFrame({"station": [STATION] * hours, "time": [start + timedelta(hours=h) for h in range(hours)],
                  "code": [EVIL] * hours, "value": [float(h % 7) for h in range(hours)]}
                 ).write_parquet(folder / "readings.parquet")
    config = {
        "city": {"id": "hostile-names", "name": "Hostile'; --", "country": "DE", "reporting_years": [2023, 2024]},
        "sources": [
            {"id": "long", "kind": "file", "location": "long.csv", "target": "observations",
             "observations": {"layout": "long", "year_field": YEAR_COL, "area_field": AREA_COL,
                              "variable_field": CODE_COL, "value_field": VALUE_COL,
                              "variables": {EVIL2: {"variable": "households_total", "unit": "household",
                                                    "data_point": EVIL}}}},
            {"id": "wide", "kind": "file", "location": "wide.xlsx", "target": "observations",
             "excel": {"sheet": SHEET},
             "observations": {"year_field": YEAR_COL,
                              "variables": {EVIL: {"variable": "population", "unit": "person"}}}},
            {"id": "air", "kind": "file", "location": "readings.parquet", "target": "readings",
             "readings": {"station_field": "station", "time_field": "time", "variable_field": "code",
                          "value_field": "value",
                          "variables": {EVIL: {"variable": "air_concentration_ugm3", "unit": "ug/m3",
                                               "data_point": "PM2.5"}}}},
        ],
    }
    path = folder / "city.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def test_hostile_names_are_stored_as_text_and_nothing_executes(tmp_path: Path) -> None:
    config = _write_city(tmp_path / "city")
    home = tmp_path / "home"
    result = run_cli("run", config, home=home)
    assert result.returncode == 0, result
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert {"kpi_values", "observations", "runs", "core_readings"} <= tables
        rows = con.execute("""SELECT source_id, year, variable, data_point, area_id, value FROM observations
                              WHERE city_id = 'hostile-names' AND derivation IS NULL
                              ORDER BY source_id, year, area_id""").fetchall()
        readings = con.execute("SELECT station_id, count(*) FROM core_readings GROUP BY 1").fetchall()
        kpis = con.execute("SELECT count(*) FROM kpi_values WHERE city_id = 'hostile-names'").fetchone()
        runs = con.execute("SELECT status FROM runs").fetchall()
    finally:
        con.close()
    long = [r for r in rows if r[0] == "long"]
    assert sorted((r[1], r[4], r[3], r[5]) for r in long) == sorted([
        (2023, EVIL, EVIL, 100.0), (2023, EVIL2, EVIL, 200.0), (2023, "plain", EVIL, 300.0), (2024, EVIL, EVIL, 110.0)])
    wide = [(r[1], r[2], r[5]) for r in rows if r[0] == "wide"]
    assert wide == [(2023, "population", 5000.0), (2024, "population", 5100.0)]
    assert readings == [(STATION, 48)]
    assert kpis is not None and kpis[0] > 0
    assert runs == [("succeeded",)]


def test_hostile_readings_field_names_are_quoted(tmp_path: Path) -> None:
    folder = tmp_path / "city"
    config = _write_city(folder)
    field = 'station"; --'
    frame = pl.read_parquet(folder / "readings.parquet").rename({"station": field})
    frame.write_parquet(folder / "readings.parquet")
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["sources"][2]["readings"]["station_field"] = field
    config.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    home = tmp_path / "home"
    result = run_cli("run", config, home=home)
    assert result.returncode == 0, result
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT station_id, count(*) FROM core_readings GROUP BY 1").fetchall() == [(STATION, 48)]
    finally:
        con.close()
