"""Acceptance: the `citykpi` command line as a user meets it (real subprocesses, tmp homes).

Fast `--help` without heavy imports, `validate`, clear one-line errors for bad configs and bad
data (traceback only with --debug) that leave the previous release and warehouse untouched,
`--offline`, and the writer lock.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl
import pytest
from conftest import (
    REPO_ROOT,
    RUN_TIMEOUT,
    CliResult,
    CompletedHome,
    hash_tree,
    kpi_frame,
    release_dirs,
    release_path_from_stdout,
    run_cli,
    snapshot_dirs,
    subprocess_env,
    verify_all_releases,
)
from polars.testing import assert_frame_equal

from pipelines.cli import main
from warehouse.db import writer_lock

HEAVY_MODULES = ("great_expectations", "dagster", "duckdb", "polars")


def error_lines(result: CliResult) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("citykpi: error:")]


def assert_one_clear_error(result: CliResult, *fragments: str) -> str:
    """Exit code 2, exactly one error line holding every fragment, no traceback, no summary."""
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result
    lines = error_lines(result)
    assert len(lines) == 1, result
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert "Release " not in result.stdout
    return lines[0]


# ---- 5. --help is instant and imports nothing heavy ------------------------------------------


def test_help_answers_quickly() -> None:
    result = run_cli("--help")
    assert result.returncode == 0, result
    assert "usage: citykpi" in result.stdout
    for command in ("run", "validate", "schema", "sources", "variables", "indicators", "releases", "demo"):
        assert command in result.stdout
    print(f"\ncitykpi --help wall time: {result.seconds:.3f} s")
    assert result.seconds < 1.5, f"citykpi --help took {result.seconds:.2f} s"
    sub = run_cli("run", "--help")
    assert sub.returncode == 0 and "--offline" in sub.stdout and "--scale" in sub.stdout, sub
    assert sub.seconds < 1.5, f"citykpi run --help took {sub.seconds:.2f} s"


def test_importing_the_cli_and_printing_help_loads_no_heavy_library() -> None:
    code = f"""
import contextlib, io, json, sys
import pipelines.cli
after_import = sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)
with contextlib.redirect_stdout(io.StringIO()):
    try:
        pipelines.cli.main(["--help"])
    except SystemExit:
        pass
    pipelines.cli.main([])
after_help = sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)
print(json.dumps([after_import, after_help]))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=RUN_TIMEOUT,
                          env=subprocess_env(), cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    after_import, after_help = json.loads(proc.stdout.strip().splitlines()[-1])
    assert after_import == [], f"import pipelines.cli loaded {after_import}"
    assert after_help == [], f"citykpi --help loaded {after_help}"


# ---- 6. validate ------------------------------------------------------------------------------


def test_validate_accepts_the_demo_config(demo_config: Path) -> None:
    result = run_cli("validate", demo_config)
    assert result.returncode == 0, result
    lines = result.stdout.strip().splitlines()
    assert lines[0] == f"{demo_config}: OK (city demo-city, 9 sources)"
    # The dry run says what each source feeds and how many indicator rows a run computes.
    assert "  luftmessungen (file -> readings):" in lines and "PROBLEM" not in result.stdout, result
    assert any(line.startswith("  indicator rows") and "computed" in line for line in lines), result
    assert result.stderr == ""


def _validate_problems(result: CliResult, *fragments: str) -> None:
    """Exit code 2, no traceback, each problem one error line on stderr, each fragment in one of them."""
    assert result.returncode == 2, result
    assert "Traceback" not in result.stdout + result.stderr, result
    problems = error_lines(result)
    assert problems, result
    assert any(all(f in line for f in fragments) for line in problems), result


def test_validate_rejects_a_bad_config_with_exit_2(city_copy: Path) -> None:
    text = city_copy.read_text(encoding="utf-8")
    city_copy.write_text(text.replace("config_version: 1\n", "config_version: 1\ncolour: blue\n"), encoding="utf-8")
    result = run_cli("validate", city_copy)
    _validate_problems(result, str(city_copy), "colour", "unknown key")


def test_validate_rejects_a_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    result = run_cli("validate", missing)
    _validate_problems(result, str(missing), "config file not found")


# ---- 4. bad configs and bad data: one clear message, nothing changed ---------------------------


