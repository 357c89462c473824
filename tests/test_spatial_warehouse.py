"""kpis.spatial.derive end to end: the demo city through the pipeline steps (plus derive_spatial,
until derive_city calls it), and a tiny hand-made warehouse with a population grid."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
import shapely

from kpis.spatial.derive import derive_spatial
from pipelines import steps
from sources.config import LoadedConfig, load_city_config
from sources.demo.generator import generate_demo_city
from warehouse.db import connect, transaction
from warehouse.derive import _frame
from warehouse.home import Home
from warehouse.load import insert_frame

SPATIAL_KPIS = ("11.2.1", "EC:I:T:2A", "11.7.1", "11.3.1", "EN:EN:PSN:2A")


def _add_spatial(home: Home, loaded: LoadedConfig) -> list[dict[str, Any]]:
    con = connect(home.warehouse_path)
    try:
        already = con.execute("SELECT count(*) FROM observations WHERE derivation = 'population_grid@1'").fetchone()
        if already and already[0]:
            return []  # derive_city calls derive_spatial already
        with transaction(con):
            rows = derive_spatial(con, loaded.city_id, loaded.config.city.reporting_years)
            insert_frame(con, "observations", _frame(rows))
        return rows
    finally:
        con.close()


@dataclass
class DemoRun:
    home: Home
    loaded: LoadedConfig
    con: duckdb.DuckDBPyConnection


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    root = tmp_path_factory.mktemp("spatial-demo")
    loaded = load_city_config(generate_demo_city(root / "city", scale=0.125))
    home = Home.resolve(root / "home").ensure()
    steps.load_city(home, loaded, steps.fetch_city(home, loaded))
    _add_spatial(home, loaded)
    steps.compute_city(home, loaded, "spatial-test")
    con = connect(home.warehouse_path, read_only=True)
    yield DemoRun(home, loaded, con)
    con.close()


def _kpis(con: duckdb.DuckDBPyConnection, indicator_id: str) -> list[dict[str, Any]]:
    cursor = con.execute("""SELECT year, data_point, status, status_reason, value, numerator, denominator, inputs
                            FROM kpi_values WHERE indicator_id = ? ORDER BY year, data_point""", [indicator_id])
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


@pytest.mark.parametrize("indicator_id", SPATIAL_KPIS)
def test_demo_spatial_indicators_are_computed(demo_run: DemoRun, indicator_id: str) -> None:
    rows = _kpis(demo_run.con, indicator_id)
    years = demo_run.loaded.config.city.reporting_years
    assert {r["year"] for r in rows} == set(years)
    for row in rows:
        assert row["status"] == "computed", row
        assert row["status_reason"], "computed spatial rows state their deviation from the method"
        assert math.isfinite(row["value"])


def test_demo_values_are_plausible(demo_run: DemoRun) -> None:
    def values(indicator_id: str, data_point: str | None = "total") -> list[float]:
        return [r["value"] for r in _kpis(demo_run.con, indicator_id) if r["data_point"] == data_point]

    # Walking along the demo's 150 m street grid (gaps, dead ends, one bridge over the river) reaches
    # less than the straight line would (about 44 % against 65 % for 11.2.1 in 2024).
    assert all(30 < v < 100 for v in values("11.2.1"))
    assert all(25 < v < 100 for v in values("EC:I:T:2A"))
    share = [r["value"] for r in _kpis(demo_run.con, "11.7.1") if r["data_point"] == "area share"]
    access = [r["value"] for r in _kpis(demo_run.con, "11.7.1") if r["data_point"] == "access 400 m"]
    assert len(share) == len(access) == len(demo_run.loaded.config.city.reporting_years)
    assert all(5 < v < 60 for v in share)
    assert all(5 < v < 100 for v in access)
    assert all(5 < v < 100 for v in values("EN:EN:PSN:2A"))
    assert all(0 < v < 10 for v in values("11.3.1", None))  # built-up area grows faster than the population
    # 1 km around rail adds reach, the frequency filter removes none in the demo: SDG >= U4SSC share.
    for sdg, u4ssc in zip(values("11.2.1"), values("EC:I:T:2A"), strict=True):
        assert sdg >= u4ssc
    # Both methods side by side: walking along streets never reaches more than the straight line, and on
    # the demo's grid with gaps and one bridge it reaches clearly less.
    for indicator_id in ("11.2.1", "EC:I:T:2A", "EN:EN:PSN:2A"):
        network, straight = values(indicator_id), values(indicator_id, "total, straight line")
        assert len(network) == len(straight) == len(demo_run.loaded.config.city.reporting_years)
        for walked, crow in zip(network, straight, strict=True):
            assert walked < crow, indicator_id


def test_demo_11_2_1_has_every_group_and_the_caveat_in_its_inputs(demo_run: DemoRun) -> None:
    rows = [r for r in _kpis(demo_run.con, "11.2.1") if r["year"] == 2024]
    assert {r["data_point"] for r in rows} == {"total", "female", "male", "age 0-14", "age 15-64", "age 65+",
                                               "total, straight line"}
    for row in rows:
        records = [i["source_record"] for i in json.loads(row["inputs"])]
        method = ("method: straight_line; straight-line (Euclidean) distance in a local equal-area projection, beside "
                  "the walking distance" if row["data_point"] == "total, straight line"
                  else "method: network; walking distance along the street network")
        assert any(r.startswith(method) for r in records), records
        assert any("100 m grid cells" in r for r in records), records


def test_demo_gridded_population_matches_the_district_sums(demo_run: DemoRun) -> None:
    con = demo_run.con
    rows = con.execute("""SELECT g.year, g.data_point, g.value, p.value FROM observations g
        JOIN observations p ON p.city_id = g.city_id AND p.year = g.year AND p.area_type = 'city'
         AND p.data_point IS NULL AND p.variable = CASE g.data_point WHEN 'total' THEN 'population'
             WHEN 'female' THEN 'population_female' WHEN 'male' THEN 'population_male'
             WHEN 'age 0-14' THEN 'population_age_0_14' WHEN 'age 15-64' THEN 'population_age_15_64'
             ELSE 'population_age_65_plus' END
        WHERE g.variable = 'population_gridded'""").fetchall()
    assert len(rows) == 6 * len(demo_run.loaded.config.city.reporting_years)
    for year, group, gridded, rolled_up in rows:
        assert gridded == pytest.approx(rolled_up, rel=1e-12), (year, group)
    covered = dict(con.execute("""SELECT data_point, value FROM observations WHERE year = 2024
                                  AND variable = 'population_transit_access_sdg'""").fetchall())
    assert covered["female"] + covered["male"] == pytest.approx(covered["total"], rel=1e-9)


def test_demo_open_space_counts_green_areas_once_plus_streets(demo_run: DemoRun) -> None:
    con = demo_run.con
    open_space, green, streets, built_up = (con.execute(
        "SELECT value FROM observations WHERE year = 2024 AND area_type = 'city' AND variable = ?", [v]).fetchone()
        for v in ("open_public_space_ha", "green_area_ha", "street_area_ha", "built_up_area_ha"))
    assert open_space is not None and green is not None and streets is not None and built_up is not None
    # The union area in the local equal-area projection equals the sum of geodesic polygon areas
    # (the demo parks do not overlap); 11.7.1 adds the street area (UN-Habitat: open space + streets).
    assert open_space[0] == pytest.approx(green[0], rel=1e-6)
    share = con.execute("""SELECT value FROM kpi_values WHERE indicator_id = '11.7.1' AND year = 2024
                           AND data_point = 'area share'""").fetchone()
    assert share is not None
    assert share[0] == pytest.approx(100 * (open_space[0] + streets[0]) / built_up[0], rel=1e-9)


# ---- a hand-made warehouse with a population grid --------------------------------------------

LON0, LAT0 = 10.0, 51.0
DEG_PER_M_LAT = 1 / 111_250.0
DEG_PER_M_LON = 1 / (111_320.0 * math.cos(math.radians(LAT0)))


def _lonlat(x: float, y: float) -> tuple[float, float]:
    """Approximate metres east/north of (LON0, LAT0) -> lon, lat (good to < 1 % here)."""
    return LON0 + x * DEG_PER_M_LON, LAT0 + y * DEG_PER_M_LAT


def _square(x: float, y: float, size: float) -> shapely.Polygon:
    (x0, y0), (x1, y1) = _lonlat(x, y), _lonlat(x + size, y + size)
    return shapely.box(x0, y0, x1, y1)


def _area(con: duckdb.DuckDBPyConnection, area_type: str, area_id: str, shape: shapely.Geometry) -> None:
    con.execute("INSERT INTO core_areas VALUES ('t', ?, ?, NULL, 1.0, ?, 'src', 'snap', 'row')",
                [area_type, area_id, shape.wkb])


def _observation(con: duckdb.DuckDBPyConnection, year: int, variable: str, area_type: str, area_id: str,
                 value: float, data_point: str | None = None) -> None:
    con.execute("""INSERT INTO observations (city_id, year, variable, data_point, area_type, area_id, value, unit,
                   source_id, snapshot_id, source_record) VALUES ('t', ?, ?, ?, ?, ?, ?, 'x', 'census', 'snap', 'r')""",
                [year, variable, data_point, area_type, area_id, value])


def _stop(con: duckdb.DuckDBPyConnection, stop_id: str, x: float, y: float, route_types: str, departures: int) -> None:
    lon, lat = _lonlat(x, y)
    con.execute("""INSERT INTO core_transit_stops (city_id, stop_id, name, lon, lat, location_type, route_types,
                   departures, source_id, snapshot_id) VALUES ('t', ?, NULL, ?, ?, 0, ?, ?, 'gtfs', 'gtfs-snap')""",
                [stop_id, lon, lat, route_types, departures])


@pytest.fixture
def grid_warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Three 100 m population cells A (0 m), B (2 km east), C (5 km east) inside one district; a bus
    stop in A, a rail stop 800 m from B, a sparse bus stop in C, a park around C."""
    con = connect(tmp_path / "w.duckdb")
    _area(con, "district", "D", _square(-1000, -1000, 7000))
    for cell, x in (("A", 0.0), ("B", 2000.0), ("C", 5000.0)):
        _area(con, "population_cell", cell, _square(x - 50, -50, 100))
    _area(con, "green_area", "P", _square(4800, -200, 400))
    for year in (2023, 2024):
        _observation(con, year, "population", "district", "D", 99_999)  # ignored: the grid wins
        for cell, value in (("A", 100.0), ("B", 200.0), ("C", 700.0)):
            _observation(con, year, "population", "population_cell", cell, value)
    _observation(con, 2024, "population_female", "population_cell", "A", 50)  # incomplete: not placed
    _observation(con, 2024, "open_public_space_ha", "city", "t", 12.5)  # published: not derived again
    _stop(con, "bus-A", 0, 0, "3", 120)
    _stop(con, "rail-B", 2800, 0, "2", 60)
    _stop(con, "sparse-C", 5000, 0, "3", 12)
    _stop(con, "airport", 2000, 0, "1100", 300)  # not public transport for these indicators
    yield con
    con.close()


