"""`citykpi validate` is a dry run: every problem of a config in one pass, what each source feeds,
and nothing written to the home (issue #13)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli

CITY = """config_version: 1
city: {id: dry-town, name: Dry Town, country: DE, reporting_years: [2023]}
sources:
"""


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder / "city.yaml"


def test_every_key_problem_is_listed_at_once_with_suggestions(tmp_path: Path) -> None:
    config = _write(tmp_path / "city", {"stats.csv": "Year,Residents\n2023,100\n", "city.yaml": CITY + """
  - id: stats
    kind: file
    location: stats.csv
    target: observations
    observations: {year_feild: Year, variables: {Residents: {variable: population, unit: persons}}}
  - id: other
    kind: file
    location: missing.csv
    target: observations
    observations: {year_field: Year, variables: {X: {variable: population, unit: persons}}}
    csv: {delimter: ";"}
"""})
    result = run_cli("validate", config, home=tmp_path / "home")
    assert result.returncode == 2, result
    out = result.stdout + result.stderr
    assert "did you mean 'year_field'?" in out, result
    assert "did you mean 'delimiter'?" in out, result
    assert "3 problems" in out or "4 problems" in out, result
    assert not (tmp_path / "home" / "warehouse.duckdb").exists()


def test_every_source_is_read_and_each_bad_one_named_in_one_run(tmp_path: Path) -> None:
    config = _write(tmp_path / "city", {
        "good.csv": "Year,Residents,Households\n2023,1000,400\n",
        "bad_value.csv": "Year,Unemployed\n2023,12\n2023x,n/a\n",
        "bad_column.csv": "Jahr,Wert\n2023,5\n",
        "city.yaml": CITY + """
  - id: good
    kind: file
    location: good.csv
    target: observations
    observations: {year_field: Year, variables: {Residents: {variable: population, unit: persons},
                                                 Households: {variable: households_total, unit: households}}}
  - id: bad-value
    kind: file
    location: bad_value.csv
    target: observations
    observations: {year_field: Year, variables: {Unemployed: {variable: unemployed_persons, unit: persons}}}
  - id: bad-column
    kind: file
    location: bad_column.csv
    target: observations
    observations: {year_field: Year, variables: {Wert: {variable: labour_force, unit: persons}}}
"""})
    home = tmp_path / "home"
    result = run_cli("validate", config, home=home)
    assert result.returncode == 2, result
    out = result.stdout + result.stderr
    assert "2 problems" in out and result.stderr.count("citykpi: error: ") == 2, result
    assert "bad_value.csv, row 3" in out and "bad_column.csv" in out and "'Year' not found" in out, result
    assert "population: 1 values, 2023, by city" in out, result  # the good source still reports what it feeds
    assert "indicator rows" in out, result
    assert not (home / "warehouse.duckdb").exists() and not (home / "raw").exists()


def test_coverage_is_what_a_run_computes(tmp_path: Path) -> None:
    config = _write(tmp_path / "city", {
        "good.csv": "Year,Residents,Households,WithInternet\n2023,1000,400,300\n",
        "city.yaml": CITY + """
  - id: good
    kind: file
    location: good.csv
    target: observations
    observations: {year_field: Year, variables: {Residents: {variable: population, unit: persons},
                                                 Households: {variable: households_total, unit: households},
                                                 WithInternet: {variable: households_with_internet, unit: households}}}
"""})
    result = run_cli("coverage", config, "--status", "computed", home=tmp_path / "home")
    assert result.returncode == 0, result
    assert "EC:ICT:ICT:1C" in result.stdout and "2023" in result.stdout, result
    missing = run_cli("coverage", config, "--status", "missing", home=tmp_path / "home")
    assert "missing input(s)" in missing.stdout, missing


def test_yaml_booleans_are_explained(tmp_path: Path) -> None:
    config = _write(tmp_path / "city", {"s.csv": "Year,R\n2023,1\n", "city.yaml": CITY.replace("DE", "NO") + """
  - {id: s, kind: file, location: s.csv, target: observations,
     observations: {year_field: Year, variables: {R: {variable: population, unit: persons}}}}
"""})
    result = run_cli("validate", config, "--config-only", home=tmp_path / "home")
    assert result.returncode == 2 and "city.country: YAML read this value as false; quote it" in result.stderr, result
