"""Acceptance: `citykpi run` materialises the deployment's partitioned asset graph (one driver:
pipelines/city_assets.py) in process, one Dagster run per partitions definition over all cities, and
writes a release; the deployment definitions (pipelines/definitions.py, tested in depth by
test_orchestration.py) pass `dg check defs`. CITYKPI_HOME and CITYKPI_CITIES point at tmp and a small demo."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def test_cli_assets_and_checks_are_not_partitioned() -> None:
    """The same assets and checks, partitioned per city (-year) in the deployment and not in `citykpi run`:
    a partitioned asset materialised over P partitions stores P events, and a partitioned check planned
    over P partitions costs Dagster P stored rows of O(P) bytes each."""
    from pipelines import definitions
    from pipelines.dagster_run import cli_assets

    cli = [spec for a in cli_assets() if isinstance(a, dg.AssetChecksDefinition) for spec in a.check_specs]
    assert cli and all(spec.partitions_def is None for spec in cli)
    graph = definitions.defs().resolve_asset_graph()
    deployment = [graph.get_check_spec(key) for key in graph.asset_check_keys]
    assert deployment and all(spec.partitions_def is not None for spec in deployment)
    cli_assets_ = [a for a in cli_assets() if isinstance(a, dg.AssetsDefinition)]
    assert cli_assets_ and all(a.partitions_def is None for a in cli_assets_)
    partitioned = {k.to_user_string() for k in graph.materializable_asset_keys if graph.get(k).is_partitioned}
    assert partitioned == {"raw/snapshots", "core/observations", "out/kpi_values", "out/scores"}


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


def test_run_plan_is_one_dagster_run_per_stage_group() -> None:
    from pipelines.dagster_run import run_plan

    assert [sorted(k.to_user_string() for k in keys) for keys in run_plan()] == [
        ["core/observations", "raw/snapshots"], ["out/kpi_values", "out/scores"], ["out/release"]]


def test_a_run_covers_each_citys_reporting_years_that_are_partition_years(demo_config: Path) -> None:
    from pipelines.partitions import YEAR, run_city_year_keys
    from sources.config import load_city_config

    loaded = load_city_config(demo_config)

    def city(city_id: str, years: list[int]) -> Any:
        return loaded.model_copy(update={"config": loaded.config.model_copy(update={
            "city": loaded.config.city.model_copy(update={"id": city_id, "reporting_years": years})})})

    first_partition_year = min(int(y) for y in YEAR.get_partition_keys())
    keys = run_city_year_keys([city("a", [2021, 2020]), city("b", [1990, 2022]), city("c", [1980])])
    # b's 1990 is no partition year; c has none, so it gets the first partition year (computed whole,
    # with a notice that the year is not one of its reporting years).
    assert keys == ["a|2020", "a|2021", "b|2022", f"c|{first_partition_year}"]


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
