"""Every geometry worked example of docs/city-config.md (tests/corpus/geo/*.yaml) loaded through the
pipeline steps (fetch into the landing zone, load, derive), checked against figures worked out by hand.

Hand figures: the corpus shapes are squares in ETRS89 / UTM 30N (EPSG:25830) 59.5 km west of the
central meridian, where the UTM point scale is k = 0.9996 (1 + x'^2 / 2R^2) with x' = -59,500 m and
R = 6,381 km: k = 0.999643, so a 1 km x 1 km UTM square is 100 / k^2 = 100.071 ha on the ellipsoid.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import duckdb
import pytest

from canonical.errors import SourceDataError
from pipelines import steps
from sources.config import load_city_config
from warehouse.db import connect
from warehouse.home import Home

CORPUS = Path(__file__).parent / "corpus" / "geo"
UTM_HA_PER_KM2 = 100.071  # 100 ha / k^2, see the module docstring


def load(tmp_path: Path, name: str) -> tuple[dict[str, Any], duckdb.DuckDBPyConnection]:
    loaded = load_city_config(CORPUS / name)
    home = Home.resolve(tmp_path / "home").ensure()
    report = steps.load_city(home, loaded, steps.fetch_city(home, loaded))
    return report, connect(home.warehouse_path, read_only=True)


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(sql).fetchall()


def metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Distance on a sphere (good to 0.5 % over a few metres: enough for 'within a few metres')."""
    dx = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return 6_371_000.0 * math.hypot(dx, math.radians(lat2 - lat1))


def test_shapefile_areas_with_sidecars_and_population(tmp_path: Path) -> None:
    report, con = load(tmp_path, "areas_shapefile.yaml")
    areas = rows(con, "SELECT area_id, name, area_ha FROM core_areas ORDER BY area_id")
    assert [(a, n) for a, n, _ in areas] == [("01", "Centro"), ("02", "Retiro")]  # '01' stays text
    for _, _, ha in areas:
        assert ha == pytest.approx(UTM_HA_PER_KM2, abs=0.005)
    population = rows(con, """SELECT area_type, area_id, year, value, source_record FROM observations
                              WHERE variable = 'population' AND derivation IS NULL ORDER BY area_id""")
    assert [r[:4] for r in population] == [("district", "01", 2023, 12000.0), ("district", "02", 2023, 8000.0)]
    assert population[0][4] == "districts.shp feature 1, field 'POB'"
    source = report["sources"]["districts"]
    assert (source["features"], source["areas"], source["skipped"], source["crs"]) == (2, 2, 0, "EPSG:25830")
    snapshot = rows(con, "SELECT path FROM source_snapshots")[0][0]
    landed = sorted(p.name for p in (tmp_path / "home" / snapshot).parent.iterdir())
    assert landed == ["districts.cpg", "districts.dbf", "districts.prj", "districts.shp", "districts.shx",
                      "meta.json"]


def test_zipped_shapefile(tmp_path: Path) -> None:
    _, con = load(tmp_path, "areas_zip.yaml")
    areas = rows(con, "SELECT area_id, area_ha FROM core_areas ORDER BY area_id")
    assert [a for a, _ in areas] == ["01", "02"]
    assert sum(ha for _, ha in areas) == pytest.approx(2 * UTM_HA_PER_KM2, abs=0.01)


def test_geopackage_layer(tmp_path: Path) -> None:
    _, con = load(tmp_path, "areas_geopackage.yaml")
    parks = rows(con, "SELECT area_type, area_id, name, area_ha FROM core_areas ORDER BY area_id")
    # 200 m x 200 m = 4 ha and 100 m x 100 m = 1 ha in UTM, times 1 / k^2
    assert [p[:3] for p in parks] == [("green_area", "P-1", "Parque Uno"), ("green_area", "P-2", "Parque Dos")]
    assert parks[0][3] == pytest.approx(4 * UTM_HA_PER_KM2 / 100, abs=0.001)
    assert parks[1][3] == pytest.approx(UTM_HA_PER_KM2 / 100, abs=0.001)
    green = rows(con, "SELECT value FROM observations WHERE variable = 'green_area_ha'")
    assert green and green[0][0] == pytest.approx(5 * UTM_HA_PER_KM2 / 100, abs=0.002)


def test_geojson_grid_with_crs_member_feeds_the_population_grid(tmp_path: Path) -> None:
    _, con = load(tmp_path, "areas_geojson_grid.yaml")
    cells = rows(con, "SELECT area_id, area_ha FROM core_areas WHERE area_type = 'population_cell' ORDER BY 1")
    assert [c for c, _ in cells] == ["C1", "C2", "C3", "C4"]
    for _, ha in cells:  # 500 m x 1 km
        assert ha == pytest.approx(UTM_HA_PER_KM2 / 2, abs=0.003)
    gridded = rows(con, """SELECT value, source_record FROM observations WHERE variable = 'population_gridded'
                           AND data_point = 'total' AND year = 2023""")
    assert gridded[0][0] == 20000.0  # 5000 + 7000 + 3000 + 5000
    assert "population 2023 of 4 population_cell(s) from population-grid" in gridded[0][1]


STATIONS = {"28079101": (-3.7035, 40.4168), "28079102": (-3.684, 40.4153), "28079103": (-3.677, 40.47)}


