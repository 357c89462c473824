"""The README's examples are real: `cities/my-city.yaml` validates and runs end to end from the files it
ships (no network), and every config path the README's commands name exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
from conftest import REPO_ROOT, release_path_from_stdout, run_cli, verify_release

EXAMPLE = REPO_ROOT / "cities" / "my-city.yaml"


def test_the_readme_names_only_configs_that_exist() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"citykpi [a-z]+ (?:--\S+ )*((?:cities|sources)/\S+\.yaml)", readme))
    assert "cities/my-city.yaml" in named, named
    for path in named:
        assert (REPO_ROOT / path).is_file(), f"the README names {path}, which does not exist"


def test_the_example_city_validates(tmp_path: Path) -> None:
    result = run_cli("validate", EXAMPLE, home=tmp_path / "home")
    assert result.returncode == 0, result
    first = result.stdout.splitlines()[0]
    assert first == f"{EXAMPLE}: OK (city my-city, 6 sources)", result
    assert "PROBLEM" not in result.stdout and result.stderr == "", result


def test_the_demo_template_validates_once_rendered_beside_its_data(tmp_path: Path) -> None:
    """sources/demo/city.yaml is the generator's template (its locations are relative to the data it is
    written beside): rendered by `citykpi demo --out`, it is a valid, fully commented config."""
    made = run_cli("demo", "--scale", "0.01", "--out", tmp_path / "demo", home=tmp_path / "home")
    assert made.returncode == 0, made
    config = Path(made.stdout.strip())
    assert (REPO_ROOT / "sources" / "demo" / "city.yaml").read_text(encoding="utf-8").count("{{") > 0
    assert "{{" not in config.read_text(encoding="utf-8")
    result = run_cli("validate", config, home=tmp_path / "home")
    assert result.returncode == 0, result


@pytest.mark.slow
def test_the_example_city_runs_end_to_end(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run_cli("run", EXAMPLE, home=home)
    assert result.returncode == 0, result
    release = release_path_from_stdout(result.stdout)
    manifest = verify_release(release)
    assert [c["id"] for c in manifest["cities"]] == ["my-city"]
    assert {s["source_id"] for s in manifest["input_snapshots"]} == {
        "statistik-stadt", "versorgung", "bevoelkerung-bezirke", "bezirke", "gruenflaechen", "luftmessstationen"}
    values = pl.read_parquet(release / "kpi_values.parquet")
    assert values.filter(pl.col("status") == "computed").height > 300
    # No timetable and no readings ship with the example: those indicators name what is missing.
    missing = values.filter(pl.col("status") == "missing")
    assert missing.height > 0
    assert all(reason for reason in missing["status_reason"].to_list()), missing
    assert json.loads((release / "manifest.json").read_text(encoding="utf-8"))["release_id"] == release.name
