"""Spatial inputs have validity years (issue #15): a GTFS feed's own dates (feed_info, else its
calendar) or the config's valid_from / valid_to. A year-less spatial value of a reporting year outside
them is withheld naming the source and its dates, unless the source opts in with assume_valid."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import yaml
from test_methods_gtfs import CAL_HEADER, calendar_row, feed, write_feed

from pipelines.steps import compute_city, fetch_city, load_city
from sources.config import load_city_config
from sources.parsers.gtfs import feed_validity
from warehouse.home import Home


def test_feed_validity_from_feed_info_else_the_calendar(tmp_path: Path) -> None:
    files = {**feed({"W": (3, 420, 30)}), "calendar.txt": [CAL_HEADER, calendar_row("W", "1111100", "20230301",
                                                                                    "20231031")]}
    assert feed_validity(write_feed(tmp_path, files), "f.zip") == (
        date(2023, 3, 1), date(2023, 10, 31), "GTFS calendar dates")
    files["feed_info.txt"] = [["feed_publisher_name", "feed_publisher_url", "feed_lang", "feed_start_date",
                               "feed_end_date"], ["X", "https://x.example", "de", "20230101", "20241231"]]
    (tmp_path / "feed.zip").unlink()
    assert feed_validity(write_feed(tmp_path, files), "f.zip") == (
        date(2023, 1, 1), date(2024, 12, 31), "GTFS feed_info.txt feed_start_date/feed_end_date")


def city(tmp_path: Path, **parks_extra: Any) -> Path:
    folder = tmp_path / "city"
    folder.mkdir(exist_ok=True)
    ring = [[13.30, 52.45], [13.31, 52.45], [13.31, 52.46], [13.30, 52.46], [13.30, 52.45]]
    parks = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "P1"}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}
    (folder / "parks.geojson").write_text(json.dumps(parks), encoding="utf-8")
    config = {"config_version": 1, "city": {"id": "v", "name": "V", "country": "DE", "reporting_years": [2021, 2023]},
              "sources": [{"id": "parks", "kind": "file", "location": "parks.geojson", "target": "areas",
                           "areas": {"area_type": "green_area", "id_field": "id"}, **parks_extra}]}
    (folder / "city.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder / "city.yaml"


def green(home: Home) -> tuple[dict[int, str], dict[int, str]]:
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        values = dict(con.execute("SELECT year, source_record FROM observations WHERE variable = 'green_area_ha' "
                                  "AND area_type = 'city'").fetchall())
        withheld = dict(con.execute("SELECT year, reason FROM core_withheld WHERE variable = 'green_area_ha' "
                                    "AND rule = 'validity'").fetchall())
    finally:
        con.close()
    return values, withheld


def test_declared_validity_withholds_other_years_unless_assumed(tmp_path: Path) -> None:
    loaded = load_city_config(city(tmp_path, valid_from="2022-06-01"))
    home = Home(tmp_path / "home")
    report = load_city(home, loaded, fetch_city(home, loaded))
    values, withheld = green(home)
    assert sorted(values) == [2023]  # the layer describes 2022-06-01 onwards: 2021 is not shown
    assert withheld == {2021: "green_area_ha 2021: source parks describes 2022-06-01 to … (declared in the city "
                              "config), not 2021 (set assume_valid: true on the source to use it for other years)"}
    compute_city(home, loaded, "r1")  # the KPI row names the reason
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        status, reason = con.execute("""SELECT status, status_reason FROM kpi_values
                                        WHERE indicator_id = 'EN:EN:PSN:1C' AND year = 2021""").fetchone() or ("", "")
    finally:
        con.close()
    assert status == "missing" and reason.endswith(f"withheld: {withheld[2021]}")
    # SDG 11.7.1's open space reads the same layer: withheld alike.
    assert report["derived"]["withheld_outside_validity"] == [
        withheld[2021], withheld[2021].replace("green_area_ha", "open_public_space_ha")]

    loaded = load_city_config(city(tmp_path, valid_from="2022-06-01", assume_valid=True))
    load_city(home, loaded, fetch_city(home, loaded))
    values, withheld = green(home)
    assert sorted(values) == [2021, 2023] and withheld == {}
    assert values[2021].endswith("; assumed_valid: parks describes 2022-06-01 to … (declared in the city config), "
                                 "not 2021")
    assert "assumed_valid" not in values[2023]


def test_unknown_validity_keeps_every_year(tmp_path: Path) -> None:
    loaded = load_city_config(city(tmp_path))
    home = Home(tmp_path / "home")
    load_city(home, loaded, fetch_city(home, loaded))
    values, withheld = green(home)
    assert sorted(values) == [2021, 2023] and withheld == {}