@pytest.mark.parametrize(("config", "tolerance_m"), [
    ("points_csv_dms.yaml", 0.5),  # seconds rounded to 0.01" (0.3 m)
    ("points_csv_xy.yaml", 0.01),  # metres with 4 decimals
])
def test_station_coordinates_from_dms_and_projected_metres(tmp_path: Path, config: str, tolerance_m: float) -> None:
    _, con = load(tmp_path, config)
    points = {p: (lon, lat) for p, lon, lat in rows(con, "SELECT point_id, lon, lat FROM core_points")}
    assert points.keys() == STATIONS.keys()
    for point_id, (lon, lat) in STATIONS.items():
        assert metres(lon, lat, *points[point_id]) < tolerance_m, point_id


def test_points_from_excel(tmp_path: Path) -> None:
    _, con = load(tmp_path, "points_excel.yaml")
    assert rows(con, "SELECT point_id, name, lon, lat FROM core_points ORDER BY 1") == [
        ("E1", "Sol", -3.7035, 40.4168), ("E2", "Retiro", -3.684, 40.4153)]


def test_geojson_points_skip_and_list_a_feature_without_geometry(tmp_path: Path) -> None:
    report, con = load(tmp_path, "points_geojson.yaml")
    assert rows(con, "SELECT point_id, lon, lat FROM core_points ORDER BY 1") == [
        ("B1", -3.6931, 40.4193), ("B2", -3.6908, 40.4066)]
    source = report["sources"]["bus-stops"]
    assert (source["features"], source["points"], source["skipped"]) == (3, 2, 1)
    assert source["skipped_features"] == [{"feature": "feature 3", "reason": "no geometry (null)"}]


def test_stop_list_and_point_grid_feed_transit_access_without_gtfs(tmp_path: Path) -> None:
    report, con = load(tmp_path, "points_stop_list.yaml")
    stops = rows(con, "SELECT point_id, point_type FROM core_points WHERE source_id = 'metro' ORDER BY 1")
    assert stops == [("10_1", "transit_stop:tram"), ("4_1", "transit_stop:subway"), ("4_2", "transit_stop:subway")]
    assert report["sources"]["metro"]["unmapped_modes"] == {"8": 1}
    derived = {(v, dp): (value, record) for v, dp, value, record in rows(con, """
        SELECT variable, data_point, value, source_record FROM observations
        WHERE derivation IS NOT NULL AND year = 2023""")}
    # Cell centres (UTM m) and their nearest subway stop: C1 (440250, 4474500) 252 m from 4_1 (440316, 4474257);
    # C2 (440700, 4474500) 454 m from 4_1; C3 (441250, 4474500) 834 m from 4_2 (441969, 4474078) and 962 m
    # from 4_1; C4 (441750, 4474500) 475 m from 4_2. The tram stop is 7 km north.
    # SDG 11.2.1 (1 km of a high-capacity stop): all 20,000; U4SSC (500 m of any stop): all but C3's 3,000.
    assert derived["population_gridded", "total"][0] == 20000.0
    sdg_value, sdg_record = derived["population_transit_access_sdg", "total"]
    assert sdg_value == pytest.approx(20000.0)
    assert derived["population_within_500m_stop", "total"][0] == pytest.approx(17000.0)
    assert "no frequency filter could be applied" in sdg_record
    assert "no frequency filter could be applied" in derived["population_within_500m_stop", "total"][1]
    assert "all 3 stops (stop list metro" in sdg_record


def test_docs_examples_are_the_corpus_files() -> None:
    """Each geometry worked example in docs/city-config.md is the corpus file it names, and every corpus
    config is one of them (each is loaded by a test above)."""
    doc = (Path(__file__).parents[1] / "docs" / "city-config.md").read_text(encoding="utf-8")
    blocks = [block.split("```", 1)[0] for block in doc.split("```yaml\n")[1:]]
    shown = {block.splitlines()[0].removeprefix("# corpus: "): block for block in blocks
             if block.startswith("# corpus: tests/corpus/geo/")}
    assert sorted(shown) == sorted(f"tests/corpus/geo/{p.name}" for p in CORPUS.glob("*.yaml"))
    for name, block in shown.items():
        assert block == (Path(__file__).parents[1] / name).read_text(encoding="utf-8"), name


def test_population_from_geometry_and_from_a_table_conflict_clearly(tmp_path: Path) -> None:
    """The same district population from the shapefile's POB and from a statistics table: one error naming both."""
    (tmp_path / "population.csv").write_text("year,district,population\n2023,01,12500\n", encoding="utf-8")
    config = tmp_path / "city.yaml"
    config.write_text((CORPUS / "areas_shapefile.yaml").read_text(encoding="utf-8").replace(
        "location: districts.shp", f"location: {CORPUS / 'districts.shp'}").replace(
        "sources:", f"allowed_roots: ['{CORPUS}']\nsources:") + """  - id: statistics
    kind: file
    location: population.csv
    target: observations
    observations: {year_field: year, area_field: district, area_type: district,
                   variables: {population: {variable: population, unit: person}}}
""", encoding="utf-8")
    loaded = load_city_config(config)
    home = Home.resolve(tmp_path / "home").ensure()
    with pytest.raises(SourceDataError, match=r"population 01 2023 is also published by source"):
        steps.load_city(home, loaded, steps.fetch_city(home, loaded))
