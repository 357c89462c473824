"""The hostile corpus: inputs generated at test time, each run through the real `citykpi` command
against one shared baseline home (the small demo city after one run, copied once per module).

Every rejected input must give exit status 2 (never 1, an internal error), exactly one
`citykpi: error:` line and no traceback, write nothing outside the home, and leave the earlier
releases and the warehouse file byte-identical (`Baseline.assert_unchanged`); a refused `run`
is recorded in `<home>/logs/refused-runs.jsonl` instead of the warehouse's `runs` table. Only an
input that was loaded and then refused by a blocking quality check (`--strict`, `checked_city`)
changes the warehouse: its own rows, its run and its check results.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from conftest import REPO_ROOT, RUN_TIMEOUT, CliResult, CompletedHome, hash_tree, run_cli

BASELINE_CITY = "demo-city"
# Tables holding a city's rows; `runs` and `quality_results` record attempts and may grow.
CITY_TABLES = ("observations", "core_areas", "core_points", "core_readings", "core_readings_groups",
               "core_transit_stops", "core_source_state", "kpi_values", "kpi_scores", "kpi_rollups", "kpi_progress")


def city_digest(warehouse: Path, city_id: str) -> dict[str, str]:
    """Per table, the count and a hash of the city's rows."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        out = {}
        for table in CITY_TABLES:
            # An order-independent sum of row hashes: any changed, added or removed row shows.
            row = con.execute(f'SELECT count(*), sum(hash(t)) FROM "{table}" t WHERE city_id = ?', [city_id]).fetchone()
            out[table] = repr(row)
        return out
    finally:
        con.close()


# A run refused by a blocking quality check (the input was loaded) records its attempt: its `runs` row and
# the quality results it reached.
ATTEMPT_TABLES = ("runs", "quality_results")
REFUSED_RUNS = Path("logs") / "refused-runs.jsonl"


