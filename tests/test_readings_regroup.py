"""A readings source whose aggregates (core_readings_groups) no longer cover its rows is regrouped by
the next load, found by one query for a whole batch of cities (warehouse.load.mismatched_groups)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines import steps
from pipelines.cities import load_configs
from warehouse.home import Home
from warehouse.load import mismatched_groups

GROUPS = "SELECT * FROM core_readings_groups ORDER BY ALL"


@pytest.fixture(scope="module")
def cities(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sources.demo.generator import generate_demo_cities

    folder = tmp_path_factory.mktemp("regroup") / "cities"
    generate_demo_cities(folder, count=4, scale=0.02, seed=7)
    return folder


def test_lost_and_extra_aggregates_are_rebuilt_by_the_batched_load(cities: Path, tmp_path: Path) -> None:
    home = Home(tmp_path / "home").ensure()
    configs = load_configs([cities])
    steps.fetch_cities(home, configs)
    steps.load_cities(home, configs)
    ids = [c.city_id for c in configs]
    with home.warehouse() as con:
        before = con.execute(GROUPS).fetchall()
        assert before and mismatched_groups(con, ids) == {city: set() for city in ids}
        readings_source = con.execute("SELECT DISTINCT source_id FROM core_readings").fetchall()[0][0]
        # City 2 lost one station's aggregates; city 4 has a count that its rows do not make.
        con.execute("""DELETE FROM core_readings_groups WHERE city_id = ? AND station_id =
                       (SELECT min(station_id) FROM core_readings_groups WHERE city_id = ?)""", [ids[1], ids[1]])
        con.execute("UPDATE core_readings_groups SET n = n + 1 WHERE city_id = ? AND rowid = "
                    "(SELECT min(rowid) FROM core_readings_groups WHERE city_id = ?)", [ids[3], ids[3]])
        assert mismatched_groups(con, ids) == {ids[0]: set(), ids[1]: {readings_source}, ids[2]: set(),
                                               ids[3]: {readings_source}}
    reports = steps.load_cities(home, configs)  # four cities: the batched planning (ParallelLoads)
    assert [city for city in ids if reports[city]["changed"]] == [ids[1], ids[3]]
    with home.warehouse() as con:
        assert con.execute(GROUPS).fetchall() == before
        assert mismatched_groups(con, ids) == {city: set() for city in ids}


def test_one_city_is_planned_with_its_own_query(cities: Path, tmp_path: Path) -> None:
    home = Home(tmp_path / "home").ensure()
    loaded = load_configs([cities])[0]
    steps.load_city(home, loaded, steps.fetch_city(home, loaded))
    with home.warehouse() as con:
        before = con.execute(GROUPS).fetchall()
        con.execute("DELETE FROM core_readings_groups")
    assert steps.load_city(home, loaded, steps.current_snapshots(home, loaded))["changed"]
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        assert con.execute(GROUPS).fetchall() == before
    finally:
        con.close()
