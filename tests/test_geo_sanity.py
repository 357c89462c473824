"""Wrong geometry fails loudly, bad features are skipped and listed: coordinate order, CRS, country
bounds, empty / invalid / unnamed features, coordinate text, config errors, hostile archives."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio.raw
import pytest
import shapely

from canonical.errors import ConfigError, SourceDataError
from sources.config import AreasMapping, PointsMapping, SourceConfig, load_city_config
from sources.kinds.file import fetch as fetch_file
from sources.parsers.coordinates import parse_degrees
from sources.parsers.country_bounds import in_country
from sources.parsers.geo import geojson_features, load_areas, load_points
from sources.parsers.geometry_source import parse_geometry
from sources.parsers.numbers import NumberFormat
from sources.parsers.vector import read_vector

POINTS = PointsMapping(point_type="bus_stop", id_field="id")
AREAS = AreasMapping(area_type="district", id_field="id")
MADRID = (-3.70, 40.42)


def geojson(tmp_path: Path, features: list[dict[str, Any]], crs: str | None = None) -> Path:
    payload: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if crs:
        payload["crs"] = {"type": "name", "properties": {"name": crs}}
    path = tmp_path / "x.geojson"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def point(ident: str | None, coords: list[float] | None) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"id": ident},
            "geometry": None if coords is None else {"type": "Point", "coordinates": coords}}


def square(ident: str, x: float, y: float, d: float) -> dict[str, Any]:
    ring = [[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]
    return {"type": "Feature", "properties": {"id": ident}, "geometry": {"type": "Polygon", "coordinates": [ring]}}


def load_pts(path: Path, mapping: PointsMapping = POINTS, country: str = "ES") -> tuple[list[Any], dict[str, Any]]:
    points, _, report = load_points(geojson_features(path, path.name), mapping, country, "s")
    return points, report


# ---- coordinate order and country ---------------------------------------------------------------


def test_latitude_first_coordinates_say_which_setting_fixes_them(tmp_path: Path) -> None:
    path = geojson(tmp_path, [point("a", [40.42, -3.70]), point("b", [40.45, -3.68])])
    with pytest.raises(SourceDataError, match=r"coordinates look latitude-first; set `coordinate_order: lat_lon`"):
        load_pts(path)
    points, report = load_pts(path, POINTS.model_copy(update={"coordinate_order": "lat_lon"}))
    assert [(p.lon, p.lat) for p in points] == [(-3.70, 40.42), (-3.68, 40.45)]
    assert report["skipped"] == 0


def test_lat_lon_set_for_a_lon_lat_file_is_caught_too(tmp_path: Path) -> None:
    path = geojson(tmp_path, [point("a", list(MADRID))])
    with pytest.raises(SourceDataError, match=r"look longitude-first; set `coordinate_order: lon_lat`"):
        load_pts(path, POINTS.model_copy(update={"coordinate_order": "lat_lon"}))


def test_a_stray_point_outside_the_country_is_skipped_and_listed(tmp_path: Path) -> None:
    path = geojson(tmp_path, [point("a", list(MADRID)), point("b", [-3.68, 40.45]), point("paris", [2.35, 48.86])])
    points, report = load_pts(path)
    assert [p.point_id for p in points] == ["a", "b"]
    assert report["skipped"] == 1
    assert report["skipped_features"][0]["feature"] == "feature 3"
    assert "outside the bounding box of ES" in report["skipped_features"][0]["reason"]


def test_projected_coordinates_without_a_crs_ask_for_one(tmp_path: Path) -> None:
    path = geojson(tmp_path, [square("01", 440000, 4474000, 1000)])
    with pytest.raises(SourceDataError, match=r"the file declares no CRS: set `crs:` in the config"):
        load_areas(geojson_features(path, path.name), AREAS, "ES", "s")
    areas, _, report = load_areas(geojson_features(path, path.name), AREAS.model_copy(update={"crs": "EPSG:25830"}),
                                  "ES", "s")
    assert report["crs"] == "EPSG:25830"
    assert areas[0].area_ha == pytest.approx(100.071, abs=0.005)  # see tests/test_geo_corpus.py


def test_a_declared_crs_that_contradicts_the_config_is_an_error(tmp_path: Path) -> None:
    path = geojson(tmp_path, [square("01", 440000, 4474000, 1000)], crs="EPSG:25830")
    with pytest.raises(SourceDataError, match=r"declares CRS EPSG:25830 .* but the config says crs: EPSG:32630"):
        load_areas(geojson_features(path, path.name), AREAS.model_copy(update={"crs": "EPSG:32630"}), "ES", "s")


def test_wrong_country_in_the_config_is_named(tmp_path: Path) -> None:
    path = geojson(tmp_path, [point("a", list(MADRID))])
    with pytest.raises(SourceDataError, match=r"outside the bounding box of FR .* check the CRS \(EPSG:4326\) and "
                                              r"the city's country \(FR\)"):
        load_pts(path, country="FR")


@pytest.mark.parametrize(("lon", "lat", "country", "inside"), [
    (-15.43, 28.12, "ES", True),     # Las Palmas de Gran Canaria (an added box)
    (-157.86, 21.31, "US", True),    # Honolulu (an added box)
    (-149.90, 61.22, "US", True),    # Anchorage
    (-74.01, 40.71, "US", True),
    (-3.70, 40.42, "FR", False),
    (10.75, 59.91, "NO", True),
    (0.0, 0.0, "BV", True),          # no box: not checked
])
def test_country_boxes(lon: float, lat: float, country: str, inside: bool) -> None:
    assert in_country(lon, lat, country) is inside


# ---- empty, invalid, unnamed features -----------------------------------------------------------


def test_empty_wrong_type_and_unnamed_features_are_skipped_and_listed(tmp_path: Path) -> None:
    line = {"type": "Feature", "properties": {"id": "l"},
            "geometry": {"type": "LineString", "coordinates": [list(MADRID), [-3.6, 40.4]]}}
    path = geojson(tmp_path, [point("a", list(MADRID)), point("empty", None), line, point(None, [-3.6, 40.4]),
                              {"type": "Feature", "properties": {"id": "bad"}, "geometry": {"type": "Point"}}])
    points, report = load_pts(path)
    assert [p.point_id for p in points] == ["a"]
    assert report["features"] == 5 and report["skipped"] == 4
    reasons = {item["feature"]: item["reason"] for item in report["skipped_features"]}
    assert reasons["feature 2"] == "no geometry (null)"
    assert reasons["feature 3"] == "expected Point, got LineString"
    assert reasons["feature 4"] == "no 'id'"
    assert reasons["feature 5"].startswith("bad geometry")


def test_nothing_usable_is_an_error_with_the_reasons(tmp_path: Path) -> None:
    path = geojson(tmp_path, [point("a", None), point("b", None)])
    with pytest.raises(SourceDataError, match=r"no usable point geometry in 2 features \(feature 1: no geometry"):
        load_pts(path)


def test_invalid_polygon_is_repaired_and_counted(tmp_path: Path) -> None:
    x, y, d = 440000, 4474000, 1000
    bowtie = {"type": "Feature", "properties": {"id": "bow"}, "geometry": {"type": "Polygon", "coordinates": [
        [[x, y], [x + d, y + d], [x + d, y], [x, y + d], [x, y]]]}}
    path = geojson(tmp_path, [bowtie, square("ok", x, y + 2 * d, d)], crs="EPSG:25830")
    areas, _, report = load_areas(geojson_features(path, path.name), AREAS, "ES", "s")
    assert report["repaired"] == 1 and report["skipped"] == 0
    assert report["repaired_features"][0].startswith("feature 1: Self-intersection")
    assert areas[0].area_ha == pytest.approx(100.071 / 2, abs=0.005)  # two triangles, half the square


def test_repeated_id_is_an_error_naming_both_features(tmp_path: Path) -> None:
    path = geojson(tmp_path, [point("a", list(MADRID)), point("a", [-3.6, 40.4])])
    with pytest.raises(SourceDataError, match=r"feature 2 repeats id 'a' of feature 1") as info:
        load_pts(path)
    assert info.value.row == 2 and info.value.field == "id"


def test_unknown_id_field_lists_the_fields(tmp_path: Path) -> None:
    path = geojson(tmp_path, [point("a", list(MADRID))])
    with pytest.raises(SourceDataError, match=r"field 'code' not found; fields are \['id'\]"):
        load_pts(path, POINTS.model_copy(update={"id_field": "code"}))


# ---- tables: coordinate text --------------------------------------------------------------------


@pytest.mark.parametrize(("text", "axis", "value"), [
    ("3°42'43.91\"O", "lon", -(3 + 42 / 60 + 43.91 / 3600)),
    ("40°25'25.98\"N", "lat", 40 + 25 / 60 + 25.98 / 3600),
    ("3º 36' 33\"O", "lon", -(3 + 36 / 60 + 33 / 3600)),
    ("40º 27' 55''N", "lat", 40 + 27 / 60 + 55 / 3600),
    ("W 3° 42.5'", "lon", -(3 + 42.5 / 60)),
    ("3°42'43,91\"E", "lon", 3 + 42 / 60 + 43.91 / 3600),
    ("33°52'S", "lat", -(33 + 52 / 60)),
    ("-3 42 43.91", "lon", -(3 + 42 / 60 + 43.91 / 3600)),
    ("-3.7122567", "lon", -3.7122567),
    ("40,4238823", "lat", 40.4238823),
])
def test_degree_texts(text: str, axis: str, value: float) -> None:
    assert parse_degrees(text, axis, NumberFormat(decimal=",", thousands=".")) == pytest.approx(value, abs=1e-12)


@pytest.mark.parametrize(("text", "axis", "message"), [
    ("40°25'N", "lon", "is a latitude"),
    ("3°42'W", "lat", "is a longitude"),
    ("-3°42'W", "lon", "both a minus sign and hemisphere W"),
    ("3°61'", "lon", "60 or more"),
    ("3°42'43\"12", "lon", "not degrees, minutes and seconds"),
    ("n/a", "lon", "not a number"),
])
def test_bad_degree_texts(text: str, axis: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_degrees(text, axis, NumberFormat())


def _csv_source(tmp_path: Path, text: str, points: dict[str, Any]) -> tuple[SourceConfig, Path]:
    path = tmp_path / "s.csv"
    path.write_text(text, encoding="utf-8")
    source = SourceConfig.model_validate({"id": "s", "kind": "file", "location": "s.csv", "target": "points",
                                          "points": points})
    return source, path


def test_csv_rows_without_coordinates_are_skipped_and_listed(tmp_path: Path) -> None:
    source, path = _csv_source(tmp_path, "id;x;y\nA;440000,5;4474000,25\nB;;\nC;abc;4474000\n",
                               {"point_type": "s", "id_field": "id", "x_field": "x", "y_field": "y",
                                "crs": "EPSG:25830"})
    frame, _, report = parse_geometry(source, path, "s.csv", city_id="c", country="ES", snapshot_id="c/s/1")
    assert frame["point_id"].to_list() == ["A"]
    assert report["skipped_features"] == [
        {"feature": "row 3", "reason": "no coordinates (empty cells)"},
        {"feature": "row 4", "reason": "x/y: 'abc' is not a number"}]


def test_population_value_that_is_not_a_number_stops_the_load(tmp_path: Path) -> None:
    source, path = _csv_source(tmp_path, "id,lon,lat,pop\nA,-3.70,40.42,1200\nB,-3.69,40.43,many\n",
                               {"point_type": "population_cell", "id_field": "id", "lon_field": "lon",
                                "lat_field": "lat", "population": {"field": "pop", "year": 2023}})
    with pytest.raises(SourceDataError, match=r"row 3: 'many' is not a number") as info:
        parse_geometry(source, path, "s.csv", city_id="c", country="ES", snapshot_id="c/s/1")
    assert (info.value.row, info.value.field) == (3, "pop")


def test_population_field_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    source, path = _csv_source(tmp_path, "id,lon,lat\nA,-3.70,40.42\n",
                               {"point_type": "population_cell", "id_field": "id", "lon_field": "lon",
                                "lat_field": "lat", "population": {"field": "pop", "year": 2023}})
    with pytest.raises(SourceDataError, match=r"population field 'pop' not found"):
        parse_geometry(source, path, "s.csv", city_id="c", country="ES", snapshot_id="c/s/1")


# ---- config -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("points", "message"), [
    ({"point_type": "s", "x_field": "x", "y_field": "y"}, "x_field/y_field need 'crs'"),
    ({"point_type": "s", "lon_field": "lon"}, "'lon_field' and 'lat_field' go together"),
    ({"point_type": "s", "lon_field": "a", "lat_field": "b", "x_field": "x", "y_field": "y", "crs": "EPSG:25830"},
     "either lon_field/lat_field or x_field/y_field"),
    ({"point_type": "stop", "transit": {"mode": "bus"}}, "needs point_type 'transit_stop'"),
    ({"point_type": "transit_stop", "transit": {"mode_field": "MODO"}}, "'mode_field' and 'modes' go together"),
    ({"point_type": "s", "crs": "EPSG:999999"}, "unknown CRS"),
    ({"point_type": "s", "population": {"field": "p", "year": 2020, "year_field": "y"}}, "exactly one of 'year'"),
    ({"point_type": "s", "population": {"field": "p", "year": 2020, "unit": "kg"}}, "cannot be converted"),
    ({"point_type": "s", "coordinate_order": "xy"}, "lon_lat"),
    ({"point_type": "s", "lon_field": "a", "lat_field": "b", "coordinate_order": "lat_lon"},
     "in a table, lon_field/lat_field"),
])
def test_config_errors(tmp_path: Path, points: dict[str, Any], message: str) -> None:
    (tmp_path / "s.csv").write_text("a\n", encoding="utf-8")
    config = tmp_path / "city.yaml"
    config.write_text(json.dumps({"city": {"id": "c", "name": "C", "country": "ES", "reporting_years": [2023]},
                                  "sources": [{"id": "s", "kind": "file", "location": "s.csv", "target": "points",
                                               "points": points}]}), encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        load_city_config(config)
    assert "sources[0].points" in str(info.value)


def test_format_defaults(tmp_path: Path) -> None:
    def fmt(location: str, target: str) -> str:
        block = {"areas": {"id_field": "id"}} if target == "areas" else {}
        return SourceConfig.model_validate({"id": "s", "kind": "file", "location": location, "target": target,
                                            **block}).resolved_format
    assert fmt("d.shp", "areas") == "shapefile"
    assert fmt("d.gpkg", "areas") == "geopackage"
    assert fmt("d.zip", "areas") == "shapefile"
    assert fmt("gtfs.zip", "transit_feed") == "gtfs"


# ---- shapefiles and archives --------------------------------------------------------------------


def _shapefile(folder: Path, *, crs: str | None = "EPSG:25830", name: str = "d") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.shp"
    pyogrio.raw.write(path, np.array([shapely.box(440000, 4474000, 441000, 4475000).wkb], dtype=object),
                      [np.array(["01"], dtype=object)], ["id"], driver="ESRI Shapefile", crs=crs,
                      geometry_type="Polygon")
    return path


@pytest.mark.filterwarnings("ignore:'crs' was not provided")  # pyogrio, writing the test's file without .prj
def test_shapefile_without_prj_takes_the_config_crs(tmp_path: Path) -> None:
    path = _shapefile(tmp_path, crs=None)
    assert not path.with_suffix(".prj").exists()
    with pytest.raises(SourceDataError, match=r"declares no CRS"):
        load_areas(read_vector(path, None, path.name), AREAS, "ES", "s")
    areas, _, _ = load_areas(read_vector(path, None, path.name), AREAS.model_copy(update={"crs": "EPSG:25830"}),
                             "ES", "s")
    assert areas[0].area_id == "01"


def test_shapefile_missing_its_dbf_is_named(tmp_path: Path) -> None:
    path = _shapefile(tmp_path)
    path.with_suffix(".dbf").unlink()
    with pytest.raises(SourceDataError, match=r"d\.dbf is missing beside it"):
        read_vector(path, None, path.name)


def test_zip_with_two_shapefiles_needs_a_layer(tmp_path: Path) -> None:
    first, second = _shapefile(tmp_path / "a", name="north"), _shapefile(tmp_path / "b", name="south")
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for shp in (first, second):
            for sidecar in shp.parent.iterdir():
                zf.write(sidecar, sidecar.name)
    with pytest.raises(SourceDataError, match=r"set `layer` to one of \['north', 'south'\]"):
        read_vector(archive, None, archive.name)
    assert len(read_vector(archive, "south", archive.name).features) == 1


def test_zip_slip_entry_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../evil.shp", b"x")
    with pytest.raises(SourceDataError, match=r"zip-slip"):
        read_vector(archive, None, archive.name)


def test_not_a_shapefile_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "d.gpkg"
    path.write_bytes(b"not a geopackage")
    with pytest.raises(SourceDataError, match=r"d\.gpkg: cannot open as a shapefile / GeoPackage"):
        read_vector(path, None, path.name)


def test_a_changed_sidecar_is_a_new_snapshot(tmp_path: Path) -> None:
    path = _shapefile(tmp_path / "data")
    config = tmp_path / "city.yaml"
    config.write_text(json.dumps({"city": {"id": "c", "name": "C", "country": "ES", "reporting_years": [2023]},
                                  "sources": [{"id": "d", "kind": "file", "location": "data/d.shp",
                                               "target": "areas", "areas": {"id_field": "id"}}]}), encoding="utf-8")
    loaded = load_city_config(config)
    source = loaded.config.sources[0]
    first = fetch_file(loaded, source, tmp_path / "home" / "raw", tmp_path / "home")
    again = fetch_file(loaded, source, tmp_path / "home" / "raw", tmp_path / "home")
    assert (first.snapshot_id, again.new) == (again.snapshot_id, False)
    assert [p.name for p in first.pages] == ["d.shp", "d.cpg", "d.dbf", "d.prj", "d.shx"]
    path.with_suffix(".prj").write_text('GEOGCS["WGS 84"]', encoding="utf-8")
    changed = fetch_file(loaded, source, tmp_path / "home" / "raw", tmp_path / "home")
    assert changed.new and changed.snapshot_id != first.snapshot_id


def test_population_in_a_table_is_read_with_the_table_number_format(tmp_path: Path) -> None:
    source, path = _csv_source(tmp_path, "id;lon;lat;pop\nA;-3,70;40,42;1.234\nB;-3,69;40,43;\n",
                               {"point_type": "population_cell", "id_field": "id", "lon_field": "lon",
                                "lat_field": "lat", "population": {"field": "pop", "year": 2023}})
    frame, observations, report = parse_geometry(source, path, "s.csv", city_id="c", country="ES",
                                                 snapshot_id="c/s/1")
    assert frame["lon"].to_list() == [-3.70, -3.69]
    assert observations.select("area_type", "area_id", "year", "value").rows() == [
        ("population_cell", "A", 2023, 1234.0)]  # '1.234' with ';' and decimal commas: thousands
    assert (report["population_values"], report["population_empty"]) == (1, 1)


def test_swapped_table_columns_say_which_fields_to_swap(tmp_path: Path) -> None:
    source, path = _csv_source(tmp_path, "id,lon,lat\nA,40.42,-3.70\nB,40.43,-3.69\n",
                               {"point_type": "s", "id_field": "id", "lon_field": "lon", "lat_field": "lat"})
    with pytest.raises(SourceDataError, match=r"look latitude-first; swap `lon_field` and `lat_field`"):
        parse_geometry(source, path, "s.csv", city_id="c", country="ES", snapshot_id="c/s/1")


def test_geopackage_points_layer_and_the_layer_choice() -> None:
    gpkg = Path(__file__).parent / "corpus" / "geo" / "parks.gpkg"
    with pytest.raises(SourceDataError, match=r"holds 2 layers \['parques', 'fuentes'\]; set `layer`"):
        read_vector(gpkg, None, gpkg.name)
    with pytest.raises(SourceDataError, match=r"layer 'parks' not found"):
        read_vector(gpkg, "parks", gpkg.name)
    mapping = PointsMapping(point_type="fountain", id_field="fuente_id", layer="fuentes")
    points, _, report = load_points(read_vector(gpkg, mapping.layer, gpkg.name), mapping, "ES", "s")
    assert report["crs"] == "EPSG:25830"
    (fountain,) = points
    # UTM 30N (440300, 4474300) lies 16 m west and 43 m north of Sol in tests/corpus/geo/stations.csv
    # (-3.7035, 40.4168 = 440315.9, 4474257.2): -3.7035 - 16 / 84,800 m per degree, 40.4168 + 43 / 111,000.
    assert (fountain.point_id, round(fountain.lon, 4), round(fountain.lat, 4)) == ("F-1", -3.7037, 40.4172)


def test_entity_points_go_through_the_country_check() -> None:
    from sources.parsers.geo import Point, points_in_country

    stations = [Point("a", None, -3.70, 40.42, "s.jsonld entity 1"), Point("b", None, -3.68, 40.45, "entity 2"),
                Point("c", None, 0.0, 0.0, "s.jsonld entity 3 (c)")]
    kept, report = points_in_country(stations, "ES", "s.jsonld", "s")
    assert [p.point_id for p in kept] == ["a", "b"]
    assert report["points"] == 2 and report["skipped_features"][0]["feature"] == "s.jsonld entity 3 (c)"
    swapped = [Point(p.point_id, None, p.lat, p.lon, p.record) for p in stations[:2]]
    with pytest.raises(SourceDataError, match="coordinates look latitude-first"):
        points_in_country(swapped, "ES", "s.jsonld", "s")


def test_a_sidecar_symlinked_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    from canonical.errors import FetchError

    path = _shapefile(tmp_path / "data")
    secret = tmp_path / "secret.txt"
    secret.write_text("token", encoding="utf-8")
    path.with_suffix(".cpg").unlink()
    path.with_suffix(".cpg").symlink_to(secret)
    config = tmp_path / "city.yaml"
    config.write_text(json.dumps({"city": {"id": "c", "name": "C", "country": "ES", "reporting_years": [2023]},
                                  "sources": [{"id": "d", "kind": "file", "location": "data/d.shp",
                                               "target": "areas", "areas": {"id_field": "id"}}]}), encoding="utf-8")
    loaded = load_city_config(config)
    with pytest.raises(FetchError, match=r"d\.cpg is not a regular file in .*data \(it leads to .*secret\.txt\)"):
        fetch_file(loaded, loaded.config.sources[0], tmp_path / "home" / "raw", tmp_path / "home")


def test_geojson_feature_id_and_crs84(tmp_path: Path) -> None:
    path = geojson(tmp_path, [{"type": "Feature", "id": 7, "properties": {"name": "Sol"},
                               "geometry": {"type": "Point", "coordinates": list(MADRID)}}],
                   crs="urn:ogc:def:crs:OGC:1.3:CRS84")
    points, report = load_pts(path)
    assert [(p.point_id, p.lon, p.lat) for p in points] == [("7", -3.70, 40.42)]
    assert report["crs"] == "WGS 84 (CRS84)"  # lon/lat, not reprojected


def test_shapefile_null_shapes_are_skipped_and_listed(tmp_path: Path) -> None:
    path = tmp_path / "n.shp"
    pyogrio.raw.write(path, np.array([shapely.box(440000, 4474000, 441000, 4475000).wkb, None], dtype=object),
                      [np.array(["01", "02"], dtype=object)], ["id"], driver="ESRI Shapefile", crs="EPSG:25830",
                      geometry_type="Polygon")
    areas, _, report = load_areas(read_vector(path, None, path.name), AREAS, "ES", "s")
    assert [a.area_id for a in areas] == ["01"]
    assert report["skipped_features"] == [{"feature": "feature 2", "reason": "empty geometry"}]