def refused_runs(home: Path) -> list[str]:
    path = home / REFUSED_RUNS
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def warehouse_digest(warehouse: Path, without_city: str | None = None) -> dict[str, str]:
    """Per table of the warehouse (every one but ATTEMPT_TABLES), the count and a hash of all its rows
    (with `without_city`: of the rows of every other city)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                            "'main' AND table_type = 'BASE TABLE' ORDER BY 1").fetchall()]
        keyed = {r[0] for r in con.execute("SELECT table_name FROM information_schema.columns "
                                           "WHERE column_name = 'city_id'").fetchall()}
        out = {}
        for table in tables:
            if table in ATTEMPT_TABLES:
                continue
            where = "WHERE city_id IS DISTINCT FROM ?" if without_city is not None and table in keyed else ""
            params = [without_city] if where else []
            out[table] = repr(con.execute(f'SELECT count(*), sum(hash(t)) FROM "{table}" t {where}', params).fetchone())
        return out
    finally:
        con.close()


@dataclass
class Baseline:
    home: Path
    root: Path                      # the folder holding the home and every hostile city: nothing else may appear
    releases: dict[str, str] = field(default_factory=dict)
    warehouse_sha: str = ""
    rows: dict[str, str] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)
    tables_without: dict[str, dict[str, str]] = field(default_factory=dict)  # city -> the digest without it
    cities: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)  # lines of the refused-runs log

    def snapshot(self) -> None:
        self.refused = refused_runs(self.home)
        self.releases = hash_tree(self.home / "releases")
        self.warehouse_sha = hashlib.sha256((self.home / "warehouse.duckdb").read_bytes()).hexdigest()
        self.rows = city_digest(self.home / "warehouse.duckdb", BASELINE_CITY)
        self.tables = warehouse_digest(self.home / "warehouse.duckdb")
        self.tables_without = {city: warehouse_digest(self.home / "warehouse.duckdb", city) for city in self.cities}

    def city(self, name: str, sources: list[dict[str, Any]], **top: Any) -> Path:
        """A hostile city config in its own folder beside the home; returns the YAML path."""
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        self.cities.add(name)
        config = {"city": {"id": name, "name": name.title(), "country": "DE", "reporting_years": [2023, 2024]},
                  **top, "sources": sources}
        path = folder / "city.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
        return path

    def run(self, *args: str | Path, env: dict[str, str] | None = None, timeout: float = RUN_TIMEOUT) -> CliResult:
        return run_cli(*args, home=self.home, env=env, timeout=timeout)

    def assert_rejected(self, result: CliResult, match: str, *, config_stage: bool = False,
                        checked_city: str | None = None) -> str:
        """Exit 2, one error line matching `match`, no traceback, earlier state intact; returns the line.

        `checked_city`: the input was loaded and a blocking quality check refused it (`--strict`): that
        city's own rows hold the new data, marked with the failed check; no other row may change."""
        import re

        assert result.returncode == 2, result
        assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result
        errors = [line for line in result.stderr.splitlines() if line.startswith("citykpi: ")
                  and ("error" in line.split(":", 2)[1])]
        # `run` stops at its one error; `validate` lists every problem of a config (at most 20 and a
        # count of the rest), so a broken YAML may give several lines, each short, one of them matching.
        assert 1 <= len(errors) <= 21 if "validate" in result.args else len(errors) == 1, result
        hits = [line for line in errors if re.search(match, line)]
        assert hits, (match, errors)
        assert all(len(line) < 1500 for line in errors), errors
        self.assert_unchanged(byte_identical=checked_city is None, checked_city=checked_city)
        if checked_city is None and not config_stage and "run" in result.args:
            # The refused attempt is not lost: one more line in the home's refused-runs log, with its error.
            new = refused_runs(self.home)[len(self.refused):]
            assert len(new) == 1, new
            entry = json.loads(new[0])
            assert entry["status"] == "failed" and entry["run_id"] and entry["error"], entry
        return hits[0]

    def assert_unchanged(self, *, byte_identical: bool = False, checked_city: str | None = None) -> None:
        assert hash_tree(self.home / "releases") == self.releases
        if byte_identical:
            # A rejected input leaves the warehouse file as it was, byte for byte (issue #14).
            assert hashlib.sha256((self.home / "warehouse.duckdb").read_bytes()).hexdigest() == self.warehouse_sha
        assert city_digest(self.home / "warehouse.duckdb", BASELINE_CITY) == self.rows
        # Every table but the attempt's own records holds exactly the rows it held: nothing of the refused
        # input and nothing of any other city was written (with `checked_city`, the input was loaded and a
        # blocking check refused it: only that city's rows, its run and its check results differ).
        tables = warehouse_digest(self.home / "warehouse.duckdb", checked_city)
        before = self.tables if checked_city is None else self.tables_without[checked_city]
        changed = sorted(name for name in tables.keys() | before.keys() if tables.get(name) != before.get(name))
        assert not changed, changed
        assert not list((self.home / "raw").glob("*/*/.*")), "staging folder left behind"
        assert not any((self.home / "tmp").iterdir()) if (self.home / "tmp").exists() else True


@pytest.fixture(scope="module")
def baseline(completed_home: CompletedHome, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Baseline]:
    root = tmp_path_factory.mktemp("hostile")
    home = root / "home"
    shutil.copytree(completed_home.home, home, symlinks=True)
    base = Baseline(home, root)
    base.snapshot()
    yield base


@pytest.fixture
def guard(baseline: Baseline) -> Iterator[Baseline]:
    """The baseline, re-snapshotted before each test; afterwards nothing new beside the home and the
    cities' folders, and nothing new in the repository the command ran in."""
    baseline.snapshot()
    repo_before = {p.name for p in REPO_ROOT.iterdir()}
    yield baseline
    assert {p.name for p in baseline.root.iterdir()} <= {"home", *baseline.cities}
    assert {p.name for p in REPO_ROOT.iterdir()} <= repo_before