def _unknown_key(config: Path) -> tuple[str, ...]:
    text = config.read_text(encoding="utf-8")
    text = text.replace("    license: CC0-1.0\n", "    license: CC0-1.0\n    licence_url: https://example.org\n", 1)
    config.write_text(text, encoding="utf-8")
    return str(config), "sources[0]", "licence_url", "unknown key"


def _missing_file(config: Path) -> tuple[str, ...]:
    (config.parent / "versorgung.csv").unlink()
    return str(config), "sources[1].location", str(config.parent / "versorgung.csv")


def _non_numeric_statistik(config: Path) -> tuple[str, ...]:
    """'abc' in the Wert cell of one row of the Latin-1, ';'-separated statistics file."""
    path = config.parent / "statistik_stadt.csv"
    lines = path.read_bytes().decode("latin-1").split("\n")
    index = next(i for i, line in enumerate(lines) if line.startswith("2023;Erwerbspersonen;"))
    cells = lines[index].split(";")
    cells[2] = "abc"
    lines[index] = ";".join(cells)
    path.write_bytes("\n".join(lines).encode("latin-1"))
    return "statistik_stadt.csv", f"row {index + 1}", "field 'Wert'", "'abc'", "statistik-stadt"


def _non_numeric_versorgung(config: Path) -> tuple[str, ...]:
    """'n/v' in the abfall_gesamt_t column of the UTF-8 (BOM), ','-separated utilities file."""
    path = config.parent / "versorgung.csv"
    lines = path.read_text(encoding="utf-8-sig").split("\n")
    header = lines[0].split(",")
    column = header.index("abfall_gesamt_t")
    index = next(i for i, line in enumerate(lines) if line.startswith("2024,"))
    cells = lines[index].split(",")
    cells[column] = "n/v"
    lines[index] = ",".join(cells)
    path.write_text("\n".join(lines), encoding="utf-8-sig")
    return "versorgung.csv", f"row {index + 1}", "field 'abfall_gesamt_t'", "'n/v'", "versorgung"


CORRUPTIONS: dict[str, Callable[[Path], tuple[str, ...]]] = {
    "unknown_key": _unknown_key,
    "missing_file": _missing_file,
    "non_numeric_statistik": _non_numeric_statistik,
    "non_numeric_versorgung": _non_numeric_versorgung,
}


def _warehouse_state(home: Path) -> tuple[pl.DataFrame, int, list[tuple[object, ...]]]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        observations = con.execute("SELECT count(*) FROM observations").fetchone()[0]  # type: ignore[index]
        state = con.execute("SELECT city_id, source_id, snapshot_id FROM core_source_state ORDER BY ALL").fetchall()
    finally:
        con.close()
    return kpi_frame(home / "warehouse.duckdb"), int(observations), state  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_bad_config_or_data_fails_with_one_clear_message_and_changes_nothing(
        corruption: str, city_copy: Path, home_copy: Path) -> None:
    fragments = CORRUPTIONS[corruption](city_copy)
    releases_before = {p.name: hash_tree(p) for p in release_dirs(home_copy)}
    kpis_before, observations_before, state_before = _warehouse_state(home_copy)

    result = run_cli("run", city_copy, home=home_copy)
    assert_one_clear_error(result, *fragments)

    assert {p.name: hash_tree(p) for p in release_dirs(home_copy)} == releases_before
    verify_all_releases(home_copy)
    kpis_after, observations_after, state_after = _warehouse_state(home_copy)
    assert_frame_equal(kpis_after, kpis_before)
    assert observations_after == observations_before
    assert state_after == state_before


@pytest.mark.slow
@pytest.mark.parametrize("corruption", ["unknown_key", "non_numeric_statistik"])
def test_debug_shows_the_traceback(corruption: str, city_copy: Path, tmp_path: Path) -> None:
    fragments = CORRUPTIONS[corruption](city_copy)
    result = run_cli("--debug", "run", city_copy, home=tmp_path / "home")
    assert result.returncode != 0, result
    assert "Traceback" in result.stderr, result
    last = result.stderr.strip().splitlines()[-1]
    for fragment in fragments:
        assert fragment in last, f"{fragment!r} not in {last!r}"


