"""Incremental loads (issue #8) against full rebuilds, row for row, in real DuckDB files.

One home follows a city whose readings file changes step by step: a day appended inside a
reporting year, a day appended into the next year, nothing changed, an old value changed, a
station removed. After every step its warehouse must equal, row for row and bit for bit, a fresh
home that loaded the same files from scratch: the core tables, the readings aggregates and every
observation (derived annual means included). Only provenance may differ: an appended home keeps,
for the readings it already had, the snapshot they were first loaded from (`core_readings.snapshot_id`),
and for station annual means it did not derive again, the snapshot current when it derived them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from canonical.errors import SourceDataError
from pipelines import steps
from sources.config import load_city_config
from warehouse.home import Home

READINGS = "luftmessungen_stuendlich.parquet"
TABLES = {
    "core_readings": "SELECT station_id, observed_at, variable, data_point, value, source_id FROM core_readings",
    "core_readings_groups": "SELECT * FROM core_readings_groups",
    # A derived row that was not re-derived keeps the snapshot current when it was derived (checked below).
    "observations": "SELECT * EXCLUDE (failed_check) REPLACE (CASE WHEN derivation = 'station_annual_mean@2' "
                    "THEN NULL ELSE snapshot_id END AS snapshot_id) FROM observations",
    "core_points": "SELECT * FROM core_points",
    "core_areas": "SELECT * FROM core_areas",
    "core_transit_stops": "SELECT * FROM core_transit_stops",
    "core_source_state": "SELECT city_id, source_id, snapshot_id, row_count, config_sha256 FROM core_source_state",
}


@pytest.fixture(scope="module")
def two_station_city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sources.demo.generator import generate_demo_city

    return generate_demo_city(tmp_path_factory.mktemp("incremental") / "city", scale=0.25)  # two stations


def _load(home: Home, city: Path) -> dict[str, Any]:
    loaded = load_city_config(city / "city.yaml")
    return steps.load_city(home, loaded, steps.fetch_city(home, loaded))


def _dump(home: Home) -> dict[str, list[tuple[Any, ...]]]:
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        return {name: sorted(con.execute(sql).fetchall(), key=repr) for name, sql in TABLES.items()}
    finally:
        con.close()


def _rewrite(city: Path, original: Path, select: str) -> None:
    """Write the city's readings file as `select` over the original file (called `src`)."""
    con = duckdb.connect()
    try:
        con.execute(f"CREATE VIEW src AS SELECT * FROM read_parquet('{original}')")
        con.execute(f"COPY ({select}) TO '{city / READINGS}' (FORMAT parquet)")
    finally:
        con.close()


def _assert_equals_full_rebuild(home: Home, city: Path, tmp_path: Path, step: str) -> None:
    fresh = Home(tmp_path / f"fresh-{step}").ensure()
    assert _load(fresh, city)["sources"]["luftmessungen"]["mode"] == "replace"
    mine, theirs = _dump(home), _dump(fresh)
    for table in TABLES:
        assert mine[table] == theirs[table], f"{step}: {table} differs from a full rebuild"
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        duplicates = con.execute("""SELECT count(*) FROM (SELECT station_id, observed_at, variable, data_point
                                    FROM core_readings GROUP BY ALL HAVING count(*) > 1)""").fetchall()
        unknown = con.execute("""SELECT count(*) FROM observations o WHERE derivation = 'station_annual_mean@2'
                                 AND NOT EXISTS (SELECT 1 FROM source_snapshots s WHERE s.snapshot_id = o.snapshot_id
                                                 AND s.source_id = 'luftmessungen')""").fetchall()
    finally:
        con.close()
    assert duplicates == [(0,)], step
    assert unknown == [(0,)], step


def _snapshot_counts(home: Home) -> dict[str, int]:
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        return dict(con.execute("SELECT snapshot_id, count(*) FROM core_readings GROUP BY ALL").fetchall())
    finally:
        con.close()


