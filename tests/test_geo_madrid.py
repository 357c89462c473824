"""Madrid's real portal files (../shared/fixtures/cities/madrid, see its PROVENANCE.md) loaded as
published, without conversion: the district shapefile in EPSG:25830, the air-quality stations given
three ways in one CSV, and the Metro station list (UTM metres, comma separator, BOM, newlines in
quoted fields) feeding the transit-access indicators without a GTFS feed."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyproj import Geod
from shared_data import require_shared

from pipelines import steps
from sources.config import AreasMapping, PointsMapping, load_city_config
from sources.parsers.coordinates import table_features
from sources.parsers.geo import load_areas, load_points
from sources.parsers.tabular import read_csv
from sources.parsers.vector import read_vector
from warehouse.db import connect
from warehouse.home import Home

MADRID = "fixtures/cities/madrid"
GEOD = Geod(ellps="WGS84")


def test_district_shapefile_area_against_the_dbf_and_the_municipality() -> None:
    shp = require_shared(f"{MADRID}/distritos_shp/Distritos.shp")
    features = read_vector(shp, None, shp.name)
    areas, _, report = load_areas(features, AreasMapping(id_field="CODDIS", name_field="NOMDIS"), "ES", "distritos")
    assert report["crs"] == "EPSG:25830" and report["skipped"] == 0 and report["repaired"] == 0
    assert [a.area_id for a in areas] == [f"{n:02d}" for n in range(1, 22)]  # zero-padded text kept
    assert areas[0].name == "Centro"
    total = sum(a.area_ha for a in areas)
    # The DBF's Shape_area is planar UTM m2 (60,436.6 ha). UTM shrinks lengths by k = 0.99966 around
    # Madrid (0.7 degrees west of the central meridian), so the ellipsoidal area is Shape_area / k^2,
    # about 0.07 % more. The municipality's official area is 604.3 km2 (INE): 60,430 ha.
    planar = sum(float(f.properties["Shape_area"]) for f in features.features) / 10_000
    assert planar == pytest.approx(60_436.6, abs=0.1)
    assert total == pytest.approx(planar / 0.99966**2, rel=2e-4)
    assert total == pytest.approx(60_430, rel=0.002)
    for area, feature in zip(areas, features.features, strict=True):  # each district, not just the sum
        assert area.area_ha == pytest.approx(float(feature.properties["Shape_area"]) / 10_000 / 0.99966**2,
                                             rel=3e-4), area.area_id


def _stations(mapping: PointsMapping) -> dict[str, tuple[float, float]]:
    csv = require_shared(f"{MADRID}/informacion_estaciones_red_calidad_aire.csv")
    table = read_csv(csv, None, csv.name)
    points, _, report = load_points(table_features(table, mapping, "estaciones"), mapping, "ES", "estaciones")
    assert report["skipped"] == 0
    return {p.point_id: (p.lon, p.lat) for p in points}


def test_air_stations_three_notations_give_the_same_points() -> None:
    dms = _stations(PointsMapping(point_type="air_quality_station", id_field="CODIGO",
                                  lon_field="LONGITUD_ETRS89", lat_field="LATITUD_ETRS89"))
    utm = _stations(PointsMapping(point_type="air_quality_station", id_field="CODIGO",
                                  x_field="COORDENADA_X_ETRS89", y_field="COORDENADA_Y_ETRS89", crs="EPSG:25830"))
    degrees = _stations(PointsMapping(point_type="air_quality_station", id_field="CODIGO",
                                      lon_field="LONGITUD", lat_field="LATITUD"))
    assert len(dms) == len(utm) == len(degrees) == 24

    def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
        return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])

    for code in degrees:
        assert metres(utm[code], degrees[code]) < 0.05, code  # UTM with a decimal comma vs decimal degrees
        if code == "28079059":
            # The portal's DMS text for this station (3º 36' 33"O 40º 27' 55''N) is 791 m from the other two
            # notations, which agree to 1 cm: a publisher error, parsed as written.
            assert metres(dms[code], degrees[code]) == pytest.approx(791, abs=2)
        else:
            assert metres(dms[code], degrees[code]) < 6, code  # DMS rounded to 0.01" and to 5 m at worst


def test_metro_stop_list_feeds_transit_access_without_gtfs(tmp_path: Path) -> None:
    shp = require_shared(f"{MADRID}/distritos_shp/Distritos.shp")
    metro = require_shared(f"{MADRID}/Datos_abiertos__Elementos_de_la_Red_de_Metro.csv")
    # Madrid publishes no population by district in ../shared: 100,000 per district stands in for it.
    (tmp_path / "population.csv").write_text("year,district,population\n" + "".join(
        f"2023,{n:02d},100000\n" for n in range(1, 22)), encoding="utf-8")
    config = tmp_path / "madrid.yaml"
    config.write_text(f"""
config_version: 1
city: {{id: madrid, name: Madrid, country: ES, reporting_years: [2023]}}
allowed_roots: ["{Path(shp).parent}", "{Path(metro).parent}"]
sources:
  - id: distritos
    kind: file
    location: {shp}
    target: areas
    areas: {{area_type: district, id_field: CODDIS, name_field: NOMDIS}}
  - id: metro
    kind: file
    location: {metro}
    target: points
    points: {{point_type: transit_stop, id_field: IDESTACION, name_field: DENOMINACION, x_field: X, y_field: Y,
             crs: "EPSG:25830", transit: {{mode_field: MODO, modes: {{"4": subway}}}}}}
  - id: population
    kind: file
    location: population.csv
    target: observations
    observations: {{year_field: year, area_field: district, area_type: district,
                   variables: {{population: {{variable: population, unit: person}}}}}}
""", encoding="utf-8")
    loaded = load_city_config(config)
    home = Home.resolve(tmp_path / "home").ensure()
    report = steps.load_city(home, loaded, steps.fetch_city(home, loaded))
    assert report["sources"]["metro"]["points"] == 289  # 295 lines, 6 records with a newline in a quoted field
    steps.compute_city(home, loaded, "madrid-test")
    con = connect(home.warehouse_path, read_only=True)
    try:
        landed = con.execute("SELECT path FROM source_snapshots WHERE source_id = 'distritos'").fetchone()
        assert landed is not None
        assert sorted(p.name for p in (home.root / landed[0]).parent.iterdir()) == [
            "Distritos.dbf", "Distritos.prj", "Distritos.shp", "Distritos.shx", "meta.json"]
        kpis = {row[0]: row[1:] for row in con.execute("""
            SELECT indicator_id, status, value, CAST(inputs AS VARCHAR) FROM kpi_values
            WHERE indicator_id IN ('11.2.1', 'EC:I:T:2A') AND year = 2023
              AND (data_point = 'total' OR data_point IS NULL)""").fetchall()}
    finally:
        con.close()
    assert set(kpis) == {"11.2.1", "EC:I:T:2A"}
    for status, value, inputs in kpis.values():
        assert status == "computed"
        assert 0 < value <= 100
        assert "no frequency filter could be applied" in inputs
    # Every district has Metro within 1 km somewhere, but not everyone lives within 500 m of a station.
    assert kpis["EC:I:T:2A"][1] < kpis["11.2.1"][1]
