"""Acceptance: warehouse migrations, the writer lock, and the integrity of a completed run's tables."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from conftest import REPO_ROOT, RUN_TIMEOUT, CompletedHome, subprocess_env

from canonical.errors import CitykpiError
from warehouse.db import WarehouseBusyError, connect, migrate, migrations, writer_lock

CORE_TABLES = {"source_snapshots", "runs", "core_source_state", "observations", "core_areas", "core_points",
               "core_readings", "core_transit_stops", "kpi_values", "releases", "schema_migrations"}


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}


# ---- migrations -------------------------------------------------------------------------------


def test_migrations_are_numbered_and_start_at_one() -> None:
    shipped = migrations()
    assert [v for v, _, _ in shipped] == list(range(1, len(shipped) + 1))
    assert shipped[0][1] == "init"


def test_migrations_apply_once_and_are_recorded(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    con = connect(path)
    try:
        assert _tables(con) >= CORE_TABLES
        recorded = con.execute("SELECT version, name, sha256, applied_at FROM schema_migrations ORDER BY 1").fetchall()
    finally:
        con.close()
    expected = [(v, name, hashlib.sha256(sql.encode()).hexdigest()) for v, name, sql in migrations()]
    assert [r[:3] for r in recorded] == expected

    # Re-connecting applies nothing and leaves the records as they were.
    con = connect(path)
    try:
        assert migrate(con) == []
        again = con.execute("SELECT version, name, sha256, applied_at FROM schema_migrations ORDER BY 1").fetchall()
    finally:
        con.close()
    assert again == recorded

    raw = duckdb.connect(str(path))
    try:
        assert migrate(raw) == []
    finally:
        raw.close()


def test_fresh_database_reports_the_versions_it_applied(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    try:
        assert migrate(con) == [v for v, _, _ in migrations()]
        assert migrate(con) == []
    finally:
        con.close()


def test_an_edited_applied_migration_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    connect(path).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE schema_migrations SET sha256 = ? WHERE version = 1", ["0" * 64])
    con.close()
    with pytest.raises(CitykpiError, match=r"migration 0001_init\.sql changed after it was applied"):
        connect(path)


def test_read_only_connect_does_not_migrate(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    connect(path).close()
    con = connect(path, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM schema_migrations").fetchone() == (len(migrations()),)
    finally:
        con.close()


# ---- writer lock ------------------------------------------------------------------------------


def test_writer_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    """The CLI holds the lock for a run while each stage takes it again: that must not deadlock."""
    with writer_lock(tmp_path), writer_lock(tmp_path):
        pass
    import warehouse.db as db

    assert not db._HELD, "the lock is fully released after the outer holder exits"


def test_writer_lock_refuses_a_second_process(tmp_path: Path) -> None:
    code = f"""
import sys
from pathlib import Path
from warehouse.db import WarehouseBusyError, writer_lock
try:
    with writer_lock(Path({str(tmp_path)!r})):
        print("acquired")
except WarehouseBusyError as exc:
    print("busy:", exc)
"""

    def other_process() -> str:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=RUN_TIMEOUT,
                              env=subprocess_env(), cwd=REPO_ROOT)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    with writer_lock(tmp_path):
        assert other_process().startswith("busy: another citykpi run is writing to")
    assert other_process() == "acquired"


def test_writer_lock_is_released_when_the_holder_dies(tmp_path: Path) -> None:
    """flock dies with its process: a killed run never leaves a stale lock behind."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import sys, time\nfrom pathlib import Path\nfrom warehouse.db import writer_lock\n"
         f"with writer_lock(Path({str(tmp_path)!r})):\n    print('held', flush=True)\n    time.sleep(3600)\n"],
        stdout=subprocess.PIPE, text=True, env=subprocess_env(), cwd=REPO_ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseBusyError), writer_lock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait(timeout=30)
    with writer_lock(tmp_path):
        pass
    assert (tmp_path / ".lock").exists() and os.access(tmp_path / ".lock", os.R_OK)


# ---- a completed run's tables -----------------------------------------------------------------


@pytest.fixture(scope="module")
def warehouse(completed_home: CompletedHome) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(completed_home.home / "warehouse.duckdb"), read_only=True)
    yield con
    con.close()


def test_observation_keys_are_unique(warehouse: duckdb.DuckDBPyConnection) -> None:
    # data_point may be NULL, which a UNIQUE index does not compare: group on a stand-in instead.
    dupes = warehouse.execute("""
        SELECT city_id, year, variable, coalesce(data_point, '<null>') AS dp, area_type, area_id, count(*) AS n
        FROM observations GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL LIMIT 5""").fetchall()
    assert dupes == []
    total, with_null = warehouse.execute(
        "SELECT count(*), count(*) FILTER (WHERE data_point IS NULL) FROM observations").fetchone()  # type: ignore[misc]
    assert total > 0 and with_null > 0


def test_kpi_value_keys_are_unique(warehouse: duckdb.DuckDBPyConnection) -> None:
    dupes = warehouse.execute("""
        SELECT city_id, year, indicator_id, coalesce(data_point, '<null>'), count(*) FROM kpi_values
        GROUP BY ALL HAVING count(*) > 1 LIMIT 5""").fetchall()
    assert dupes == []


