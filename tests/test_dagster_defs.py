"""Acceptance: `citykpi run` materialises the deployment's partitioned asset graph (one driver:
pipelines/city_assets.py) in process, one Dagster run per partitions definition over all cities, and
writes a release; the deployment definitions (pipelines/definitions.py, tested in depth by
test_orchestration.py) pass `dg check defs`. CITYKPI_HOME and CITYKPI_CITIES point at tmp and a small demo."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from conftest import BIN_DIR, REPO_ROOT, RUN_TIMEOUT, release_dirs, subprocess_env, verify_release

RAW_SOURCES = ["bevoelkerung_bezirke", "bezirke", "gruenflaechen", "gtfs", "luftmessstationen", "luftmessungen",
               "statistik_stadt", "strassennetz", "versorgung"]
# The graph `citykpi run` materialises, written out: key -> keys it depends on (the same for any count of
# cities: cities are partitions, not assets).
EXPECTED_GRAPH = {
    "raw/snapshots": [],
    "core/observations": ["raw/snapshots"],
    "out/kpi_values": ["core/observations"],
    "out/scores": ["out/kpi_values"],
    "out/release": ["out/scores"],
}


@pytest.fixture(scope="module")
def dagster_env(demo_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("dagster") / "home"
    env = {"CITYKPI_HOME": str(home), "CITYKPI_CITIES": str(demo_config)}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        yield env


def test_cli_graph_is_the_deployment_graph() -> None:
    """One driver: the CLI's assets are the deployment's (the fetch only without its retry policy)."""
    from pipelines import definitions
    from pipelines.dagster_run import cli_assets

    cli = {key.to_user_string(): sorted(d.asset_key.to_user_string() for d in spec.deps)
           for a in cli_assets() if isinstance(a, dg.AssetsDefinition) for key, spec in a.specs_by_key.items()}
    assert cli == EXPECTED_GRAPH
    deployment = {s.key.to_user_string(): sorted(d.asset_key.to_user_string() for d in s.deps)
                  for s in definitions.defs().resolve_all_asset_specs()}
    assert cli == deployment
    checks = {key for a in cli_assets() if isinstance(a, dg.AssetChecksDefinition) for key in a.check_keys}
    assert {key.asset_key.to_user_string() for key in checks} == {"core/observations", "out/kpi_values"}
    assert checks == definitions.defs().resolve_asset_graph().asset_check_keys


def test_cli_checks_are_not_partitioned() -> None:
    """The same checks, partitioned per city (-year) in the deployment and not in `citykpi run`: a
    partitioned check planned over P partitions costs Dagster P stored rows of O(P) bytes each."""
    from pipelines import definitions
    from pipelines.dagster_run import cli_assets

    cli = [spec for a in cli_assets() if isinstance(a, dg.AssetChecksDefinition) for spec in a.check_specs]
    assert cli and all(spec.partitions_def is None for spec in cli)
    graph = definitions.defs().resolve_asset_graph()
    deployment = [graph.get_check_spec(key) for key in graph.asset_check_keys]
    assert deployment and all(spec.partitions_def is not None for spec in deployment)


def test_stage_order_is_the_graphs_order() -> None:
    """run_plain (Dagster-free) follows steps.STAGE_ORDER; the graph's dependencies give the same order."""
    from pipelines.steps import STAGE_ORDER

    stage_of = {"raw/snapshots": "fetch", "core/observations": "load", "out/kpi_values": "compute",
                "out/scores": "scores", "out/release": "publish"}
    order = [stage for stage in STAGE_ORDER if stage in stage_of.values()]
    for key, deps in EXPECTED_GRAPH.items():
        for dep in deps:
            assert order.index(stage_of[dep]) < order.index(stage_of[key])
    # The checks of a stage run right after it and before the next stage.
    assert STAGE_ORDER.index("check_core") == STAGE_ORDER.index("load") + 1
    assert STAGE_ORDER.index("check_kpis") == STAGE_ORDER.index("compute") + 1


