"""A run keeps a city's quality results of a stage while what the checks read is unchanged (quality/state.py,
issue #16), and checks a city again as soon as its rows, its settings or the code change.

Runs on a copy of the two-city home of test_publish_multicity (demo-city and twin-city, checked once).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.steps import check_cities
from quality.model import QualitySettings
from sources.config import LoadedConfig, load_city_config
from tests.test_publish_multicity import two_city_home
from warehouse.home import Home


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return two_city_home(tmp_path_factory.getbasetemp())


@pytest.fixture
def home(source: Home, tmp_path: Path) -> Home:
    copy = Home(tmp_path / "home")
    shutil.copytree(source.root, copy.root, symlinks=True)
    return copy


@pytest.fixture(scope="module")
def configs(source: Home) -> list[LoadedConfig]:
    root = source.root.parent  # two_city_home: <base>/two-cities/{home, demo-city, twin-city}
    return [load_city_config(root / name / "city.yaml", check_files=False) for name in ("demo-city", "twin-city")]


def _rows(home: Home, run_id: str) -> dict[tuple[str, str, str], tuple[object, ...]]:
    with home.warehouse(read_only=True) as con:
        return {(city, table, check): rest for city, table, check, *rest in con.execute(
            """SELECT city_id, table_name, check_name, status, failing_count, evaluated_count, sample, description,
                      expectation, evaluated_at FROM quality_results WHERE run_id = ?""", [run_id]).fetchall()}


def _summary(results: dict[str, list]) -> dict[str, list[tuple[str, str, int | None, int]]]:
    return {city: [(r.check.key, r.status, r.failing, r.evaluated) for r in found] for city, found in results.items()}


def test_unchanged_cities_keep_their_results(home: Home, configs: list[LoadedConfig]) -> None:
    first = check_cities(home, configs, "check-1", "core")
    again = check_cities(home, configs, "check-2", "core")
    assert _summary(again) == _summary(first)
    one, two = _rows(home, "check-1"), _rows(home, "check-2")
    assert one and one == two  # copied as they were, evaluated_at included: nothing was judged again


def test_a_changed_city_is_checked_again(home: Home, configs: list[LoadedConfig]) -> None:
    check_cities(home, configs, "check-1", "core")
    with home.warehouse() as con:  # a negative count in twin-city: its core checks must see it
        con.execute("""UPDATE core_transit_stops SET departures = -5
                       WHERE city_id = 'twin-city' AND rowid = (SELECT min(rowid) FROM core_transit_stops
                                                                WHERE city_id = 'twin-city')""")
    results = check_cities(home, configs, "check-2", "core")
    one, two = _rows(home, "check-1"), _rows(home, "check-2")
    demo = {k: v for k, v in two.items() if k[0] == "demo-city"}
    assert demo == {k: v for k, v in one.items() if k[0] == "demo-city"}  # kept
    twin_times = {v[-1] for k, v in two.items() if k[0] == "twin-city"}
    assert twin_times.isdisjoint({v[-1] for k, v in one.items() if k[0] == "twin-city"})  # judged again
    failed = {r.check.key: r for r in results["twin-city"] if r.status == "failed"}
    assert failed["core_transit_stops__non_negative"].failing == 1
    assert not any(r.status == "failed" and r.check.key == "core_transit_stops__non_negative"
                   for r in results["demo-city"])


def test_changed_settings_check_again(home: Home, configs: list[LoadedConfig]) -> None:
    check_cities(home, configs, "check-1", "kpis", QualitySettings(yoy_bound=0.5))
    check_cities(home, configs, "check-2", "kpis", QualitySettings(yoy_bound=0.01))
    one, two = _rows(home, "check-1"), _rows(home, "check-2")
    assert {v[-1] for v in two.values()}.isdisjoint({v[-1] for v in one.values()})
    yoy = [k for k in two if k[2] == "plausible_year_over_year"]
    assert yoy, sorted({k[2] for k in two})
    assert sum(two[k][1] or 0 for k in yoy) > sum(one[k][1] or 0 for k in yoy)  # a tighter bound fails more