def test_observations_point_to_recorded_snapshots(warehouse: duckdb.DuckDBPyConnection) -> None:
    orphans = warehouse.execute("""
        SELECT DISTINCT o.snapshot_id FROM observations o
        LEFT JOIN source_snapshots s USING (snapshot_id)
        WHERE o.snapshot_id IS NOT NULL AND s.snapshot_id IS NULL""").fetchall()
    assert orphans == []
    state = warehouse.execute("""
        SELECT count(*) FROM core_source_state c LEFT JOIN source_snapshots s USING (snapshot_id)
        WHERE s.snapshot_id IS NULL""").fetchone()
    assert state == (0,)


def test_kpi_inputs_parse_and_reference_known_snapshots(warehouse: duckdb.DuckDBPyConnection) -> None:
    known = {r[0] for r in warehouse.execute("SELECT snapshot_id FROM source_snapshots").fetchall()}
    rows = warehouse.execute("SELECT indicator_id, year, status, inputs FROM kpi_values").fetchall()
    assert rows
    computed = 0
    for indicator_id, year, status, inputs_json in rows:
        inputs = json.loads(inputs_json)
        assert isinstance(inputs, list), (indicator_id, year)
        if status != "computed":
            continue
        computed += 1
        assert inputs, f"{indicator_id} {year}: computed without inputs"
        for item in inputs:
            assert item["variable"] and "value" in item, (indicator_id, year, item)
            if item.get("snapshot_id") is not None:
                assert item["snapshot_id"] in known, f"{indicator_id} {year}: unknown snapshot {item['snapshot_id']}"
    assert computed > 0
    # At least some inputs come straight from a snapshot (not only derived values).
    assert warehouse.execute(
        "SELECT count(*) FROM kpi_values WHERE status = 'computed' AND inputs LIKE '%snapshot_id%'").fetchone()[0] > 0  # type: ignore[index]


def test_missing_rows_name_their_missing_inputs(warehouse: duckdb.DuckDBPyConnection) -> None:
    """Take one widely used input away from the demo's observations: every KPI that needs it says so."""
    import polars as pl

    from kpis.engine import compute_kpi_values

    observations = pl.from_arrow(warehouse.cursor().sql("SELECT * FROM observations").to_arrow_table())
    assert isinstance(observations, pl.DataFrame)
    city_id = observations["city_id"][0]
    without = observations.filter(pl.col("variable") != "households_total")
    values = compute_kpi_values(without, {city_id: [2024]})
    missing = values.filter(pl.col("status") == "missing")
    assert missing.height > 0
    for row in missing.iter_rows(named=True):
        assert row["missing_inputs"], f"{row['indicator_id']}: missing without naming its inputs"
        for name in row["missing_inputs"]:
            assert name in row["status_reason"], f"{row['indicator_id']}: {name!r} not in {row['status_reason']!r}"
    assert any("households_total" in m for m in missing["missing_inputs"].to_list())
    computed = warehouse.execute(
        "SELECT count(*) FROM kpi_values WHERE status = 'computed' AND len(missing_inputs) > 0").fetchone()
    assert computed == (0,)


def test_releases_table_matches_release_folders(completed_home: CompletedHome,
                                                warehouse: duckdb.DuckDBPyConnection) -> None:
    registered = warehouse.execute("SELECT release_id, kpi_rows, manifest_sha256 FROM releases").fetchall()
    folders = sorted(p for p in (completed_home.home / "releases").iterdir() if not p.is_symlink())
    assert [r[0] for r in registered] == [p.name for p in folders]
    for (_release_id, kpi_rows, manifest_sha), folder in zip(registered, folders, strict=True):
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["row_counts"]["kpi_values"] == kpi_rows
        assert hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest() == manifest_sha


# ---- derived values are reproducible ------------------------------------------------------------


def test_station_annual_means_are_bit_identical_across_runs(tmp_path: Path) -> None:
    """A parallel avg() sums in thread order; the derived means (and so the release bytes) must not."""
    from warehouse.derive import station_annual_means

    con = connect(tmp_path / "warehouse.duckdb")
    try:
        con.execute("SET threads = 4")  # parallel aggregation even on a single-core runner
        # Eight stations, five pollutants, three years of hourly readings: 1M rows in several row groups.
        con.execute("""
            INSERT INTO core_readings
            SELECT 'c', 'st' || (i % 8), TIMESTAMPTZ '2022-01-01 00:00:00+00' + to_hours(i // 40),
                   'air_concentration_ugm3', 'P' || ((i // 8) % 5),
                   10 + 40 * ((hash(i) % 1000003) / 1000003.0), 's', 'c/s/x'
            FROM range(40 * 24 * 1096) t(i)""")
        results = {repr(station_annual_means(con, "c")) for _ in range(6)}
    finally:
        con.close()
    assert len(results) == 1, f"{len(results)} different results from 6 identical computations"
