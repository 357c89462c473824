"""load_cities over many cities parses in worker processes while the previous batch is written
(pipelines/steps.py: ParallelLoads, issue #16): the warehouse ends with the same rows as loading one
city at a time, and a bad source still fails naming its city after the cities before it committed.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest

from canonical.errors import CitykpiError
from canonical.workers import WORKERS_ENV
from pipelines import steps
from sources.config import LoadedConfig, load_city_config
from sources.demo.generator import generate_demo_cities
from warehouse.home import Home

CITIES = 5
SCALE = 0.1
# Tables a load writes, with the columns that record when (not what) it wrote.
TABLES = {"observations": (), "core_areas": (), "core_points": (), "core_readings": (), "core_transit_stops": (),
          "core_street_edges": (), "core_withheld": (), "core_source_state": ("loaded_at",)}


@pytest.fixture(scope="module")
def cities(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("parallel") / "cities"
    generate_demo_cities(folder, count=CITIES, scale=SCALE, seed=4242)
    return folder


def _configs(folder: Path) -> list[LoadedConfig]:
    return [load_city_config(path) for path in sorted(folder.glob("*/city.yaml"))]


def _load(home: Home, configs: list[LoadedConfig], monkeypatch: pytest.MonkeyPatch, workers: int,
          batch: int) -> dict[str, dict]:
    monkeypatch.setenv(WORKERS_ENV, str(workers))
    monkeypatch.setattr(steps, "LOAD_BATCH", batch)
    home.ensure()
    assert not steps.fetch_failures(steps.fetch_cities(home, configs))
    return steps.load_cities(home, configs)


def _rows(home: Home) -> dict[str, list[tuple[object, ...]]]:
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        columns = {t: [c for (c,) in con.execute("SELECT column_name FROM information_schema.columns "
                                                 "WHERE table_name = ? ORDER BY ordinal_position", [t]).fetchall()
                       if c not in skip] for t, skip in TABLES.items()}
        return {t: con.execute(f"SELECT {', '.join(cols)} FROM {t} ORDER BY ALL").fetchall()
                for t, cols in columns.items()}
    finally:
        con.close()


def test_parallel_loads_equal_one_city_at_a_time(cities: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    configs = _configs(cities)
    one_by_one = _load(Home(tmp_path / "serial"), configs, monkeypatch, workers=0, batch=16)
    derived_here: list[str] = []
    in_this_process = steps.derive_spatial

    def counted(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int]) -> list[dict[str, Any]]:
        derived_here.append(city_id)
        return in_this_process(con, city_id, years)

    monkeypatch.setattr(steps, "derive_spatial", counted)
    parallel = _load(Home(tmp_path / "parallel"), configs, monkeypatch, workers=1, batch=2)
    # First loads: the worker that parsed a city made its spatial rows from the parsed rows, and they equal
    # the rows derived from the warehouse (below).
    assert derived_here == []
    assert list(parallel) == [c.city_id for c in configs]
    assert parallel == one_by_one
    serial_rows, parallel_rows = _rows(Home(tmp_path / "serial")), _rows(Home(tmp_path / "parallel"))
    assert all(serial_rows[t] for t in ("observations", "core_areas", "core_street_edges"))
    assert parallel_rows == serial_rows


def test_a_bad_source_fails_naming_its_city_after_the_cities_before_it(cities: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cities"
    shutil.copytree(cities, folder)
    bad = sorted(folder.glob("*/city.yaml"))[2].parent
    statistics = bad / "statistik_stadt.csv"
    lines = statistics.read_text(encoding="latin-1").splitlines()
    lines[3] = lines[3].rsplit(";", 2)[0] + ";zwölf;" + lines[3].rsplit(";", 1)[1]  # a figure that is no number
    statistics.write_text("\n".join(lines) + "\n", encoding="latin-1")
    configs = _configs(folder)
    home = Home(tmp_path / "home")
    with pytest.raises(CitykpiError) as raised:
        _load(home, configs, monkeypatch, workers=1, batch=2)
    assert "statistik_stadt.csv" in str(raised.value) and "row 4" in str(raised.value)
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        loaded = {c for (c,) in con.execute("SELECT DISTINCT city_id FROM observations").fetchall()}
    finally:
        con.close()
    assert loaded == {c.city_id for c in configs[:2]}  # the two before it committed; none after it


def test_the_writer_parses_the_cities_no_worker_has_started(cities: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """While the city to write is not parsed yet, the writing process takes over the parses still waiting
    for a worker; the rows are the same. Here the only worker is held by a blocking job (reading a FIFO)
    until the writer has taken one over, so the writer must take over to make progress."""
    configs = _configs(cities)
    one_by_one = _load(Home(tmp_path / "serial"), configs, monkeypatch, workers=0, batch=16)
    fifo = tmp_path / "hold"
    os.mkfifo(fifo)
    taken_here: list[bool] = []
    from pipelines.ordered_work import OrderedWork

    original_init, original_take = steps.ParallelLoads.__init__, OrderedWork._take_one_over

    def init_with_the_worker_held(self: steps.ParallelLoads, home: Home, workers: int) -> None:
        original_init(self, home, workers)
        self.work.pool.submit(fifo.read_bytes)  # blocks the worker until the FIFO is opened for writing and closed

    def take(self: OrderedWork) -> bool:
        took = original_take(self)
        taken_here.append(took)
        return took

    def release_when_taken_over() -> None:
        deadline = time.monotonic() + 600  # only against a hang: the condition is what is waited on
        while not any(taken_here) and time.monotonic() < deadline:
            time.sleep(0.05)
        with open(fifo, "wb"):
            pass

    monkeypatch.setattr(steps.ParallelLoads, "__init__", init_with_the_worker_held)
    monkeypatch.setattr(OrderedWork, "_take_one_over", take)
    releaser = threading.Thread(target=release_when_taken_over, daemon=True)
    releaser.start()
    parallel = _load(Home(tmp_path / "parallel"), configs, monkeypatch, workers=1, batch=2)
    releaser.join()
    assert any(taken_here)
    assert parallel == one_by_one
    assert _rows(Home(tmp_path / "parallel")) == _rows(Home(tmp_path / "serial"))


def test_kpi_values_and_scores_made_in_workers_equal_one_city_at_a_time(cities: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """compute_cities and score_cities over many cities make their rows in worker processes
    (pipelines/ordered_work.py) while this process stores them; the rows equal those made here, and a
    city whose computation failed in a worker is computed again here (where its error would name it)."""
    from pipelines.ordered_work import OrderedWork

    configs = _configs(cities)
    home = Home(tmp_path / "serial")
    _load(home, configs, monkeypatch, workers=0, batch=16)
    shutil.copytree(home.root, tmp_path / "parallel")
    work: list[steps.CityWork] = [(c, None) for c in configs]
    serial = steps.compute_cities(home, work, "run", keep_unchanged=False)

    monkeypatch.setenv(WORKERS_ENV, "1")
    monkeypatch.setattr(steps, "PARALLEL_COMPUTE_MIN", 2)
    monkeypatch.setattr(steps, "COMPUTE_AHEAD", 2)
    monkeypatch.setattr(steps, "STORE_BATCH", 2)  # stored two cities a transaction, and before the failed one
    from_workers, original = [], OrderedWork.result

    def result_second_failing(self: OrderedWork, future: Any) -> Any:
        from_workers.append(future)
        if len(from_workers) == 2:
            raise RuntimeError("lost in a worker")
        return original(self, future)

    monkeypatch.setattr(OrderedWork, "result", result_second_failing)
    parallel = steps.compute_cities(Home(tmp_path / "parallel"), work, "run", keep_unchanged=False)
    assert len(from_workers) == len(configs)
    assert parallel == serial
    # The scores the same way: made by the workers, stored here.
    monkeypatch.setenv(WORKERS_ENV, "0")
    serial_scores = steps.score_cities(home, work, "run", keep_unchanged=False)
    monkeypatch.setenv(WORKERS_ENV, "1")
    parallel_scores = steps.score_cities(Home(tmp_path / "parallel"), work, "run", keep_unchanged=False)
    assert len(from_workers) == 2 * len(configs)
    assert parallel_scores == serial_scores
    # A batch whose transaction fails is stored again city by city (where a failing city's error names it).
    shutil.copytree(tmp_path / "serial", tmp_path / "fallback")
    batches: list[int] = []

    def failing_batch(con: Any, cities: Any, run_id: str) -> None:
        batches.append(len(cities))
        con.execute("INSERT INTO kpi_state VALUES ('half-written', 'scores', 'x', 'run', now())")
        raise duckdb.ConstraintException("a batch that fails")

    import kpis.benchmarking.store as scores_store
    import kpis.store as values_store

    monkeypatch.setattr(scores_store, "store_scored_many", failing_batch)
    monkeypatch.setattr(values_store, "store_values_many", failing_batch)
    monkeypatch.setattr(OrderedWork, "result", original)
    assert steps.compute_cities(Home(tmp_path / "fallback"), work, "run", keep_unchanged=False) == serial
    assert batches and sum(batches) == len(configs)
    assert steps.score_cities(Home(tmp_path / "fallback"), work, "run", keep_unchanged=False) == serial_scores
    assert sum(batches) == 2 * len(configs)
    def rows(root: Path, table: str) -> list[tuple[object, ...]]:
        con = duckdb.connect(str(Home(root).warehouse_path), read_only=True)
        try:
            return con.execute(f"SELECT * EXCLUDE (computed_at) FROM {table} ORDER BY ALL").fetchall()
        finally:
            con.close()

    for table in ("kpi_values", "kpi_scores", "kpi_rollups", "kpi_progress"):
        expected = rows(tmp_path / "serial", table)
        assert expected and rows(tmp_path / "parallel", table) == expected, table
        assert rows(tmp_path / "fallback", table) == expected, table
    assert not [r for r in rows(tmp_path / "fallback", "kpi_state") if r[0] == "half-written"]  # rolled back
    monkeypatch.undo()
    # City-year entries replace exactly their years' rows, in a batch as one at a time.
    year_work: list[steps.CityWork] = [(c, c.config.city.reporting_years[-1:]) for c in configs]
    monkeypatch.setattr(steps, "PARALLEL_COMPUTE_MIN", 2)
    monkeypatch.setattr(steps, "STORE_BATCH", 2)
    monkeypatch.setenv(WORKERS_ENV, "0")
    serial_years = steps.compute_cities(home, year_work, "run-2", keep_unchanged=False)
    monkeypatch.setenv(WORKERS_ENV, "1")
    assert steps.compute_cities(Home(tmp_path / "parallel"), year_work, "run-2", keep_unchanged=False) == serial_years
    expected = rows(tmp_path / "serial", "kpi_values")
    assert [r for r in expected if "run-2" in r] and rows(tmp_path / "parallel", "kpi_values") == expected

