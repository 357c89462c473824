"""Adding a KPI is one catalogue entry (issue #17): in a copy of the repository, one new entry in
kpis/indicators/u4ssc.yaml over variables the demo already provides is computed by `citykpi run`,
documented by `python -m kpis.docs` and published in the release (values, data package), with no
other file touched.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT, RUN_TIMEOUT

pytestmark = pytest.mark.slow

NEW_ID = "EN:EN:PSN:9A"
ENTRY = f"""
- id: '{NEW_ID}'
  name: Green share of the city area (a throwaway test entry)
  dimension: Environment
  subdimension: Environment
  category: Public Space and Nature
  type: advanced
  unit: '%'
  definition: Green area as a share of the city's area
  formula_text: 'Numerator: green area (ha); Denominator: city area (ha); x 100'
  sdg_targets: ['11.7']
  source: 'inferred: a test entry, not a U4SSC KPI'
  confidence: inferred
  direction: higher_is_better
  compute:
    kind: ratio
    formula_version: '1'
    numerator: green_area_ha
    denominator: area_ha
    scale: 100
    note: 'Test entry: the method is a plain share of two areas.'
  examples:
    - description: '150 ha of green in 1,000 ha: 100 * 150 / 1000'
      inputs: {{green_area_ha: 150, area_ha: 1000}}
      expected: 15.0
"""

SKIP = shutil.ignore_patterns(".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
                              ".import_linter_cache", "*.egg-info", ".venv", "venv")


def test_one_catalogue_entry_is_computed_documented_and_published(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(REPO_ROOT, copy, ignore=SKIP)
    catalogue = copy / "kpis" / "indicators" / "u4ssc.yaml"
    catalogue.write_text(catalogue.read_text(encoding="utf-8").rstrip("\n") + "\n" + ENTRY, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONUNBUFFERED="1")
    env.pop("CITYKPI_CITIES", None)

    def python(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *args], cwd=copy, env=env, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT)  # hang guard only

    docs = python("-m", "kpis.docs")
    assert docs.returncode == 0, docs.stderr
    assert NEW_ID in (copy / "docs" / "indicators.md").read_text(encoding="utf-8")

    home = tmp_path / "home"
    run = python("-m", "pipelines.cli", "--home", str(home), "run")
    assert run.returncode == 0, run.stderr[-3000:]
    release = home / "releases" / "latest"
    with (release / "kpi_values.csv").open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["indicator_id"] == NEW_ID]
    assert len(rows) == 3 and {r["status"] for r in rows} == {"computed"}, rows  # one per reporting year
    for row in rows:
        assert float(row["value"]) == pytest.approx(100 * float(row["numerator"]) / float(row["denominator"]))
        assert row["formula_version"] == "1" and "green_area_ha" in row["inputs"]
    package = (release / "datapackage.json").read_text(encoding="utf-8")
    assert NEW_ID in package and json.loads(package)
    # The original catalogue is untouched: the entry lived only in the copy.
    assert NEW_ID not in (REPO_ROOT / "kpis" / "indicators" / "u4ssc.yaml").read_text(encoding="utf-8")
