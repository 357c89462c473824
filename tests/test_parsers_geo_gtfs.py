"""sources.parsers.geo (GeoJSON areas, NGSI-LD points) and sources.parsers.gtfs on files built in tmp_path."""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from shared_data import require_shared

from canonical.errors import SourceDataError
from sources.config import AreasMapping, PointsMapping
from sources.parsers.geo import read_geojson_areas, read_ngsi_ld_points
from sources.parsers.gtfs import read_gtfs_stops

AREAS = AreasMapping(area_type="district", id_field="bezirk_nr", name_field="name")
POINTS = PointsMapping(point_type="air_quality_station", id_field="id")
CAIRNS_FEED_RELATIVE = "fixtures/payloads/gtfs/gtfs_kit_cairns_gtfs.zip"

# ~1 km x 1 km at 51 N: 1 km of latitude is 1/111.25 degrees, of longitude 1/(111.32 cos 51.0) degrees.
LAT0, LON0 = 51.0, 7.0
DLAT = 1.0 / 111.25
DLON = 1.0 / (111.32 * math.cos(math.radians(LAT0 + DLAT / 2)))


def square(lon0: float = LON0, lat0: float = LAT0, dlon: float = DLON, dlat: float = DLAT,
           ccw: bool = True) -> list[list[float]]:
    ring = [[lon0, lat0], [lon0 + dlon, lat0], [lon0 + dlon, lat0 + dlat], [lon0, lat0 + dlat], [lon0, lat0]]
    return ring if ccw else ring[::-1]


def feature(props: dict[str, Any], geometry: dict[str, Any] | None) -> dict[str, Any]:
    return {"type": "Feature", "properties": props, "geometry": geometry}


def write_geojson(tmp_path: Path, features: list[dict[str, Any]], name: str = "bezirke.geojson") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


# ---- GeoJSON areas ----------------------------------------------------------------------------


def test_geodesic_area_of_one_square_kilometre(tmp_path: Path) -> None:
    path = write_geojson(tmp_path, [
        feature({"bezirk_nr": "01", "name": "Mitte"}, {"type": "Polygon", "coordinates": [square()]}),
        feature({"bezirk_nr": 2, "name": None}, {"type": "Polygon", "coordinates": [square(ccw=False)]}),
    ])
    areas = read_geojson_areas(path, AREAS, "bezirke.geojson", "bezirke")
    assert [a.area_id for a in areas] == ["01", "2"]
    assert areas[0].name == "Mitte"
    assert areas[1].name is None
    for area in areas:  # orientation of the ring does not matter
        assert area.area_ha == pytest.approx(100.0, rel=0.01)
    assert areas[0].record == "bezirke.geojson feature 1 (bezirk_nr=01)"


def test_holes_are_subtracted_whatever_the_ring_orientation(tmp_path: Path) -> None:
    hole = square(LON0 + DLON / 4, LAT0 + DLAT / 4, DLON / 2, DLAT / 2)  # a quarter of the area
    features = [
        feature({"bezirk_nr": f"{i}"}, {"type": "Polygon", "coordinates": [square(ccw=outer_ccw), ring]})
        for i, (outer_ccw, ring) in enumerate(
            [(True, hole[::-1]), (True, hole), (False, hole), (False, hole[::-1])], start=1)
    ]
    features.append(feature({"bezirk_nr": "mp"}, {"type": "MultiPolygon", "coordinates": [
        [square(ccw=False), hole], [square(lon0=LON0 + 2 * DLON)]]}))
    areas = read_geojson_areas(write_geojson(tmp_path, features), AREAS, "b.geojson", "bezirke")
    for area in areas[:4]:
        assert area.area_ha == pytest.approx(75.0, rel=0.01), area.area_id
    assert areas[4].area_ha == pytest.approx(175.0, rel=0.01)


def test_invalid_geometry_is_repaired(tmp_path: Path) -> None:
    # A bow-tie: the ring crosses itself. make_valid turns it into two triangles, half the square.
    bowtie = [[LON0, LAT0], [LON0 + DLON, LAT0 + DLAT], [LON0 + DLON, LAT0], [LON0, LAT0 + DLAT], [LON0, LAT0]]
    path = write_geojson(tmp_path, [feature({"bezirk_nr": "01"}, {"type": "Polygon", "coordinates": [bowtie]})])
    (area,) = read_geojson_areas(path, AREAS, "b.geojson", "bezirke")
    assert area.geometry.is_valid
    assert area.geometry.geom_type == "MultiPolygon"
    assert area.area_ha == pytest.approx(50.0, rel=0.01)


