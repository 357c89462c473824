"""Acceptance: `citykpi run` end to end in real subprocesses, on real DuckDB files in tmp homes.

Covers the demo run and its release (manifest, hashes) and reproducibility across two runs. Crash
safety (SIGKILL at any point) is in test_end_to_end_kill.py: a module of its own, so the two tiers'
xdist workers (`--dist loadfile`) can run it beside this one.
"""

from __future__ import annotations

import csv
import io
import json
import stat
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import polars as pl
import pytest
from conftest import (
    CliResult,
    hash_tree,
    kpi_frame,
    release_dirs,
    release_path_from_stdout,
    run_cli,
    sha256_bytes,
    snapshot_dirs,
    verify_all_releases,
    verify_release,
)
from polars.testing import assert_frame_equal

from publish.releases import RELEASE_COLUMNS

DEMO_SOURCES = {"statistik-stadt", "versorgung", "bevoelkerung-bezirke", "bezirke", "gruenflaechen", "gtfs",
                "luftmessstationen", "luftmessungen", "strassennetz"}


@dataclass
class TwoRuns:
    home: Path
    first: CliResult
    second: CliResult
    first_release: Path
    second_release: Path
    first_release_hashes_before: dict[str, str]
    snapshots_after_first: set[str]
    snapshots_after_second: set[str]


@pytest.fixture(scope="module")
def two_demo_runs(tmp_path_factory: pytest.TempPathFactory) -> TwoRuns:
    """`citykpi run` without a config (the full-size demo city) twice in a row on one fresh home.

    Full size on purpose: its million hourly readings are aggregated in parallel, which is where
    run-to-run differences in the last bits of a float would come from."""
    home = tmp_path_factory.mktemp("e2e") / "home"
    first = run_cli("run", home=home)
    assert first.returncode == 0, first
    first_release = release_path_from_stdout(first.stdout)
    hashes = hash_tree(first_release)
    snapshots_first = snapshot_dirs(home)
    second = run_cli("run", "--force", home=home)  # unchanged inputs: --force, else no second release
    assert second.returncode == 0, second
    return TwoRuns(home, first, second, first_release, release_path_from_stdout(second.stdout), hashes,
                   snapshots_first, snapshot_dirs(home))


# ---- 1. the demo run and its release ----------------------------------------------------------


@pytest.mark.slow
def test_run_without_config_runs_the_demo_city_and_prints_summary(two_demo_runs: TwoRuns) -> None:
    result = two_demo_runs.first
    assert "Traceback" not in result.stderr
    assert "demo city" in result.stderr
    out = result.stdout
    assert "Indicator rows (indicator x data point x year) by status:" in out
    for group in ("Economy", "Environment", "Society and Culture", "SDG 11", "total"):
        assert any(line.startswith(group) for line in out.splitlines()), f"no {group!r} row in\n{out}"
    assert "Cities: demo-city; years: 2022, 2023, 2024" in out
    release = two_demo_runs.first_release
    assert release.parent == (two_demo_runs.home / "releases").resolve()
    assert f"Release {release.name}: {release}" in out
    assert release.is_dir()
    # The totals line adds up to the rows in the release.
    total = next(line for line in out.splitlines() if line.startswith("total")).split()[1:]
    assert sum(map(int, total)) == pl.read_parquet(release / "kpi_values.parquet").height