def test_population_grid_is_used_when_present(grid_warehouse: duckdb.DuckDBPyConnection) -> None:
    rows = derive_spatial(grid_warehouse, "t", [2023, 2024])
    got = {(r["year"], r["variable"], r["data_point"]): r["value"] for r in rows}
    for year in (2023, 2024):
        assert got[year, "population_gridded", "total"] == 1000
        assert got[year, "population_transit_access_sdg", "total"] == 300  # A by bus, B by rail within 1 km
        assert got[year, "population_within_500m_stop", "total"] == 800  # A, and C by the sparse bus stop
        assert got[year, "population_within_300m_green", "total"] == 700  # C lies in the park
    assert (2024, "population_gridded", "female") not in got
    assert got[2023, "open_public_space_ha", None] == pytest.approx(16.0, rel=0.02)  # the 400 m park
    assert (2024, "open_public_space_ha", None) not in got
    open_space = next(r for r in rows if r["variable"] == "open_public_space_ha")
    assert open_space["source_record"].endswith("streets not included: 11.7.1 adds street_area_ha")
    assert open_space["derivation"] == "open_public_space@2"
    record = next(r["source_record"] for r in rows if r["variable"] == "population_transit_access_sdg")
    assert "population_cell" in record and "2 of 3 served stops with >= 56 weekday departures" in record
    assert record.startswith("method: straight_line;")
    assert all(r["area_type"] == "city" for r in rows)
    # No street network: the straight-line twins are the headline values themselves, labelled so.
    for variable in ("population_transit_access_sdg", "population_within_500m_stop", "population_within_300m_green"):
        twin = next(r for r in rows if r["variable"] == f"{variable}_straight_line" and r["data_point"] == "total"
                    and r["year"] == 2023)
        assert twin["value"] == got[2023, variable, "total"]
        assert twin["source_record"].startswith("method: straight_line;") and "(no street network" in \
            twin["source_record"]


