"""The benchmark runner completes at a tiny scale and writes its report (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_benchmark_runner_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "results"
    # Orchestration (Dagster vs plain, two more full runs) is skipped to keep the test short.
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--scale", "0.05", "--repeats", "1", "--no-orchestration",
         "--out-dir", str(out), "--workdir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=1500, check=False)  # hang guard only
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "sf0.05.json").read_text(encoding="utf-8"))
    assert {"scale", "date", "machine", "stages", "ratios", "baselines", "checked_equal"} <= result.keys()
    assert result["scale"] == 0.05
    assert {"cpu_count", "cpu_model", "memory_gb", "python", "duckdb", "polars"} <= result["machine"].keys()
    assert {"fetch", "load", "derive", "check_core", "compute", "check_kpis", "publish"} <= result["stages"].keys()
    for stage in result["stages"].values():
        assert {"wall_s", "peak_rss_mb", "rows_per_s"} <= stage.keys()
        assert stage["wall_s"] >= 0 and stage["peak_rss_mb"] > 0
    assert {"kpi_vs_limit", "pandas_vs_kpi", "quality_vs_kpi", "incremental_vs_full",
            "orchestration_overhead"} <= result["ratios"].keys()
    assert result["ratios"]["orchestration_overhead"] is None  # skipped, and said so
    assert all(n > 0 for n in result["checked_equal"].values())  # the baselines' numbers were compared
    assert (out / "sf0.05.md").read_text(encoding="utf-8").startswith("# Benchmark SF0.05")
    assert not list(tmp_path.glob("citykpi-bench-*")), "the temporary home is removed"