@pytest.mark.parametrize(("features", "row", "field", "message"), [
    ([feature({"name": "ohne Nummer"}, {"type": "Polygon", "coordinates": [square()]})],
     1, "bezirk_nr", "feature 1 has no 'bezirk_nr'"),
    ([feature({"bezirk_nr": "01"}, {"type": "Polygon", "coordinates": [square()]}),
      feature({"bezirk_nr": " "}, {"type": "Polygon", "coordinates": [square()]})],
     2, "bezirk_nr", "feature 2 has no 'bezirk_nr'"),
    ([feature({"bezirk_nr": "01"}, {"type": "Polygon", "coordinates": [square()]}),
      feature({"bezirk_nr": "02"}, {"type": "Polygon", "coordinates": [square()]}),
      feature({"bezirk_nr": "01"}, {"type": "Polygon", "coordinates": [square()]})],
     3, "bezirk_nr", "feature 3 repeats id '01' of feature 1"),
    ([feature({"bezirk_nr": "01"}, {"type": "Point", "coordinates": [LON0, LAT0]})],
     1, "geometry", "feature 1: expected a polygon, got Point"),
    ([feature({"bezirk_nr": "01"}, None)], 1, "geometry", "feature 1: bad geometry"),
    ([feature({"bezirk_nr": "01"}, {"type": "Polygon", "coordinates": [[[1, 2]]]})],
     1, "geometry", "feature 1: bad geometry"),
    # Projected coordinates (ETRS89 / UTM 32N), common in German portals: not lon/lat.
    ([feature({"bezirk_nr": "01"}, {"type": "Polygon", "coordinates": [
        square(lon0=395_000.0, lat0=5_650_000.0, dlon=1000.0, dlat=1000.0)]})],
     1, "geometry", "feature 1: coordinates are not WGS84 longitude/latitude"),
])
def test_area_errors_name_the_feature(tmp_path: Path, features: list[dict[str, Any]], row: int, field: str,
                                      message: str) -> None:
    path = write_geojson(tmp_path, features)
    with pytest.raises(SourceDataError) as info:
        read_geojson_areas(path, AREAS, "bezirke.geojson", "bezirke")
    error = info.value
    assert (error.path, error.row, error.field, error.source_id) == ("bezirke.geojson", row, field, "bezirke")
    assert message in str(error)


@pytest.mark.parametrize(("payload", "message"), [
    (b"{broken", "not valid JSON"),
    (json.dumps({"type": "Feature", "geometry": None}).encode(), "expected a GeoJSON FeatureCollection"),
    (json.dumps({"type": "FeatureCollection"}).encode(), "no 'features' list"),
])
def test_geojson_file_errors(tmp_path: Path, payload: bytes, message: str) -> None:
    path = tmp_path / "x.geojson"
    path.write_bytes(payload)
    with pytest.raises(SourceDataError, match=message):
        read_geojson_areas(path, AREAS, "x.geojson", "bezirke")


# ---- NGSI-LD points ---------------------------------------------------------------------------


NORMALIZED = {
    "id": "urn:ngsi-ld:AirQualityObserved:DEDV001", "type": "AirQualityObserved",
    "name": {"type": "Property", "value": "Station Mitte"},
    "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [7.01, 51.02]}},
    "no2": {"type": "Property", "value": 21.5},
    "@context": ["https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"],
}
KEY_VALUES = {
    "id": "urn:ngsi-ld:AirQualityObserved:DEDV002", "type": "AirQualityObserved",
    "location": {"type": "Point", "coordinates": [7.03, 51.04]},
    "no2": 18.0,
}


def write_json(tmp_path: Path, payload: Any, name: str = "stations.jsonld") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def test_ngsi_ld_normalized_and_key_values_give_points(tmp_path: Path) -> None:
    path = write_json(tmp_path, [NORMALIZED, KEY_VALUES])
    first, second = read_ngsi_ld_points(path, POINTS, "stations.jsonld", "luft")
    assert (first.point_id, first.name, first.lon, first.lat) == (
        "urn:ngsi-ld:AirQualityObserved:DEDV001", "Station Mitte", 7.01, 51.02)
    assert (second.point_id, second.name, second.lon, second.lat) == (
        "urn:ngsi-ld:AirQualityObserved:DEDV002", None, 7.03, 51.04)
    assert first.record == "stations.jsonld entity 1 (urn:ngsi-ld:AirQualityObserved:DEDV001)"


def test_single_ngsi_ld_entity_object(tmp_path: Path) -> None:
    (point,) = read_ngsi_ld_points(write_json(tmp_path, KEY_VALUES), POINTS, "one.jsonld", "luft")
    assert (point.lon, point.lat) == (7.03, 51.04)