@pytest.mark.slow
def test_an_empty_config_folder_is_an_error_not_an_empty_release(tmp_path: Path) -> None:
    folder = tmp_path / "no-configs"
    folder.mkdir()
    home = tmp_path / "home"
    result = run_cli("run", folder, home=home)
    assert_one_clear_error(result, str(folder), "no city config files")
    assert release_dirs(home) == []


@pytest.mark.slow
def test_two_configs_for_one_city_are_rejected(city_copy: Path, tmp_path: Path) -> None:
    twin = city_copy.with_name("twin.yaml")
    shutil.copyfile(city_copy, twin)
    result = run_cli("validate", city_copy.parent, home=tmp_path / "home")
    _validate_problems(result, "'demo-city' is already configured in", str(city_copy), str(twin))
    result = run_cli("run", city_copy.parent, home=tmp_path / "home")
    assert_one_clear_error(result, "'demo-city' is already configured in", str(city_copy), str(twin))
    assert release_dirs(tmp_path / "home") == []


@pytest.mark.parametrize("scale", ["0", "-1", "abc", "nan", "inf"])
def test_a_bad_scale_is_a_usage_error(scale: str, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("run", "demo"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--scale", scale])
        assert exit_info.value.code == 2
        assert "argument --scale" in capsys.readouterr().err


# ---- 7. --offline -----------------------------------------------------------------------------


@pytest.mark.slow
def test_offline_after_a_normal_run_reuses_the_snapshots(completed_home: CompletedHome, home_copy: Path) -> None:
    snapshots_before = snapshot_dirs(home_copy)
    result = run_cli("run", "--offline", completed_home.config, home=home_copy)
    assert result.returncode == 0, result
    assert snapshot_dirs(home_copy) == snapshots_before
    release = release_path_from_stdout(result.stdout)
    # Same snapshots, code and config: the run says so and keeps the release it already has.
    assert f"Nothing changed since release {completed_home.release.name}" in result.stdout, result
    assert [p.name for p in release_dirs(home_copy)] == [completed_home.release.name] == [release.name]
    verify_all_releases(home_copy)
    assert_frame_equal(pl.read_parquet(release / "kpi_values.parquet"),
                       pl.read_parquet(home_copy / "releases" / completed_home.release.name / "kpi_values.parquet"))


@pytest.mark.slow
def test_offline_works_when_the_source_files_are_gone(completed_home: CompletedHome, city_copy: Path,
                                                        home_copy: Path) -> None:
    """--offline touches no source: it works even when the source files are gone."""
    for path in city_copy.parent.iterdir():
        if path.name != "city.yaml":
            path.unlink()
    snapshots_before = snapshot_dirs(home_copy)
    result = run_cli("run", "--offline", city_copy, home=home_copy)
    assert result.returncode == 0, result
    assert snapshot_dirs(home_copy) == snapshots_before
    assert_frame_equal(pl.read_parquet(release_path_from_stdout(result.stdout) / "kpi_values.parquet"),
                       pl.read_parquet(home_copy / "releases" / completed_home.release.name / "kpi_values.parquet"))


@pytest.mark.slow
@pytest.mark.parametrize("with_config", [True, False], ids=["config", "demo"])
def test_offline_on_an_empty_home_fails_clearly(with_config: bool, demo_config: Path, tmp_path: Path) -> None:
    home = tmp_path / "empty-home"
    args = ["run", "--offline", *([str(demo_config)] if with_config else ["--scale", "0.1"])]
    result = run_cli(*args, home=home)
    assert_one_clear_error(result, "has no snapshot yet", "without --offline")
    assert release_dirs(home) == []
    assert snapshot_dirs(home) == set()


# ---- the writer lock ----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_second_writer_is_refused_with_a_clear_message(demo_config: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    with writer_lock(home):
        result = run_cli("run", demo_config, home=home)
    assert_one_clear_error(result, "another citykpi run is writing to", str(home))
    assert release_dirs(home) == []


# ---- the small commands, in-process ---------------------------------------------------------------


def test_listing_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "city" in json.dumps(schema)
    assert main(["schema", "--output", str(tmp_path / "schema.json")]) == 0
    assert json.loads((tmp_path / "schema.json").read_text(encoding="utf-8")) == schema

    assert main(["sources"]) == 0
    out = capsys.readouterr().out
    assert "file" in out and "Formats:" in out and "Targets:" in out

    assert main(["variables"]) == 0
    assert "population" in capsys.readouterr().out

    assert main(["indicators", "--framework", "sdg11"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.strip() for line in lines)

    assert main(["--home", str(tmp_path / "no-home"), "releases"]) == 0
    assert capsys.readouterr().out == ""


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "usage: citykpi" in capsys.readouterr().out


def test_demo_command_writes_into_a_given_folder(tmp_path: Path) -> None:
    result = run_cli("demo", "--scale", "0.1", "--out", tmp_path / "demo")
    assert result.returncode == 0, result
    config = Path(result.stdout.strip())
    assert config == tmp_path / "demo" / "city.yaml" and config.is_file()
    check = run_cli("validate", config)
    assert check.returncode == 0, check


# ---- an unchanged run writes no release; --force and a changed input do ------------------------


@pytest.mark.slow
def test_an_unchanged_run_writes_no_new_release(completed_home: CompletedHome, home_copy: Path) -> None:
    result = run_cli("run", completed_home.config, home=home_copy)
    assert result.returncode == 0, result
    assert f"Nothing changed since release {completed_home.release.name}" in result.stdout, result
    assert "kept: nothing changed since it" in result.stderr, result
    assert [p.name for p in release_dirs(home_copy)] == [completed_home.release.name]
    assert release_path_from_stdout(result.stdout).name == completed_home.release.name
    assert not list((home_copy / "tmp").glob("release-*")), "the unused staging folder was left behind"

    forced = run_cli("run", "--force", completed_home.config, home=home_copy)
    assert forced.returncode == 0, forced
    assert "Nothing changed" not in forced.stdout, forced
    names = [p.name for p in release_dirs(home_copy)]
    assert len(names) == 2 and release_path_from_stdout(forced.stdout).name == names[-1]
    verify_all_releases(home_copy)


@pytest.mark.slow
def test_a_changed_input_writes_a_new_release(completed_home: CompletedHome, city_copy: Path,
                                              home_copy: Path) -> None:
    """The same config in another folder is the same input; a changed data value is not."""
    same = run_cli("run", city_copy, home=home_copy)
    assert same.returncode == 0, same
    assert "Nothing changed since release" in same.stdout and len(release_dirs(home_copy)) == 1, same
    path = city_copy.parent / "versorgung.csv"
    lines = path.read_text(encoding="utf-8-sig").split("\n")
    column = lines[0].split(",").index("abfall_gesamt_t")
    index = next(i for i, line in enumerate(lines) if line.startswith("2024,"))
    cells = lines[index].split(",")
    cells[column] = str(float(cells[column]) * 1.5)
    lines[index] = ",".join(cells)
    path.write_text("\n".join(lines), encoding="utf-8-sig")

    changed = run_cli("run", city_copy, home=home_copy)
    assert changed.returncode == 0, changed
    assert "Nothing changed" not in changed.stdout, changed
    releases = release_dirs(home_copy)
    assert len(releases) == 2 and release_path_from_stdout(changed.stdout).name == releases[-1].name
    manifests = verify_all_releases(home_copy)
    assert manifests[0]["inputs_fingerprint"] != manifests[1]["inputs_fingerprint"]


@pytest.mark.slow
def test_the_summary_names_warned_checks_and_explains_exclusions(completed_home: CompletedHome) -> None:
    out = completed_home.result.stdout
    manifest = json.loads((completed_home.release / "manifest.json").read_text(encoding="utf-8"))
    quality = manifest["quality"]
    assert f"Quality checks: {quality['passed']} passed, {quality['warned']} warned" in out, out
    warned = [line for line in out.splitlines() if line.startswith("  warned ")]
    assert len(warned) == quality["warned"] >= 1, out
    # In words: the check's description, not its id, and how many rows fail.
    assert any("every reporting year present" in line and "failing" in line for line in warned), warned
    assert not any("time_series_complete" in line for line in warned), warned
    scores = next(line for line in out.splitlines() if line.startswith("Scores "))
    excluded = manifest["row_counts"]["kpi_scores"] - int(scores.split("scored ")[1].split(",")[0])
    assert f"excluded {excluded}: " in scores, scores
    assert "data points have no target (see `citykpi targets CONFIG`" in scores, scores
    groups = [int(part.split(" data point")[0]) for part in scores.split(f"excluded {excluded}: ")[1].split("; ")]
    assert sum(groups) == excluded, scores
