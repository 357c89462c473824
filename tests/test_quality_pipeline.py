"""Quality checks in the pipeline: Dagster asset checks in the definitions, `citykpi run --strict`
refusing a corrupted city (exit 2, no release, warehouse consistent), the same city published
without --strict (dependent KPIs failed_check, manifest `quality` summary), and GX imported lazily."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from conftest import (
    REPO_ROOT,
    RUN_TIMEOUT,
    CompletedHome,
    release_dirs,
    release_path_from_stdout,
    run_cli,
    subprocess_env,
    verify_release,
)

from quality.run import stage_suites
from quality.suites import all_checks


@pytest.fixture(scope="module")
def defs(demo_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dg.Definitions]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CITYKPI_HOME", str(tmp_path_factory.mktemp("quality-defs") / "home"))
        mp.setenv("CITYKPI_CITIES", str(demo_config))
        from pipelines import definitions

        yield definitions.defs()


def test_every_expectation_is_an_asset_check_on_its_asset(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    specs = {key: graph.get_check_spec(key) for key in graph.asset_check_keys}
    core = dg.AssetKey(["core", "observations"])
    kpis = dg.AssetKey(["out", "kpi_values"])
    expected = {dg.AssetCheckKey(core, c.key): c for c in all_checks(stage_suites("core"))}
    expected |= {dg.AssetCheckKey(kpis, c.key): c for c in all_checks(stage_suites("kpis"))}
    assert set(specs) == set(expected)
    assert {key: spec.blocking for key, spec in specs.items()} == {key: c.severity == "error"
                                                                  for key, c in expected.items()}
    names = {key.name for key in specs}
    assert {"observations__unique_key", "observations__households_with_internet_le_households_total",
            "core_readings__unique_key", "kpi_values__percentage_range",
            "kpi_values__plausible_year_over_year"} <= names
    assert not specs[dg.AssetCheckKey(kpis, "kpi_values__plausible_sme_share_above_95")].blocking
    assert "quality" in (defs.resources or {})


@pytest.fixture(scope="module")
def corrupted_city(demo_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    city = tmp_path_factory.mktemp("quality-cli") / "city"
    shutil.copytree(demo_config.parent, city)
    csv = city / "statistik_stadt.csv"
    text = csv.read_text(encoding="latin-1")
    csv.write_text(text.replace("2023;Haushalte mit Internetzugang;244.730;",
                                "2023;Haushalte mit Internetzugang;270.000;"), encoding="latin-1")
    return city / "city.yaml"


@pytest.mark.slow
def test_strict_refuses_then_a_normal_run_publishes_failed_check(corrupted_city: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    refused = run_cli("run", "--strict", corrupted_city, home=home)
    assert refused.returncode == 2, refused
    assert "citykpi: error: --strict: 1 blocking quality check(s) failed, so no release was published: " \
           "demo-city/observations.households_with_internet_le_households_total (1 failing)" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert release_dirs(home) == []
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        # Stopped by Dagster's blocking check after the load: results and marks stored, no KPIs computed.
        assert con.execute("SELECT count(*) FROM kpi_values").fetchall() == [(0,)]
        assert con.execute("SELECT count(*) FROM releases").fetchall() == [(0,)]
        assert con.execute("""SELECT status, failing_count FROM quality_results
                              WHERE check_name = 'households_with_internet_le_households_total'""").fetchall() \
            == [("failed", 1)]
        assert con.execute("SELECT variable, year FROM observations WHERE failed_check IS NOT NULL").fetchall() \
            == [("households_with_internet", 2023)]
    finally:
        con.close()

    published = run_cli("run", corrupted_city, home=home)
    assert published.returncode == 0, published
    assert "quality core: " in published.stderr and "1 failed" in published.stderr
    manifest = verify_release(release_path_from_stdout(published.stdout))
    quality = manifest["quality"]
    assert quality["failed"] == 1 and quality["checks_run"] == quality["passed"] + 1 + quality["warned"]
    assert [(c["table"], c["check"]) for c in quality["failed_checks"]] == \
        [("observations", "households_with_internet_le_households_total")]
    import polars as pl

    rows = pl.read_parquet(release_path_from_stdout(published.stdout) / "kpi_values.parquet")
    failed = rows.filter(pl.col("status") == "failed_check")
    assert failed.select("indicator_id", "year").rows() == [("EC:ICT:ICT:1C", 2023)]
    assert "households_with_internet 270,000 > households_total 260,906" in failed["status_reason"][0]


def test_clean_run_manifest_has_a_quality_summary(completed_home: CompletedHome) -> None:
    manifest = json.loads((completed_home.release / "manifest.json").read_text(encoding="utf-8"))
    quality = manifest["quality"]
    assert quality["failed"] == 0 and quality["failed_checks"] == []
    assert quality["checks_run"] == quality["passed"] + quality["warned"] > 50
    assert "quality core: " in completed_home.result.stderr


def test_great_expectations_is_imported_lazily() -> None:
    """The CLI's --help path and the modules the pipeline imports at definition time never import GX."""
    code = ("import sys, pipelines.cli, pipelines.city_assets, pipelines.dagster_run, pipelines.checks,"
            " quality.run;"
            "pipelines.cli._parser().format_help();"
            "print('great_expectations' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT,
                          env=subprocess_env(), timeout=RUN_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
