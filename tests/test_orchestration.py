"""Issue #7: the production deployment (pipelines/defs/citykpi.py): city x year partitions, sensors,
schedules, single-run backfills, and four cities run in parallel with the multiprocess executor
giving the same warehouse as a sequential run.

Cities: four small demo cities generated with different seeds and renamed (city-a .. city-d), in
one folder named by $CITYKPI_CITIES, one `<name>/city.yaml` each. Dagster runs use a real
instance on disk (DAGSTER_HOME in pytest's tmp) and `dg launch` subprocesses where the issue asks
for the CLI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
from conftest import BIN_DIR, REPO_ROOT, RUN_TIMEOUT, subprocess_env, verify_release
from services import postgres_binaries, postgres_server

from pipelines import automation
from pipelines.checks import QualityResource
from pipelines.city_assets import ASSETS, CHECKS, CORE, KPI, RAW, RELEASE, SCORES, raw_snapshots_asset
from pipelines.partitions import city_year_key
from pipelines.resources import CitykpiResource

warnings.filterwarnings("ignore", category=dg.PreviewWarning)
warnings.filterwarnings("ignore", category=dg.BetaWarning)

SCALE = 0.1
CITIES = {"city-a": 11, "city-b": 12, "city-c": 13, "city-d": 14}  # id -> generator seed
YEARS = [2022, 2023, 2024]
# Columns that name the run or the time of computing: everything else must match between runs.
RUN_COLUMNS = {"run_id", "computed_at", "loaded_at", "evaluated_at"}


def make_city(folder: Path, city_id: str, seed: int) -> Path:
    from sources.demo.generator import generate_demo_city

    config = generate_demo_city(folder / city_id, scale=SCALE, seed=seed)
    text = config.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^(\s+id:) demo-city\b", rf"\1 {city_id}", text, count=1)
    text = re.sub(r"(?m)^(\s+name:) Demoville\b", rf"\1 {city_id.title()}", text, count=1)
    config.write_text(text, encoding="utf-8")
    return config


@pytest.fixture(scope="module")
def cities_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("orchestration") / "cities"
    for city_id, seed in CITIES.items():
        make_city(folder, city_id, seed)
    return folder


@pytest.fixture
def deployment(cities_folder: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A fresh citykpi home and Dagster instance, with $CITYKPI_CITIES naming the four cities."""
    home, dagster_home = tmp_path / "home", tmp_path / "dagster"
    dagster_home.mkdir()
    # No pool limits here: the home's lock alone must keep parallel writers apart (docs/deployment.md).
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    env = {"CITYKPI_HOME": str(home), "CITYKPI_CITIES": str(cities_folder), "DAGSTER_HOME": str(dagster_home)}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        with dg.DagsterInstance.get() as instance:
            yield {"home": home, "instance": instance, "env": env, "cities": cities_folder}


RESOURCES = {"citykpi": CitykpiResource(), "quality": QualityResource()}


def materialize(instance: dg.DagsterInstance, selection: list[dg.AssetKey],
                partition: str | None) -> dg.ExecuteInProcessResult:
    result = dg.materialize([*ASSETS, *CHECKS], selection=selection, partition_key=partition, instance=instance,
                            resources=RESOURCES, raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


def register(instance: dg.DagsterInstance, cities: list[str]) -> None:
    """What the city_configs sensor asks the daemon to do, applied directly."""
    context = dg.build_sensor_context(instance=instance)
    result = automation.city_configs(context)
    assert isinstance(result, dg.SensorResult)
    for request in result.dynamic_partitions_requests or []:
        assert isinstance(request, dg.AddDynamicPartitionsRequest)
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    assert sorted(instance.get_dynamic_partitions("city")) == sorted(cities)


def table_rows(warehouse: Path, table: str, where: str = "") -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        columns = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [table]).fetchall() if r[0] not in RUN_COLUMNS]
        listed = ", ".join(f'"{c}"' for c in columns)
        return con.execute(f"SELECT {listed} FROM {table} {where} ORDER BY ALL").fetchall()
    finally:
        con.close()


