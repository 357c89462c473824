"""load_city parses without holding the warehouse (so other cities' stages write meanwhile) and
plans again when another run changed the same city in the meantime, instead of writing over it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines import steps
from sources.config import load_city_config
from warehouse import load as load_module
from warehouse.home import Home


def rows(home: Home) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        return con.execute("SELECT * FROM observations ORDER BY ALL").fetchall()
    finally:
        con.close()


def test_a_load_that_meets_a_concurrent_change_plans_again(demo_config: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    city = tmp_path / "city"
    shutil.copytree(demo_config.parent, city)
    loaded = load_city_config(city / "city.yaml")
    home = Home(tmp_path / "home")
    steps.load_city(home, loaded, steps.fetch_city(home, loaded))
    reference = rows(home)

    # A new statistics file; while this load parses it, "another run" rewinds the city's state of
    # the GTFS source (as if it had loaded an older snapshot): the plan no longer holds.
    statistics = city / "statistik_stadt.csv"
    statistics.write_bytes(statistics.read_bytes().replace(b"\n", b"\r\n"))
    snapshots = steps.fetch_city(home, loaded)
    calls: list[str] = []
    real_parse = load_module.parse_source

    def parse_while_another_run_writes(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[1].id)
        if len(calls) == 1:
            with home.warehouse() as con:  # the lock is free: this load holds no connection now
                con.execute("UPDATE core_source_state SET snapshot_id = 'older' WHERE source_id = 'gtfs'")
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(load_module, "parse_source", parse_while_another_run_writes)  # what parse_changed calls
    report = steps.load_city(home, loaded, snapshots)
    # First plan: statistics only; second plan: statistics and the GTFS feed the other run touched.
    assert calls == ["statistik-stadt", "statistik-stadt", "gtfs"]
    assert report["sources"]["gtfs"].get("unchanged") is not True
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        states = dict(con.execute("SELECT source_id, snapshot_id FROM core_source_state").fetchall())
    finally:
        con.close()
    assert states == {s.source_id: s.snapshot_id for s in snapshots}
    assert [r[:10] for r in rows(home)] == [r[:10] for r in reference]  # same values; provenance is the new snapshot's