@pytest.mark.slow
def test_release_holds_data_manifest_and_checksums(two_demo_runs: TwoRuns) -> None:
    home, release = two_demo_runs.home, two_demo_runs.first_release
    names = {p.name for p in release.iterdir()}
    assert {"kpi_values.parquet", "kpi_values.csv", "manifest.json", "SHA256SUMS"} <= names
    manifest = verify_release(release)  # every listed file and SHA256SUMS entry checked against the bytes
    # Read-only files in a folder everyone may read (not mkdtemp's owner-only mode).
    assert stat.S_IMODE(release.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in release.rglob("*") if p.is_file()} == {0o444}
    assert {stat.S_IMODE(p.stat().st_mode) for p in release.rglob("*") if p.is_dir()} <= {0o755}

    assert manifest["release_id"] == release.name
    created = datetime.fromisoformat(manifest["created_at"])
    assert created.tzinfo is not None
    assert manifest["code_version"].startswith(version("citykpi"))
    assert [c["id"] for c in manifest["cities"]] == ["demo-city"]
    city = manifest["cities"][0]
    assert city["config_sha256"] == sha256_bytes(Path(city["config"]))
    assert manifest["years"] == [2022, 2023, 2024]
    roles = {f["path"]: f["role"] for f in manifest["files"]}
    assert roles["kpi_values.parquet"] == "kpi_values_parquet" and roles["kpi_values.csv"] == "kpi_values_csv"
    assert all(roles.values())

    snapshots = manifest["input_snapshots"]
    assert {s["source_id"] for s in snapshots} == DEMO_SOURCES
    for snap in snapshots:
        # The content hash names the landing-zone folder and matches the payload's bytes.
        folder = home / "raw" / snap["city_id"] / snap["source_id"] / snap["content_sha256"]
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        payload = folder / meta["filename"]
        assert sha256_bytes(payload) == snap["content_sha256"]
        assert payload.stat().st_size == snap["size_bytes"]
        assert snap["snapshot_id"] == f"{snap['city_id']}/{snap['source_id']}/{snap['content_sha256'][:16]}"
        assert snap["rows_loaded"] > 0

    values = pl.read_parquet(release / "kpi_values.parquet")
    assert values.columns == RELEASE_COLUMNS
    counts = manifest["row_counts"]
    assert counts["kpi_values"] == values.height > 0
    assert sum(r["rows"] for r in counts["by_framework_and_status"]) == values.height
    expected = {(r["framework"], r["status"]): r["rows"] for r in counts["by_framework_and_status"]}
    actual = {(f, s): n for f, s, n in values.group_by("framework", "status").len().iter_rows()}
    assert actual == expected
    assert set(values["status"]) <= {"computed", "missing", "failed_check", "not_applicable"}
    assert values.filter(pl.col("status") == "computed").height > 0

    rows = list(csv.DictReader(io.StringIO((release / "kpi_values.csv").read_text(encoding="utf-8"))))
    assert len(rows) == values.height
    assert list(rows[0]) == RELEASE_COLUMNS

    # The warehouse's current kpi_values are what was released.
    assert_frame_equal(kpi_frame(home / "warehouse.duckdb"), values)


# ---- 2. reproducibility ---------------------------------------------------------------------


@pytest.mark.slow
def test_second_run_gives_identical_values_and_leaves_first_release_untouched(two_demo_runs: TwoRuns) -> None:
    first, second = two_demo_runs.first_release, two_demo_runs.second_release
    assert first != second
    assert [p.name for p in release_dirs(two_demo_runs.home)] == sorted([first.name, second.name])
    verify_all_releases(two_demo_runs.home)

    assert_frame_equal(pl.read_parquet(first / "kpi_values.parquet"), pl.read_parquet(second / "kpi_values.parquet"))
    # Byte-identical data files: the release frame holds run-independent columns in a stable order.
    for name in ("kpi_values.parquet", "kpi_values.csv"):
        assert sha256_bytes(first / name) == sha256_bytes(second / name), f"{name} differs between runs"
    m1 = json.loads((first / "manifest.json").read_text(encoding="utf-8"))
    m2 = json.loads((second / "manifest.json").read_text(encoding="utf-8"))
    assert m1["input_snapshots"] == m2["input_snapshots"]
    assert m1["row_counts"] == m2["row_counts"]
    assert m1["run_id"] != m2["run_id"]

    # The first release is byte-for-byte what it was before the second run.
    assert hash_tree(first) == two_demo_runs.first_release_hashes_before


@pytest.mark.slow
def test_second_run_makes_no_new_snapshots(two_demo_runs: TwoRuns) -> None:
    assert len(two_demo_runs.snapshots_after_first) == len(DEMO_SOURCES)
    assert two_demo_runs.snapshots_after_second == two_demo_runs.snapshots_after_first
    progress = [line for line in two_demo_runs.second.stderr.splitlines() if ": snapshot " in line]
    assert len(progress) == len(DEMO_SOURCES)
    assert all("(unchanged," in line for line in progress), progress


@pytest.mark.slow
def test_releases_command_lists_both_releases(two_demo_runs: TwoRuns) -> None:
    result = run_cli("releases", home=two_demo_runs.home)
    assert result.returncode == 0, result
    rows = result.stdout.splitlines()[1:]
    assert [row.split()[0] for row in rows] == [two_demo_runs.first_release.name, two_demo_runs.second_release.name]
    assert rows[-1].endswith("latest") and not rows[0].endswith("latest")