# ---- the definitions ---------------------------------------------------------------------------


def test_deployment_definitions_snapshot() -> None:
    """Assets grouped by stage with their partitions, checks on both checked stages, jobs, schedules
    by cadence and the sensors: written out, so any change to the deployment shows up here."""
    from pipelines import definitions

    defs = definitions.defs()
    dg.Definitions.validate_loadable(defs)
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    graph = {key: (spec.group_name, sorted(d.asset_key.to_user_string() for d in spec.deps),
                   type(spec.partitions_def).__name__ if spec.partitions_def else None)
             for key, spec in specs.items()}
    assert graph == {
        "raw/snapshots": ("raw", [], "DynamicPartitionsDefinition"),
        "core/observations": ("core", ["raw/snapshots"], "DynamicPartitionsDefinition"),
        "out/kpi_values": ("out", ["core/observations"], "MultiPartitionsDefinition"),
        "out/scores": ("out", ["out/kpi_values"], "MultiPartitionsDefinition"),
        "out/release": ("out", ["out/scores"], None),
    }
    assert specs["raw/snapshots"].freshness_policy is not None
    assert specs["out/release"].freshness_policy is not None
    checks = {key.asset_key.to_user_string() for check in defs.asset_checks or [] for key in check.check_keys}
    assert checks == {"core/observations", "out/kpi_values"}
    repository = defs.get_repository_def()
    assert {j.name for j in repository.get_all_jobs()} >= {
        "fetch_sources", "ingest_city", "load_city", "compute_city_year", "publish_release"}
    assert sorted(s.name for s in repository.schedule_defs) == ["fetch_daily", "fetch_monthly", "fetch_weekly"]
    assert sorted(s.name for s in repository.sensor_defs) == [
        "city_configs", "kpis_after_load", "release_after_scores", "source_snapshots"]
    raw = next(a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition) and a.key == RAW)
    assert raw.op.retry_policy is not None and raw.op.retry_policy.backoff == dg.Backoff.EXPONENTIAL


# ---- partitions, idempotence, backfills ------------------------------------------------------


@pytest.mark.slow
def test_one_city_year_partition_replaces_exactly_its_rows(deployment: dict[str, Any]) -> None:
    instance, home = deployment["instance"], deployment["home"]
    register(instance, list(CITIES))
    materialize(instance, [RAW, CORE], "city-a")
    warehouse = home / "warehouse.duckdb"
    materialize(instance, [KPI, SCORES], city_year_key("city-a", 2023))
    first = table_rows(warehouse, "kpi_values")
    assert first and {row[1] for row in first} == {2023}, "only the partition's year is computed"
    assert {row[0] for row in first} == {"city-a"}
    # Another year leaves 2023 as it was; re-running 2023 replaces exactly its rows.
    materialize(instance, [KPI, SCORES], city_year_key("city-a", 2022))
    assert table_rows(warehouse, "kpi_values", "WHERE year = 2023") == first
    materialize(instance, [KPI, SCORES], city_year_key("city-a", 2023))
    assert table_rows(warehouse, "kpi_values", "WHERE year = 2023") == first
    assert {r[1] for r in table_rows(warehouse, "kpi_values")} == {2022, 2023}
    assert {r[1] for r in table_rows(warehouse, "kpi_scores")} == {2022, 2023}
    # A year the city does not report computes nothing and says so.
    result = materialize(instance, [KPI], city_year_key("city-a", 2010))
    computed = result.asset_materializations_for_node("out__kpi_values")[0].metadata["computed"].value
    assert computed == {"city-a": {"years": [], "skipped_years": [2010]}}
    assert {r[1] for r in table_rows(warehouse, "kpi_values")} == {2022, 2023}


def dg_launch(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(BIN_DIR / "dg"), "launch", *args], cwd=REPO_ROOT, env=subprocess_env(None, **env),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = RUN_TIMEOUT) -> str:
    """Wait for a `dg launch` to end (the limit is against a hang only: four runs on a loaded 2-core
    machine take many minutes)."""
    output, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, output[-4000:]
    assert "database is locked" not in output and "Could not set lock" not in output, output[-4000:]
    return output


