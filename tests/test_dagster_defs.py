"""Acceptance: the per-city asset graph that `citykpi run` materialises in process has the expected
shape and writes a release; the deployment definitions (pipelines/definitions.py, tested in depth
by test_orchestration.py) pass `dg check defs`. CITYKPI_HOME and CITYKPI_CITIES point at tmp and a
small demo."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from conftest import BIN_DIR, REPO_ROOT, RUN_TIMEOUT, release_dirs, subprocess_env, verify_release

# The asset graph for the demo city, written out: key -> keys it depends on.
RAW_SOURCES = ["bevoelkerung_bezirke", "bezirke", "gruenflaechen", "gtfs", "luftmessstationen", "luftmessungen",
               "statistik_stadt", "strassennetz", "versorgung"]
EXPECTED_GRAPH = {
    "raw/demo_city/bevoelkerung_bezirke": [],
    "raw/demo_city/bezirke": [],
    "raw/demo_city/gruenflaechen": [],
    "raw/demo_city/gtfs": [],
    "raw/demo_city/luftmessstationen": [],
    "raw/demo_city/luftmessungen": [],
    "raw/demo_city/statistik_stadt": [],
    "raw/demo_city/strassennetz": [],
    "raw/demo_city/versorgung": [],
    "core/demo_city/observations": [
        "raw/demo_city/bevoelkerung_bezirke", "raw/demo_city/bezirke", "raw/demo_city/gruenflaechen",
        "raw/demo_city/gtfs", "raw/demo_city/luftmessstationen", "raw/demo_city/luftmessungen",
        "raw/demo_city/statistik_stadt", "raw/demo_city/strassennetz", "raw/demo_city/versorgung",
    ],
    "out/demo_city/kpi_values": ["core/demo_city/observations"],
    "out/demo_city/scores": ["out/demo_city/kpi_values"],
    "out/release": ["out/demo_city/scores"],
}


@pytest.fixture(scope="module")
def dagster_env(demo_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("dagster") / "home"
    env = {"CITYKPI_HOME": str(home), "CITYKPI_CITIES": str(demo_config)}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        yield env


@pytest.fixture(scope="module")
def defs(dagster_env: dict[str, str]) -> dg.Definitions:
    """The per-city graph of `citykpi run` (pipelines/assets.py) for the configured city."""
    from pipelines.assets import build_definitions
    from pipelines.cities import configured_cities

    return build_definitions(configured_cities())


def test_definitions_load_and_validate(defs: dg.Definitions) -> None:
    dg.Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    assert "citykpi_all" in {job.name for job in repository.get_all_jobs()}
    assert "citykpi" in defs.resources


def test_asset_keys_and_dependencies(defs: dg.Definitions) -> None:
    graph = {spec.key.to_user_string(): sorted(dep.asset_key.to_user_string() for dep in spec.deps)
             for spec in defs.resolve_all_asset_specs()}
    assert graph == EXPECTED_GRAPH
    groups = {spec.key.to_user_string(): spec.group_name for spec in defs.resolve_all_asset_specs()}
    assert {key: key.split("/")[0] for key in groups} == groups


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
def test_materialize_all_assets_writes_a_release(defs: dg.Definitions, dagster_env: dict[str, str]) -> None:
    home = Path(dagster_env["CITYKPI_HOME"])
    assets = list(defs.assets or [])
    with dg.instance_for_test() as instance:
        result = dg.materialize(assets, instance=instance, resources=defs.resources)
    assert result.success
    materialized = {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
    assert materialized == set(EXPECTED_GRAPH)
    release_id = result.asset_materializations_for_node("out__release")[-1].metadata["release_id"].value
    releases = release_dirs(home)
    assert [p.name for p in releases] == [release_id]
    manifest = verify_release(releases[0])
    assert [c["id"] for c in manifest["cities"]] == ["demo-city"]
    assert {s["source_id"].replace("-", "_") for s in manifest["input_snapshots"]} == set(RAW_SOURCES)
