"""sources.mapping.map_observations on tables read with read_csv from real files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from canonical.errors import SourceDataError
from sources.config import SourceConfig
from sources.mapping import OBSERVATION_SCHEMA, MappingReport, map_observations
from sources.parsers.numbers import NumberFormat
from sources.parsers.tabular import TextTable, read_csv

CITY = "test-city"
SNAPSHOT = "test-city/src/0123456789abcdef"


def source(observations: dict[str, Any], *, source_id: str = "src") -> SourceConfig:
    return SourceConfig.model_validate({"id": source_id, "kind": "file", "location": "x.csv",
                                        "target": "observations", "observations": observations})


def table(tmp_path: Path, text: str, name: str = "data.csv", encoding: str = "utf-8") -> TextTable:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return read_csv(path, None, name)


def run(tbl: TextTable, src: SourceConfig) -> tuple[pl.DataFrame, MappingReport]:
    return map_observations(tbl, src, city_id=CITY, snapshot_id=SNAPSHOT)


def rows_by(frame: pl.DataFrame, *keys: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(row[k] for k in keys): row for row in frame.iter_rows(named=True)}


WIDE: dict[str, Any] = {
    "layout": "wide", "year_field": "Jahr", "area_field": "Bezirk",
    "variables": {
        "Einwohner": {"variable": "population", "unit": "persons"},
        "Gruen_acres": {"variable": "green_area_ha", "unit": "acres"},
        "Strom_MWh": {"variable": "electricity_consumption_kwh", "unit": "MWh"},
        "Wasser_gal": {"variable": "water_consumption_m3", "unit": "us_gallons"},
        "Deponie": {"variable": "solid_waste_treated_t", "unit": "t", "data_point": "landfill"},
    },
}


def test_wide_layout_with_unit_conversion_and_provenance(tmp_path: Path) -> None:
    text = ("Jahr;Bezirk;Einwohner;Gruen_acres;Strom_MWh;Wasser_gal;Deponie;Ignoriert\n"
            "2023;01;1.234;10;2,5;1.000.000;7;x\n"
            "2023;02;567;;0,5;;8;y\n")
    frame, report = run(table(tmp_path, text, "wide.csv"), source(WIDE))
    assert frame.schema == pl.Schema(OBSERVATION_SCHEMA)
    assert report.as_dict() == {"rows_read": 2, "observations": 8, "empty_cells": 2, "duplicate_rows": 0,
                                "unmapped_codes": {}}
    assert frame.height == 8
    obs = rows_by(frame, "area_id", "variable")
    population = obs[("01", "population")]
    assert population["value"] == 1234.0  # '1.234' with ';' and decimal comma: thousands separator
    assert population["unit"] == "person"
    assert population["source_unit"] == "persons"
    assert population["year"] == 2023
    assert (population["area_type"], population["city_id"]) == ("district", CITY)
    assert (population["source_id"], population["snapshot_id"]) == ("src", SNAPSHOT)
    assert population["source_record"] == "wide.csv row 2 field 'Einwohner'"
    assert population["derivation"] is None

    green = obs[("01", "green_area_ha")]
    assert green["source_value"] == 10.0
    assert green["source_unit"] == "acres"
    assert green["value"] == pytest.approx(4.0468564224)
    assert green["unit"] == "ha"

    power = obs[("02", "electricity_consumption_kwh")]
    assert (power["source_value"], power["value"], power["unit"]) == (0.5, 500.0, "kWh")
    assert power["source_record"] == "wide.csv row 3 field 'Strom_MWh'"

    water = obs[("01", "water_consumption_m3")]
    assert water["source_value"] == 1_000_000.0
    assert water["value"] == pytest.approx(3785.411784)
    assert ("02", "water_consumption_m3") not in obs  # empty cell: counted, not emitted

    landfill = obs[("02", "solid_waste_treated_t")]
    assert (landfill["data_point"], landfill["value"]) == ("landfill", 8.0)
    assert obs[("01", "population")]["data_point"] is None


def test_city_level_rows_without_area_field(tmp_path: Path) -> None:
    config = {"year_field": "Jahr", "variables": {"Einwohner": {"variable": "population", "unit": "persons"}}}
    frame, _ = run(table(tmp_path, "Jahr,Einwohner\n2023,100\n2024,110\n"), source(config))
    assert frame.select("year", "area_type", "area_id", "value").rows() == [
        (2023, "city", CITY, 100.0), (2024, "city", CITY, 110.0)]


LONG: dict[str, Any] = {
    "layout": "long", "year_field": "Jahr", "variable_field": "Merkmal", "value_field": "Wert",
    "variables": {
        "Stickstoffdioxid (ppb)": {"variable": "air_concentration_ugm3", "unit": "ppb", "data_point": "NO2"},
        "Einwohner": {"variable": "population", "unit": "persons"},
        "Stromverbrauch": {"variable": "electricity_consumption_kwh", "unit": "MWh"},
    },
}


def test_long_layout_counts_unmapped_codes_and_empty_values(tmp_path: Path) -> None:
    text = ("Jahr;Merkmal;Wert;Einheit\n"
            "2023;Einwohner;2.612.345;Personen\n"
            "2023;Stickstoffdioxid (ppb);20,5;ppb\n"
            "2023;Bodenfläche;12.345,6;ha\n"
            "2024;Bodenfläche;12.345,6;ha\n"
            "2024;Stromverbrauch;;MWh\n"
            "2024;Katzen;3;Stück\n")
    frame, report = run(table(tmp_path, text, "statistik.csv", "latin-1"), source(LONG))
    assert report.rows_read == 6
    assert report.observations == 2
    assert report.empty_cells == 1
    assert report.unmapped_codes == {"Bodenfläche": 2, "Katzen": 1}
    assert report.as_dict()["unmapped_codes"] == {"Bodenfläche": 2, "Katzen": 1}
    obs = rows_by(frame, "variable")
    assert obs[("population",)]["value"] == 2_612_345.0
    no2 = obs[("air_concentration_ugm3",)]
    assert no2["data_point"] == "NO2"
    assert no2["source_value"] == 20.5
    assert no2["source_unit"] == "ppb"
    assert no2["value"] == pytest.approx(20.5 * 1.9)
    assert no2["unit"] == "ug/m3"
    assert no2["source_record"] == "statistik.csv row 3 field 'Wert'"


def test_exact_duplicate_rows_are_collapsed_and_counted(tmp_path: Path) -> None:
    text = ("Jahr,Bezirk,Einwohner,Strom_MWh\n"
            "2023,01,100,1.5\n"
            "2023,02,200,2.5\n"
            "2023,01,100,1.5\n"
            "2023,01,100,1.5\n")
    config = {**WIDE, "variables": {k: WIDE["variables"][k] for k in ("Einwohner", "Strom_MWh")}}
    frame, report = run(table(tmp_path, text), source(config))
    assert frame.height == 4
    assert report.duplicate_rows == 2  # rows 4 and 5, whatever the number of fields per row
    assert report.observations == 4
    first = rows_by(frame, "area_id", "variable")[("01", "population")]
    assert first["source_record"] == "data.csv row 2 field 'Einwohner'"


def test_same_figure_in_two_units_is_a_duplicate_not_a_conflict(tmp_path: Path) -> None:
    config = {"year_field": "Jahr", "variables": {
        "Strom_MWh": {"variable": "electricity_consumption_kwh", "unit": "MWh"},
        "Strom_kWh": {"variable": "electricity_consumption_kwh", "unit": "kWh"}}}
    frame, report = run(table(tmp_path, "Jahr,Strom_MWh,Strom_kWh\n2023,5,5000\n"), source(config))
    assert frame["value"].to_list() == [5000.0]
    assert report.repeated_observations == 1 and report.duplicate_rows == 0  # one row, two equal figures


def test_different_figures_that_share_a_number_conflict(tmp_path: Path) -> None:
    config = {"year_field": "Jahr", "variables": {
        "Strom_MWh": {"variable": "electricity_consumption_kwh", "unit": "MWh"},
        "Strom_kWh": {"variable": "electricity_consumption_kwh", "unit": "kWh"}}}
    with pytest.raises(SourceDataError, match="conflicting values") as info:
        run(table(tmp_path, "Jahr,Strom_MWh,Strom_kWh\n2023,5,5\n"), source(config))
    assert info.value.field == "Strom_kWh"


def test_conflicting_duplicates_name_both_rows(tmp_path: Path) -> None:
    text = "Jahr;Merkmal;Wert\n2023;Einwohner;100\n2024;Einwohner;120\n2023;Einwohner;101\n"
    with pytest.raises(SourceDataError) as info:
        run(table(tmp_path, text, "stat.csv"), source(LONG))
    error = info.value
    assert error.row == 4
    assert error.field == "Wert"
    assert error.source_id == "src"
    message = str(error)
    assert "stat.csv row 2" in message   # the earlier row
    assert "stat.csv, row 4" in message  # this row
    assert "population" in message and "2023" in message
    assert "100.0" in message and "101.0" in message


def test_non_numeric_value_names_file_row_and_field(tmp_path: Path) -> None:
    text = "Jahr,Bezirk,Einwohner\n2022,01,100\n2023,01,12a\n"
    config = {**WIDE, "variables": {"Einwohner": WIDE["variables"]["Einwohner"]}}
    with pytest.raises(SourceDataError) as info:
        run(table(tmp_path, text, "bevoelkerung.csv"), source(config, source_id="bev"))
    message = str(info.value)
    assert "bevoelkerung.csv" in message
    assert "row 3" in message
    assert "Einwohner" in message
    assert "'12a'" in message
    assert (info.value.path, info.value.row, info.value.field) == ("bevoelkerung.csv", 3, "Einwohner")
    assert "\n" not in message  # one clear message


def test_non_numeric_value_in_long_layout_names_value_field(tmp_path: Path) -> None:
    text = "Jahr;Merkmal;Wert\n2023;Einwohner;k.A.\n"
    with pytest.raises(SourceDataError) as info:
        run(table(tmp_path, text, "stat.csv"), source(LONG))
    assert str(info.value).startswith("source 'src': stat.csv, row 2, field 'Wert': ")
    assert "'k.A.'" in str(info.value)


@pytest.mark.parametrize(("year", "message"), [
    ("2023.5", "year '2023.5' is not an integer"),
    ("zwanzig", "year 'zwanzig' is not an integer"),
    ("1850", "year 1850 is outside 1900-2100"),
    ("", "year '' is not an integer"),
])
def test_bad_year(tmp_path: Path, year: str, message: str) -> None:
    text = f"Jahr,Einwohner\n2022,1\n{year},100\n"
    config = {"year_field": "Jahr", "variables": {"Einwohner": {"variable": "population", "unit": "persons"}}}
    with pytest.raises(SourceDataError) as info:
        run(table(tmp_path, text), source(config))
    assert message in str(info.value)
    assert (info.value.row, info.value.field) == (3, "Jahr")


def test_year_written_as_float_is_accepted(tmp_path: Path) -> None:
    config = {"year_field": "Jahr", "variables": {"Einwohner": {"variable": "population", "unit": "persons"}}}
    frame, _ = run(table(tmp_path, "Jahr,Einwohner\n2023.0,100\n"), source(config))
    assert frame["year"].to_list() == [2023]


@pytest.mark.parametrize(("header", "missing"), [
    ("Year,Bezirk,Einwohner", "Jahr"),
    ("Jahr,District,Einwohner", "Bezirk"),
    ("Jahr,Bezirk,Inhabitants", "Einwohner"),
])
def test_missing_column(tmp_path: Path, header: str, missing: str) -> None:
    config = {**WIDE, "variables": {"Einwohner": WIDE["variables"]["Einwohner"]}}
    with pytest.raises(SourceDataError) as info:
        run(table(tmp_path, f"{header}\n2023,01,1\n", "cols.csv"), source(config))
    assert info.value.field == missing
    assert f"column {missing!r} not found" in str(info.value)
    assert "cols.csv" in str(info.value)


def test_missing_value_column_in_long_layout(tmp_path: Path) -> None:
    with pytest.raises(SourceDataError, match="column 'Wert' not found"):
        run(table(tmp_path, "Jahr;Merkmal;Value\n2023;Einwohner;1\n"), source(LONG))


def test_empty_area_code_is_an_error(tmp_path: Path) -> None:
    config = {**WIDE, "variables": {"Einwohner": WIDE["variables"]["Einwohner"]}}
    with pytest.raises(SourceDataError, match="area code is empty") as info:
        run(table(tmp_path, "Jahr,Bezirk,Einwohner\n2023,01,1\n2023,,2\n"), source(config))
    assert (info.value.row, info.value.field) == (3, "Bezirk")


def test_table_without_rows_gives_empty_frame(tmp_path: Path) -> None:
    config = {"year_field": "Jahr", "variables": {"Einwohner": {"variable": "population", "unit": "persons"}}}
    with pytest.raises(SourceDataError, match="no data rows"):
        table(tmp_path, "Jahr,Einwohner\n")
    empty = TextTable(tmp_path / "e.json", "e.json", ["Jahr", "Einwohner"], [], [], NumberFormat())
    frame, report = run(empty, source(config))
    assert frame.height == 0
    assert frame.schema == pl.Schema(OBSERVATION_SCHEMA)
    assert report.as_dict()["rows_read"] == 0