@pytest.mark.slow
@pytest.mark.skipif(not (BIN_DIR / "dg").exists(), reason="dg CLI not installed")
def test_parallel_cities_match_a_sequential_run(deployment: dict[str, Any], tmp_path: Path) -> None:
    """Four city partitions at once, each a `dg launch` run with the multiprocess executor (every step
    its own process), then one single-run backfill of every city and year: no lock errors, and every
    table equals a sequential `run_plain` of the same four cities."""
    from pipelines.cities import configured_cities
    from pipelines.steps import run_plain
    from warehouse.home import Home

    instance, env, home = deployment["instance"], deployment["env"], deployment["home"]
    register(instance, list(CITIES))
    ingest = [dg_launch(env, "--job", "ingest_city", "--partition", city) for city in CITIES]
    for proc in ingest:
        finish(proc)
    first, last = min(CITIES), max(CITIES)
    finish(dg_launch(env, "--assets", "key:out/kpi_values,key:out/scores", "--partition-range",
                     f"{first}|{YEARS[0]}...{last}|{YEARS[-1]}"))
    materialize(instance, [RELEASE], None)

    sequential = Home(tmp_path / "sequential")
    run_plain(sequential, configured_cities(), run_id="sequential")
    for table in ("observations", "core_readings", "kpi_values", "kpi_scores", "kpi_rollups", "kpi_progress"):
        parallel_rows = table_rows(home / "warehouse.duckdb", table)
        assert parallel_rows, table
        assert parallel_rows == table_rows(sequential.warehouse_path, table), f"{table} differs"
    runs = instance.get_runs()
    assert len(runs) == 6 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    assert sorted(r.tags.get("dagster/partition", "") for r in runs if r.job_name == "ingest_city") == sorted(CITIES)
    releases = sorted(p for p in (home / "releases").iterdir() if not p.is_symlink())
    manifest = verify_release(releases[-1])
    assert sorted(c["id"] for c in manifest["cities"]) == sorted(CITIES)
    assert manifest["quality"]["checks_run"] > 0 and manifest["quality"]["runs"]


# ---- automation --------------------------------------------------------------------------------


def run_requests(result: Any) -> list[dg.RunRequest]:
    if isinstance(result, dg.SensorResult):
        return list(result.run_requests or [])
    return [r for r in (result if isinstance(result, list) else [result]) if isinstance(r, dg.RunRequest)]