def _with(entity: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = {k: v for k, v in entity.items() if k not in changes}
    out.update({k: v for k, v in changes.items() if v is not None})
    return out


@pytest.mark.parametrize(("bad", "field", "message"), [
    (_with(KEY_VALUES, location=None), "location", "location is not a GeoJSON Point"),
    (_with(KEY_VALUES, location={"type": "Polygon", "coordinates": [[[7, 51], [7.1, 51], [7, 51.1], [7, 51]]]}),
     "location", "location is not a GeoJSON Point"),
    (_with(NORMALIZED, location={"type": "GeoProperty", "value": {"type": "Point", "coordinates": [7.0]}}),
     "location", "location is not a GeoJSON Point"),
    (_with(KEY_VALUES, location={"type": "Point", "coordinates": ["sieben", "einundfuenfzig"]}),
     "location", "are not a WGS84 longitude/latitude"),
    (_with(KEY_VALUES, location={"type": "Point", "coordinates": [395000.0, 5650000.0]}),
     "location", "are not a WGS84 longitude/latitude"),
    (_with(KEY_VALUES, id=None), "id", "entity 2 has no 'id'"),
])
def test_bad_points_name_the_entity(tmp_path: Path, bad: dict[str, Any], field: str, message: str) -> None:
    path = write_json(tmp_path, [NORMALIZED, bad])
    with pytest.raises(SourceDataError) as info:
        read_ngsi_ld_points(path, POINTS, "stations.jsonld", "luft")
    error = info.value
    assert (error.path, error.row, error.field, error.source_id) == ("stations.jsonld", 2, field, "luft")
    assert message in str(error)


def test_entity_that_is_not_an_object(tmp_path: Path) -> None:
    with pytest.raises(SourceDataError, match="entity 2 is not an object"):
        read_ngsi_ld_points(write_json(tmp_path, [KEY_VALUES, "urn:x"]), POINTS, "s.jsonld", "luft")


# ---- GTFS -------------------------------------------------------------------------------------


def csv_text(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


STOPS = [["stop_id", "stop_name", "stop_lat", "stop_lon", "location_type"],
         ["D", "Depot", "51.004", "7.004", ""],
         ["A", "Hauptbahnhof", "51.001", "7.001", "0"],
         ["B", "Markt", " 51.002", "7.002 ", "0"],
         ["C", "Rathaus", "51.003", "7.003", "1"]]
FEED = {
    "agency.txt": [["agency_id", "agency_name", "agency_url", "agency_timezone"],
                   ["DVB", "Demo", "https://example.org", "Europe/Berlin"]],
    "routes.txt": [["route_id", "route_short_name", "route_type"], ["R1", "1", "3"], ["R2", "2", "0"]],
    "calendar.txt": [["service_id", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
                      "start_date", "end_date"],
                     ["WK", "1", "1", "1", "1", "1", "0", "0", "20240101", "20241231"],
                     ["SA", "0", "0", "0", "0", "0", "1", "0", "20240101", "20241231"]],
    "trips.txt": [["route_id", "service_id", "trip_id"],
                  ["R1", "WK", "T1"], ["R2", "WK", "T2"], ["R1", "SA", "T3"], ["R2", "WK", "T4"]],
    "stop_times.txt": [["trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence"],
                       ["T1", "08:00:00", "08:00:00", "A", "1"], ["T1", "08:05:00", "08:05:00", "B", "2"],
                       ["T2", "09:00:00", "09:00:00", "B", "1"], ["T2", "09:05:00", "09:05:00", "C", "2"],
                       ["T3", "10:00:00", "10:00:00", "A", "1"], ["T3", "10:05:00", "10:05:00", "C", "2"],
                       ["T4", "11:00:00", "11:00:00", "B", "1"]],
}


def write_feed(tmp_path: Path, files: dict[str, list[list[str]]], name: str = "gtfs.zip",
               folder: str = "") -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        for member, rows in files.items():
            archive.writestr(folder + member, csv_text(rows))
    return path


def test_gtfs_stops_with_wednesday_departures_and_route_types(tmp_path: Path) -> None:
    path = write_feed(tmp_path, {"stops.txt": STOPS, **FEED})
    stops = read_gtfs_stops(path, "gtfs.zip")
    assert stops.columns == ["stop_id", "name", "lon", "lat", "location_type", "parent_station", "departures",
                             "departures_06_20", "route_types", "service_date", "service_rule"]
    assert stops.drop("parent_station", "departures_06_20", "service_date", "service_rule").rows() == [
        ("A", "Hauptbahnhof", 7.001, 51.001, 0, 1, "3"),      # T3 runs on Saturdays only
        ("B", "Markt", 7.002, 51.002, 0, 3, "0,3"),           # T1, T2, T4; coordinates had spaces
        ("C", "Rathaus", 7.003, 51.003, 1, 1, "0"),
        ("D", "Depot", 7.004, 51.004, 0, 0, None),            # not served
    ]
    assert stops.schema["departures"] == pl.Int32


def test_gtfs_without_calendar_counts_every_trip_and_finds_files_in_a_folder(tmp_path: Path) -> None:
    files = {"stops.txt": STOPS, **{k: v for k, v in FEED.items() if k != "calendar.txt"}}
    stops = read_gtfs_stops(write_feed(tmp_path, files, folder="feed/"), "gtfs.zip")
    assert dict(stops.select("stop_id", "departures").iter_rows()) == {"A": 2, "B": 3, "C": 2, "D": 0}
    assert "every trip counted" in stops["service_rule"][0]


def test_gtfs_missing_stops_txt(tmp_path: Path) -> None:
    with pytest.raises(SourceDataError) as info:
        read_gtfs_stops(write_feed(tmp_path, FEED), "gtfs.zip")
    assert str(info.value) == "gtfs.zip: GTFS feed lacks stops.txt"


def test_gtfs_missing_column(tmp_path: Path) -> None:
    stops = [row[:2] + row[3:] for row in STOPS]  # no stop_lat column
    with pytest.raises(SourceDataError, match=r"missing column\(s\) \['stop_lat'\]") as info:
        read_gtfs_stops(write_feed(tmp_path, {"stops.txt": stops, **FEED}), "gtfs.zip")
    assert info.value.path == "gtfs.zip:stops.txt"


@pytest.mark.parametrize(("lat", "lon"), [("abc", "7.0"), ("", "7.0"), ("95.0", "7.0"), ("51.0", "-181"),
                                          ("NaN", "7.0")])
def test_gtfs_bad_coordinates_name_the_row(tmp_path: Path, lat: str, lon: str) -> None:
    stops = [*STOPS[:3], ["X", "Kaputt", lat, lon, "0"], *STOPS[3:]]
    with pytest.raises(SourceDataError) as info:
        read_gtfs_stops(write_feed(tmp_path, {"stops.txt": stops, **FEED}), "gtfs.zip")
    error = info.value
    assert (error.path, error.row, error.field) == ("gtfs.zip:stops.txt", 4, "stop_lat/stop_lon")
    assert "stop 'X' has no valid coordinates" in str(error)


def test_gtfs_bad_coordinates_row_in_a_larger_feed(tmp_path: Path) -> None:
    """The row is the file line even where joins would reorder the stops."""
    stops = [STOPS[0]] + [[f"S{i:04d}", f"Stop {i}", "51.0", "7.0", "0"] for i in range(3000)]
    stops[2345] = ["S2344", "Kaputt", "x", "7.0", "0"]
    with pytest.raises(SourceDataError) as info:
        read_gtfs_stops(write_feed(tmp_path, {"stops.txt": stops, **FEED}), "gtfs.zip")
    assert info.value.row == 2346


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "gtfs.zip"
    path.write_bytes(b"stop_id,stop_lat\n")
    with pytest.raises(SourceDataError, match="not a zip file"):
        read_gtfs_stops(path, "gtfs.zip")


def _wednesday_departures(feed: Path) -> int:
    """Independent count: stop_times rows of trips whose service runs on Wednesdays (in Cairns' feed
    every Wednesday timetable runs on the chosen date: tests/test_methods_gtfs.py checks the date rule)."""
    with zipfile.ZipFile(feed) as archive:
        def rows(name: str) -> list[dict[str, str]]:
            return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8-sig"))))

        wednesday = {r["service_id"] for r in rows("calendar.txt") if r["wednesday"].strip() == "1"}
        trips = {r["trip_id"] for r in rows("trips.txt") if r["service_id"] in wednesday}
        return sum(1 for r in rows("stop_times.txt") if r["trip_id"] in trips)


def test_real_cairns_feed() -> None:
    cairns_feed = require_shared(CAIRNS_FEED_RELATIVE)
    stops = read_gtfs_stops(cairns_feed, cairns_feed.name)
    assert stops.height > 100
    assert stops["stop_id"].n_unique() == stops.height
    # Cairns, Queensland (incl. the northern beaches): roughly 145.5-146.0 E, 17.3-16.6 S.
    assert stops["lon"].is_between(145.5, 146.0).all()
    assert stops["lat"].is_between(-17.3, -16.6).all()
    assert (stops["departures"] > 0).sum() > 0
    assert stops["departures"].sum() == _wednesday_departures(cairns_feed)
    assert set(stops["route_types"].drop_nulls().to_list()) == {"3"}  # a bus-only network