def _street(con: duckdb.DuckDBPyConnection, way: int, a: tuple[float, float], b: tuple[float, float]) -> None:
    """An edge between the street nodes at metres a and b (node id from the coordinates)."""
    (ua, va), (ub, vb) = _lonlat(*a), _lonlat(*b)
    con.execute("""INSERT INTO core_street_edges
                   VALUES ('t', 'osm', 'osm-snap', ?, 'residential', ?, ?, ?, ?, ?, ?, ?)""",
                [way, int(a[0] * 10_000 + a[1]), int(b[0] * 10_000 + b[1]), ua, va, ub, vb,
                 math.dist(a, b)])


def test_walking_distance_when_a_street_network_is_loaded(grid_warehouse: duckdb.DuckDBPyConnection) -> None:
    """The grid warehouse plus streets: a street along y = 0 from A (0 m) to B (2 km) in 100 m steps and a
    detour to the rail stop at 2.8 km via (2000, 500) and (2800, 500): B walks 500 + 800 + 500 = 1.8 km to
    the rail stop (straight line 800 m: covered), so only A (100) is covered for 11.2.1. C (5 km) is 2.2 km
    from the nearest street node: its bus stop snaps there too, further than 500 m, so C is not within
    500 m of a stop; C lies inside the park (distance 0), so green and open-space access keep C (700)."""
    con = grid_warehouse
    xs = [float(x) for x in range(0, 2001, 100)]
    for x0, x1 in itertools.pairwise(xs):
        _street(con, 1, (x0, 0.0), (x1, 0.0))
    _street(con, 2, (2000.0, 0.0), (2000.0, 500.0))
    _street(con, 2, (2000.0, 500.0), (2800.0, 500.0))
    _street(con, 2, (2800.0, 500.0), (2800.0, 0.0))
    rows = derive_spatial(con, "t", [2023])
    got = {(r["variable"], r["data_point"]): r for r in rows}
    assert got["population_transit_access_sdg", "total"]["value"] == pytest.approx(100)
    assert got["population_within_500m_stop", "total"]["value"] == pytest.approx(100)
    assert got["population_within_300m_green", "total"]["value"] == pytest.approx(700)
    assert got["population_within_400m_open_space", "total"]["value"] == pytest.approx(700)
    for variable in ("population_transit_access_sdg", "population_within_500m_stop", "population_within_300m_green",
                     "population_within_400m_open_space"):
        assert got[variable, "total"]["source_record"].startswith("method: network; walking distance"), variable
        assert "24 nodes" in got[variable, "total"]["source_record"]
        assert "23 edges" in got[variable, "total"]["source_record"]