@pytest.mark.slow
def test_a_changed_source_in_one_city_triggers_only_that_city(deployment: dict[str, Any], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Fetches run for every city; only the city whose source changed is loaded again, and only a
    load that changed observations (values or their provenance) starts KPI runs, for that city's
    reporting years."""
    from pipelines.cities import configured_cities
    from pipelines.steps import fetch_sources
    from warehouse.home import Home

    instance = deployment["instance"]
    cities_folder = tmp_path / "cities"
    shutil.copytree(deployment["cities"], cities_folder, symlinks=True)
    monkeypatch.setenv("CITYKPI_CITIES", str(cities_folder))
    register(instance, list(CITIES))
    for city in ("city-a", "city-b"):
        materialize(instance, [RAW, CORE], city)
    home = Home.resolve()
    statistics = next((cities_folder / "city-b").glob("statistik*"))

    def evaluate(sensor: Any, cursor: str | None) -> tuple[list[dg.RunRequest], str | None]:
        result = sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
        if isinstance(result, dg.SkipReason):
            return [], cursor
        return run_requests(result), result.cursor

    def fetch_all() -> dict[str, list[str]]:  # what the fetch schedules do, for the two loaded cities
        return {c.city_id: fetch_sources(home, c).new_snapshots for c in configured_cities()
                if c.city_id in ("city-a", "city-b")}

    def load(city: str) -> list[str]:
        """Materialise the city's observations; the KPI runs the sensor then asks for."""
        cursor = str(instance.fetch_materializations(CORE, limit=1).records[0].storage_id)
        materialize(instance, [CORE], city)
        return sorted(str(r.partition_key) for r in evaluate(automation.kpis_after_load, cursor)[0])

    # Loaded cities whose snapshots did not change: nothing to do. Cities never fetched: nothing either.
    requests, snapshots_cursor = evaluate(automation.source_snapshots, None)
    assert requests == []
    assert fetch_all() == {"city-a": [], "city-b": []}
    assert evaluate(automation.source_snapshots, snapshots_cursor)[0] == []

    # Loading a city again without a new snapshot writes nothing and starts no KPI run.
    assert load("city-a") == []

    # City b corrects a figure: loaded again, then KPI runs for city b's reporting years only.
    text = statistics.read_text(encoding="latin-1")
    corrected = re.sub(r"(2023;Haushalte mit Internetzugang;)[\d.]+;", r"\g<1>12.345;", text, count=1)
    assert corrected != text
    statistics.write_text(corrected, encoding="latin-1")
    assert fetch_all() == {"city-a": [], "city-b": ["statistik-stadt"]}
    requests, snapshots_cursor = evaluate(automation.source_snapshots, snapshots_cursor)
    assert [r.partition_key for r in requests] == ["city-b"]
    assert load("city-b") == [city_year_key("city-b", y) for y in YEARS]
    assert evaluate(automation.source_snapshots, snapshots_cursor)[0] == []


def test_city_configs_sensor_registers_cities_and_reacts_to_changes(deployment: dict[str, Any]) -> None:
    instance, cities_folder = deployment["instance"], deployment["cities"]
    first = automation.city_configs(dg.build_sensor_context(instance=instance))
    assert isinstance(first, dg.SensorResult)
    (added,) = first.dynamic_partitions_requests or []
    assert isinstance(added, dg.AddDynamicPartitionsRequest) and sorted(added.partition_keys) == sorted(CITIES)
    assert sorted(str(r.partition_key) for r in first.run_requests or []) == sorted(CITIES)
    instance.add_dynamic_partitions("city", [*CITIES, "gone-city"])
    again = automation.city_configs(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    assert isinstance(again, dg.SensorResult) and not again.run_requests
    (deleted,) = again.dynamic_partitions_requests or []
    assert isinstance(deleted, dg.DeleteDynamicPartitionsRequest) and list(deleted.partition_keys) == ["gone-city"]
    # A changed targets file beside one city's config is a change of that city only.
    targets = cities_folder / "city-c" / "city.targets.csv"
    try:
        default = REPO_ROOT / "kpis" / "targets" / "default.csv"
        targets.write_text("\n".join(default.read_text(encoding="utf-8").splitlines()[:2]) + "\n", encoding="utf-8")
        changed = automation.city_configs(dg.build_sensor_context(instance=instance, cursor=first.cursor))
        assert isinstance(changed, dg.SensorResult)
        assert [r.partition_key for r in changed.run_requests or []] == ["city-c"]
    finally:
        targets.unlink(missing_ok=True)


def test_fetch_schedules_follow_source_cadence(deployment: dict[str, Any]) -> None:
    instance = deployment["instance"]
    register(instance, list(CITIES))
    by_name = {s.name: s for s in automation.SCHEDULES}
    tick = datetime(2026, 12, 1, 4, tzinfo=UTC)

    def evaluate(name: str) -> list[Any]:
        evaluated: Any = by_name[name](dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
        return list(evaluated)

    daily = run_requests(evaluate("fetch_daily"))
    monthly = run_requests(evaluate("fetch_monthly"))
    # The demo's hourly air-quality readings are pulled daily, its annual statistics monthly.
    assert sorted(str(r.partition_key) for r in daily) == sorted(CITIES)
    assert [r.run_config for r in daily] == [{"ops": {"raw__snapshots": {"config": {"every": "daily"}}}}] * len(CITIES)
    assert sorted(str(r.partition_key) for r in monthly) == sorted(CITIES)
    (weekly,) = evaluate("fetch_weekly")
    assert isinstance(weekly, dg.SkipReason) and "weekly" in (weekly.skip_message or "")


def test_a_failed_source_fails_only_its_city(deployment: dict[str, Any], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """One city's source file disappears: its fetch run fails naming the source, the others land."""
    instance, cities_folder = deployment["instance"], deployment["cities"]
    broken_folder = tmp_path / "cities"
    shutil.copytree(cities_folder, broken_folder)
    monkeypatch.setenv("CITYKPI_CITIES", str(broken_folder))
    statistics = next((broken_folder / "city-d").glob("statistik*"))
    statistics.unlink()
    register(instance, list(CITIES))
    # Without the retry policy (the deployment retries the city's fetch after about a minute).
    no_retries = [raw_snapshots_asset(retry_policy=None), *[a for a in ASSETS if a.key != RAW]]
    result = dg.materialize([*no_retries, *CHECKS], selection=[RAW], partition_key="city-d", instance=instance,
                            resources=RESOURCES, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "city-d/statistik-stadt" in str(failure.event_specific_data)
    assert materialize(instance, [RAW], "city-c").success
    # The sources of city d that did fetch were landed all the same.
    raw = Path(deployment["home"]) / "raw" / "city-d"
    assert (raw / "luftmessungen" / "CURRENT").exists() and not (raw / "statistik-stadt" / "CURRENT").exists()


def test_release_sensor_waits_for_new_scores(deployment: dict[str, Any]) -> None:
    instance = deployment["instance"]
    assert isinstance(automation.release_after_scores(dg.build_sensor_context(instance=instance)), dg.SkipReason)
    register(instance, list(CITIES))
    materialize(instance, [RAW, CORE], "city-a")
    materialize(instance, [KPI, SCORES], city_year_key("city-a", 2024))
    result = automation.release_after_scores(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.SensorResult) and len(result.run_requests or []) == 1
    again = automation.release_after_scores(dg.build_sensor_context(instance=instance, cursor=result.cursor))
    assert isinstance(again, dg.SkipReason)
    released = materialize(instance, [RELEASE], None)
    assert released.asset_materializations_for_node("out__release")[0].metadata["cities"].value == ["city-a"]


# ---- the production instance: Postgres storage and the warehouse pool --------------------------


@pytest.fixture
def postgres() -> Iterator[dict[str, str]]:
    """A throwaway PostgreSQL server on loopback (tests/services.py)."""
    import importlib.util

    if postgres_binaries() is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed")
    if importlib.util.find_spec("dagster_postgres") is None or importlib.util.find_spec("psycopg2") is None:
        pytest.skip("dagster-postgres / psycopg2 not installed (pip install -e '.[dev]')")
    with postgres_server() as server:
        yield {"DAGSTER_PG_HOST": server.host, "DAGSTER_PG_PORT": str(server.port), "DAGSTER_PG_USER": server.user,
               "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": server.database}


@pytest.mark.slow
@pytest.mark.skipif(not (BIN_DIR / "dg").exists(), reason="dg CLI not installed")
def test_production_instance_on_postgres_queues_warehouse_steps_in_the_pool(
        deployment: dict[str, Any], postgres: dict[str, str], tmp_path: Path) -> None:
    """docs/deployment/dagster.production.yaml as it is: Postgres storage and pool citykpi_warehouse
    at limit 1. Two cities ingest at once through `dg launch`; both succeed, and the sensors read
    the runs back from Postgres."""
    dagster_home = tmp_path / "dagster-production"
    dagster_home.mkdir()
    shutil.copy(REPO_ROOT / "docs" / "deployment" / "dagster.production.yaml", dagster_home / "dagster.yaml")
    env = {**deployment["env"], **postgres, "DAGSTER_HOME": str(dagster_home)}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        with dg.DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            register(instance, list(CITIES))
            # As docs/deployment.md says: set the pool once (two first runs racing to create its
            # default limit fail on a unique key in Postgres).
            instance.event_log_storage.set_concurrency_slots("citykpi_warehouse", 1)
            procs = [dg_launch(env, "--job", "ingest_city", "--partition", city) for city in ("city-a", "city-b")]
            for proc in procs:
                finish(proc)
            runs = instance.get_runs()
            assert sorted(r.tags["dagster/partition"] for r in runs) == ["city-a", "city-b"]
            assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
            info = instance.event_log_storage.get_concurrency_info("citykpi_warehouse")
            assert info.slot_count == 1 and not info.claimed_slots
            result = automation.kpis_after_load(dg.build_sensor_context(instance=instance))
            assert sorted(str(r.partition_key) for r in result.run_requests or []) == sorted(
                city_year_key(city, year) for city in ("city-a", "city-b") for year in YEARS)


# ---- dg dev ------------------------------------------------------------------------------------


def graphql(port: int, query: str) -> dict[str, Any]:
    import httpx

    # A generous timeout, only against a hang: a loaded machine answers slowly.
    response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=120)
    response.raise_for_status()
    return dict(response.json()["data"])


@pytest.mark.slow
@pytest.mark.timeout(3600)  # a guard against hangs only: a loaded 2-core machine takes minutes
@pytest.mark.skipif(not (BIN_DIR / "dg").exists(), reason="dg CLI not installed")
def test_dg_dev_serves_the_deployment_and_its_daemon_ingests_a_new_city(
        deployment: dict[str, Any], tmp_path: Path) -> None:
    """`dg dev` (webserver + daemon): the UI lists the assets by stage group, the checks, schedules
    and sensors (running), and the daemon's city_configs sensor registers the city and ingests it,
    after which kpis_after_load starts its city-year runs."""
    import signal
    import socket
    import time

    one_city = tmp_path / "one-city"
    one_city.mkdir()
    (one_city / "city-a").symlink_to(deployment["cities"] / "city-a")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**deployment["env"], "CITYKPI_CITIES": str(one_city)}
    proc = subprocess.Popen([str(BIN_DIR / "dg"), "dev", "-p", str(port)], cwd=REPO_ROOT,
                            env=subprocess_env(None, **env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 3000  # the conditions below end the waits; this only bounds a hang
        listing: dict[str, Any] = {}
        while time.monotonic() < deadline and not listing:
            try:
                listing = graphql(port, """{ assetNodes { assetKey { path } groupName
                    assetChecksOrError { ... on AssetChecks { checks { name } } } } }""")
            except Exception:  # not up yet: poll again soon (the loop ends on the answer, not a clock)
                time.sleep(0.5)
        groups = {"/".join(n["assetKey"]["path"]): n["groupName"] for n in listing["assetNodes"]}
        assert groups == {"raw/snapshots": "raw", "core/observations": "core", "out/kpi_values": "out",
                          "out/scores": "out", "out/release": "out"}
        checks = {c["name"] for n in listing["assetNodes"] for c in n["assetChecksOrError"].get("checks", [])}
        assert {"observations__unique_key", "kpi_values__percentage_range"} <= checks
        repository = graphql(port, """{ repositoriesOrError { ... on RepositoryConnection { nodes {
            schedules { name scheduleState { status } } sensors { name sensorState { status } } } } } }""")
        (repo,) = repository["repositoriesOrError"]["nodes"]
        assert {s["name"]: s["scheduleState"]["status"] for s in repo["schedules"]} == {
            "fetch_daily": "RUNNING", "fetch_weekly": "RUNNING", "fetch_monthly": "RUNNING"}
        assert {s["name"] for s in repo["sensors"] if s["sensorState"]["status"] == "RUNNING"} == {
            "city_configs", "source_snapshots", "kpis_after_load", "release_after_scores"}
        runs: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            runs = graphql(port, "{ runsOrError { ... on Runs { results { jobName status } } } }")[
                "runsOrError"]["results"]
            # The KPI sensor may queue its runs as soon as the load's asset is materialised, while the
            # ingest run is still finishing its checks: wait for both.
            if any(r["jobName"] == "compute_city_year" for r in runs) and \
                    {"jobName": "ingest_city", "status": "SUCCESS"} in runs:
                break
            time.sleep(0.5)
        assert {"jobName": "ingest_city", "status": "SUCCESS"} in runs, runs
        assert any(r["jobName"] == "compute_city_year" for r in runs), runs
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
