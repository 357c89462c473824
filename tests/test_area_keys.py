"""Values published per district must name polygons the city has (issue #13: a table keyed by
district names beside polygons keyed by codes is an error naming the keys, never a silent sum)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from canonical.errors import SourceDataError
from pipelines import steps
from sources.config import load_city_config
from warehouse.home import Home


def _square(x: float, y: float) -> list[list[list[float]]]:
    return [[[x, y], [x + 0.01, y], [x + 0.01, y + 0.01], [x, y + 0.01], [x, y]]]


def _city(folder: Path, population_csv: str) -> Path:
    folder.mkdir(parents=True)
    features = [{"type": "Feature", "properties": {"code": code, "name": name},
                 "geometry": {"type": "Polygon", "coordinates": _square(10.0 + i * 0.01, 59.9)}}
                for i, (code, name) in enumerate([("01", "Centrum"), ("02", "Nord")])]
    (folder / "districts.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    (folder / "population.csv").write_text(population_csv)
    (folder / "city.yaml").write_text("""config_version: 1
city: {id: key-town, name: Key Town, country: "NO", reporting_years: [2023]}
sources:
  - {id: districts, kind: file, location: districts.geojson, target: areas,
     areas: {area_type: district, id_field: code, name_field: name}}
  - id: population
    kind: file
    location: population.csv
    target: observations
    observations: {year_field: Year, area_field: District,
                   variables: {Residents: {variable: population, unit: persons}}}
""")
    return folder / "city.yaml"


def _load(config: Path, home: Home) -> dict:
    loaded = load_city_config(config)
    return steps.load_city(home, loaded, steps.fetch_city(home, loaded))


def test_district_names_against_polygon_codes_are_an_error_naming_them(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    config = _city(tmp_path / "city", "Year,District,Residents\n2023,Centrum,1000\n2023,Nord,500\n")
    with pytest.raises(SourceDataError) as info:
        _load(config, home)
    message = str(info.value)
    assert "source 'population'" in message and "2 district id(s) match no polygon of source 'districts'" in message
    assert "'Centrum', 'Nord'" in message and "look like the polygons' names" in message
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:  # the load was rolled back: nothing of it is in the warehouse
        assert con.execute("SELECT count(*) FROM observations").fetchall()[0][0] == 0
    finally:
        con.close()


def test_unpadded_codes_are_named_with_the_padding_hint(tmp_path: Path) -> None:
    config = _city(tmp_path / "city", "Year,District,Residents\n2023,1,1000\n2023,02,500\n")
    with pytest.raises(SourceDataError, match=r"1 district id\(s\) match no polygon.*'1'.*leading zeros"):
        _load(config, Home(tmp_path / "home"))


def test_matching_codes_load(tmp_path: Path) -> None:
    config = _city(tmp_path / "city", "Year,District,Residents\n2023,01,1000\n2023,02,500\n")
    report = _load(config, Home(tmp_path / "home"))
    assert report["changed"]