def test_both_methods_side_by_side_by_hand(grid_warehouse: duckdb.DuckDBPyConnection) -> None:
    """The street grid of the test above: walking gives 11.2.1 100 of 1,000 (B's rail stop is 1.8 km away
    along the streets), straight line 300 (B is 800 m from it); EC:I:T:2A walking 100, straight line 800
    (C's bus stop is 0 m away as the crow flies, 2.2 km from any street); EN:EN:PSN:2A 700 both ways
    (C lies in the park). The release carries both, the network value as the headline."""
    from kpis.catalogue import indicators_by_id
    from kpis.engine import compute_kpi_values
    from warehouse.load import frame_of

    con = grid_warehouse
    for x0, x1 in itertools.pairwise([float(x) for x in range(0, 2001, 100)]):
        _street(con, 1, (x0, 0.0), (x1, 0.0))
    _street(con, 2, (2000.0, 0.0), (2000.0, 500.0))
    _street(con, 2, (2000.0, 500.0), (2800.0, 500.0))
    _street(con, 2, (2800.0, 500.0), (2800.0, 0.0))
    rows = [r for r in derive_spatial(con, "t", [2023]) if r["data_point"] == "total"]
    got = {r["variable"]: r for r in rows}
    for variable, walked, crow in (("population_transit_access_sdg", 100, 300),
                                   ("population_within_500m_stop", 100, 800),
                                   ("population_within_300m_green", 700, 700)):
        assert got[variable]["value"] == pytest.approx(walked), variable
        twin = got[f"{variable}_straight_line"]
        assert twin["value"] == pytest.approx(crow), variable
        assert twin["derivation"].endswith("_straight_line@1")
        assert twin["source_record"].startswith("method: straight_line; straight-line (Euclidean) distance in a "
                                                "local equal-area projection, beside the walking distance")
    insert_frame(con, "observations", _frame(rows))
    _observation(con, 2023, "population", "city", "t", 1000)
    columns = "city_id, year, variable, data_point, area_type, area_id, value, unit, source_id, snapshot_id, " \
              "source_record, derivation"
    observations = frame_of(con, f"SELECT {columns} FROM observations WHERE year = ?", [2023])
    catalogue = indicators_by_id()
    kpis = compute_kpi_values(observations, {"t": [2023]},
                              [catalogue[i] for i in ("11.2.1", "EC:I:T:2A", "EN:EN:PSN:2A")])
    values = {(r["indicator_id"], r["data_point"]): (r["value"], r["method_variant"])
              for r in kpis.iter_rows(named=True) if r["data_point"] in ("total", "total, straight line")}
    assert values["11.2.1", "total"][0] == pytest.approx(10.0)
    assert values["11.2.1", "total, straight line"][0] == pytest.approx(30.0)
    assert values["EC:I:T:2A", "total"][0] == pytest.approx(10.0)
    assert values["EC:I:T:2A", "total, straight line"][0] == pytest.approx(80.0)
    assert values["EN:EN:PSN:2A", "total"][0] == values["EN:EN:PSN:2A", "total, straight line"][0] == \
        pytest.approx(70.0)
    assert "transit_access_500m_straight_line@1" in values["EC:I:T:2A", "total, straight line"][1]
    assert "transit_access_500m@1" in values["EC:I:T:2A", "total"][1]


def test_nothing_to_derive_without_geometry(tmp_path: Path) -> None:
    con = connect(tmp_path / "empty.duckdb")
    try:
        assert derive_spatial(con, "nowhere", [2024]) == []
    finally:
        con.close()
