"""Smaller certain fixes of issue #15, each by hand: green area as a union, EC:ICT:T:1C's stop total
at station level (GTFS parent_station), SDG 11.1.1's two components (catalogue examples cover
EC:I:T:2A's city-population denominator and 11.1.1's formulas; here the components stay apart)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import shapely
from test_methods_gtfs import feed, write_feed

from kpis.catalogue import indicators_by_id
from sources.parsers.geo import geodesic_area_ha
from sources.parsers.gtfs import read_gtfs_stops
from warehouse.db import connect
from warehouse.derive import polygon_areas, transit_stop_counts


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = connect(tmp_path / "warehouse.duckdb")
    yield connection
    connection.close()


def test_green_area_is_the_union_of_overlapping_polygons(con: duckdb.DuckDBPyConnection) -> None:
    # Two 0.02° x 0.01° parks on the equator overlapping by half: the union is 0.03° x 0.01°, 1.5 parks.
    a = shapely.box(0.00, 0.0, 0.02, 0.01)
    b = shapely.box(0.01, 0.0, 0.03, 0.01)
    for area_id, park in (("A", a), ("B", b)):
        con.execute("INSERT INTO core_areas VALUES ('c', 'green_area', ?, NULL, ?, ?, 'parks', 'p/1', 'r')",
                    [area_id, geodesic_area_ha(park), park.wkb])
    one = geodesic_area_ha(a)
    # 0.02° x 111.32 km x 0.01° x 110.57 km = 2.2264 km x 1.1057 km = 246.2 ha per park.
    assert one == pytest.approx(246.2, rel=0.005)
    rows = [r for r in polygon_areas(con, "c", [2023]) if r["variable"] == "green_area_ha"]
    assert len(rows) == 1
    assert rows[0]["value"] == pytest.approx(1.5 * one, rel=1e-6)  # 369.3 ha, not the sum 492.4
    assert rows[0]["derivation"] == "polygon_area@2"
    assert "union of 2 green-area polygons, overlaps of 123.09 ha counted once" in rows[0]["source_record"]


def test_stop_total_counts_a_station_once_whatever_its_platforms(tmp_path: Path,
                                                                 con: duckdb.DuckDBPyConnection) -> None:
    # The GTFS parser keeps parent_station.
    files = feed({"W": (3, 420, 30)})
    files["stops.txt"] = [["stop_id", "stop_name", "stop_lat", "stop_lon", "location_type", "parent_station"],
                          ["P", "Station", "51.0", "7.0", "1", ""], ["S", "Platform 1", "51.0", "7.0", "0", "P"],
                          ["T", "Stop", "51.01", "7.01", "0", " "]]
    stops = read_gtfs_stops(write_feed(tmp_path, files), "feed.zip")
    assert dict(stops.select("stop_id", "parent_station").iter_rows()) == {"P": None, "S": "P", "T": None}

    # 3 bus stops, 2 metro stations with 2 platforms each, the stations' own rows (location_type 1) and an
    # unserved stop: 3 + 2 = 5 stops and stations, from 7 served platform-level stops.
    rows = [*[(f"B{i}", 0, None, 10) for i in range(3)],
            ("M1a", 0, "M1", 40), ("M1b", 0, "M1", 40), ("M2a", 0, "M2", 35), ("M2b", 0, "M2", 35),
            ("M1", 1, None, 0), ("M2", 1, None, 0), ("X", 0, None, 0)]
    for stop_id, location_type, parent, departures in rows:
        con.execute("""INSERT INTO core_transit_stops (city_id, stop_id, lon, lat, location_type, departures,
                       source_id, snapshot_id, parent_station) VALUES ('c', ?, 7.0, 51.0, ?, ?, 'gtfs', 'g/1', ?)""",
                    [stop_id, location_type, departures, parent])
    (row,) = transit_stop_counts(con, "c", [2023])
    assert row["value"] == 5.0 and row["derivation"] == "transit_stops@2"
    assert "(7 platform-level stops, those of 2 parent stations counted once each)" in row["source_record"]


def test_slum_and_housing_cost_components_are_separate_inputs() -> None:
    indicator = indicators_by_id()["11.1.1"]
    assert indicator.data_points == ["slums", "housing cost overburden"]
    slums, burden = (indicator.compute_for(p) for p in indicator.data_points)
    assert slums is not None and burden is not None
    assert (slums.numerator, burden.numerator) == ("population_slum_households", "population_housing_cost_overburden")
    assert slums.denominator == burden.denominator == "population"
    two_a = indicators_by_id()["EC:I:T:2A"].compute
    assert two_a is not None and two_a.denominator == "population"  # the city's, not population_gridded