def test_run_plan_spans_every_city_in_one_run_per_partitions_definition(demo_config: Path) -> None:
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from pipelines.dagster_run import run_plan
    from sources.config import load_city_config

    loaded = load_city_config(demo_config)
    other = loaded.model_copy(update={"config": loaded.config.model_copy(update={
        "city": loaded.config.city.model_copy(update={"id": "other-city", "reporting_years": [2020, 2021]})})})
    plan = run_plan([loaded, other])
    assert [sorted(k.to_user_string() for k in keys) for keys, _ in plan] == [
        ["core/observations", "raw/snapshots"], ["out/kpi_values", "out/scores"], ["out/release"]]
    assert (plan[0][1][ASSET_PARTITION_RANGE_START_TAG], plan[0][1][ASSET_PARTITION_RANGE_END_TAG]) == (
        "demo-city", "other-city")
    first_year = min([*loaded.config.city.reporting_years, 2020])
    last_year = max([*loaded.config.city.reporting_years, 2021])
    assert (plan[1][1][ASSET_PARTITION_RANGE_START_TAG], plan[1][1][ASSET_PARTITION_RANGE_END_TAG]) == (
        f"demo-city|{first_year}", f"other-city|{last_year}")
    assert plan[2][1] == {}


def test_deployment_definitions_load_without_touching_the_home(dagster_env: dict[str, str]) -> None:
    """The deployment's definitions read no city config and never generate a demo into the home:
    cities arrive later, as partitions registered by a sensor."""
    from pipelines import definitions

    dg.Definitions.validate_loadable(definitions.defs())
    assert not (Path(dagster_env["CITYKPI_HOME"]) / "demo").exists()


@pytest.mark.slow
@pytest.mark.skipif(not (BIN_DIR / "dg").exists(), reason="dg CLI not installed")
def test_dg_check_defs(dagster_env: dict[str, str]) -> None:
    proc = subprocess.run([str(BIN_DIR / "dg"), "check", "defs"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, env=subprocess_env(**dagster_env))
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    assert "All definitions loaded successfully" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_materialize_all_writes_a_release(demo_config: Path, dagster_env: dict[str, str]) -> None:
    from pipelines.dagster_run import materialize_all
    from sources.config import load_city_config
    from warehouse.home import Home

    home = Path(dagster_env["CITYKPI_HOME"])
    release = materialize_all(Home(home).ensure(), [load_city_config(demo_config)])
    releases = release_dirs(home)
    assert [p.name for p in releases] == [release.release_id]
    manifest = verify_release(releases[0])
    assert [c["id"] for c in manifest["cities"]] == ["demo-city"]
    assert {s["source_id"].replace("-", "_") for s in manifest["input_snapshots"]} == set(RAW_SOURCES)
    assert "demo-city" in manifest["loads"], "the loads section is written on every path"


def test_citykpi_run_plans_one_event_per_asset_not_per_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    """The switch `citykpi run` sets while it runs is the one Dagster reads (a renamed switch in an
    upgrade fails here), and the environment is as before afterwards."""
    from pipelines.dagster_run import PLANNED_EVENTS_ENV, _planned_events_per_run

    monkeypatch.delenv(PLANNED_EVENTS_ENV, raising=False)
    with dg.DagsterInstance.ephemeral() as instance:
        storage = instance.event_log_storage
        assert not storage.supports_partition_subset_in_asset_materialization_planned_events
        with _planned_events_per_run():
            assert storage.supports_partition_subset_in_asset_materialization_planned_events
        assert PLANNED_EVENTS_ENV not in os.environ
        monkeypatch.setenv(PLANNED_EVENTS_ENV, "false")
        with _planned_events_per_run():
            assert storage.supports_partition_subset_in_asset_materialization_planned_events
        assert os.environ[PLANNED_EVENTS_ENV] == "false"