@pytest.mark.slow
def test_incremental_loads_equal_full_rebuilds(two_station_city: Path, tmp_path: Path) -> None:
    city = tmp_path / "city"
    shutil.copytree(two_station_city.parent, city)
    original = tmp_path / "original.parquet"
    shutil.copy2(city / READINGS, original)
    home = Home(tmp_path / "home").ensure()
    last_day = "(SELECT max(zeitpunkt_utc) FROM src) - INTERVAL 1 DAY"

    # The year so far: the file without its last day.
    _rewrite(city, original, f"SELECT * FROM src WHERE zeitpunkt_utc <= {last_day}")
    first = _load(home, city)
    assert first["changed"] and first["sources"]["luftmessungen"]["mode"] == "replace"
    base_rows = sum(_snapshot_counts(home).values())

    # 1. The last day of the reporting year arrives: appended, the year's means re-derived.
    _rewrite(city, original, "SELECT * FROM src")
    report = _load(home, city)
    readings = report["sources"]["luftmessungen"]
    assert readings["mode"] == "append", readings
    assert readings["appended"] == readings["readings"] - base_rows > 0
    assert report["derived"]["mode"] == "readings" and report["derived"]["rows_rewritten"] > 0
    assert {year for year, _, _ in report["derived"]["keys"]} == {2024}
    assert report["changed_years"] == [2024] and report["observations_changed"]
    assert all(report["sources"][s]["unchanged"] for s in report["sources"] if s != "luftmessungen")
    counts = _snapshot_counts(home)
    assert sorted(counts.values()) == [readings["appended"], base_rows]  # old rows keep their first snapshot
    _assert_equals_full_rebuild(home, city, tmp_path, "append-in-year")

    # 2. A day of the next year: loaded, but no reporting year's observation changes.
    _rewrite(city, original, "SELECT * FROM src UNION ALL SELECT station_id, zeitpunkt_utc + INTERVAL 1 DAY, "
                             f"komponente, messwert FROM src WHERE zeitpunkt_utc > {last_day}")
    report = _load(home, city)
    assert report["sources"]["luftmessungen"]["mode"] == "append"
    assert report["changed"] and not report["observations_changed"] and report["changed_years"] == []
    assert {r["year"] for r in report["derived"]["station_years_rejected_low_coverage"]} == {2025}
    assert report["derived"]["rows_rewritten"] == 0
    _assert_equals_full_rebuild(home, city, tmp_path, "append-next-year")

    # 3. Nothing changed: a no-op that says so and writes nothing.
    before = _dump(home)
    report = _load(home, city)
    assert (report["changed"], report["observations_changed"], report["derived"]) == (False, False, {"mode": "none"})
    assert all(r["unchanged"] for r in report["sources"].values())
    assert _dump(home) == before

    # 4. An old value changes: the append is refused, the source replaced.
    _rewrite(city, original, "SELECT * REPLACE (CASE WHEN zeitpunkt_utc = TIMESTAMPTZ '2023-03-01 12:00:00+00' "
                             "AND komponente = 'PM10' THEN messwert + 1 ELSE messwert END AS messwert) FROM src")
    readings = _load(home, city)["sources"]["luftmessungen"]
    assert readings["mode"] == "replace" and "changed or vanished" in readings["append_refused"]
    _assert_equals_full_rebuild(home, city, tmp_path, "changed-value")

    # 5. A station disappears: replaced, its means gone.
    _rewrite(city, original, "SELECT * FROM src WHERE station_id <> (SELECT min(station_id) FROM src)")
    report = _load(home, city)
    assert report["sources"]["luftmessungen"]["mode"] == "replace" and report["observations_changed"]
    _assert_equals_full_rebuild(home, city, tmp_path, "station-removed")


def test_a_failed_append_leaves_the_warehouse_as_it_was(two_station_city: Path, tmp_path: Path) -> None:
    city = tmp_path / "city"
    shutil.copytree(two_station_city.parent, city)
    original = tmp_path / "original.parquet"
    shutil.copy2(city / READINGS, original)
    home = Home(tmp_path / "home").ensure()
    _load(home, city)
    before = _dump(home)
    # A new day whose readings have no time: the append refuses it, the replace names the row and field.
    _rewrite(city, original, "SELECT * FROM src UNION ALL SELECT station_id, NULL, komponente, messwert FROM src "
                             "WHERE zeitpunkt_utc > (SELECT max(zeitpunkt_utc) FROM src) - INTERVAL 1 DAY")
    with pytest.raises(SourceDataError, match=r"field 'zeitpunkt_utc': no time"):
        _load(home, city)
    assert _dump(home) == before


def test_a_changed_mapping_replaces_an_unchanged_snapshot(two_station_city: Path, tmp_path: Path) -> None:
    city = tmp_path / "city"
    shutil.copytree(two_station_city.parent, city)
    home = Home(tmp_path / "home").ensure()
    _load(home, city)
    config = city / "city.yaml"
    text = config.read_text(encoding="utf-8")
    assert '"SO2":   {variable: air_concentration_ugm3, unit: ppb' in text
    config.write_text(text.replace('"SO2":   {variable: air_concentration_ugm3, unit: ppb',
                                   '"SO2":   {variable: air_concentration_ugm3, unit: ug/m3'), encoding="utf-8")
    report = _load(home, city)
    assert report["sources"]["luftmessungen"]["mode"] == "replace"
    assert report["observations_changed"]
    _assert_equals_full_rebuild(home, city, tmp_path, "mapping")
