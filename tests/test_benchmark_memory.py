"""The memory benchmark completes at a tiny size and writes its report (no memory or timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.memory import write_csv

ROOT = Path(__file__).resolve().parent.parent


def test_memory_benchmark_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", "--size-mb", "1", "--diagnose", "--out-dir", str(out),
         "--workdir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=1500, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "memory-1mb.json").read_text(encoding="utf-8"))
    assert {"size_mb", "date", "cap_mb", "machine", "shapes"} <= result.keys()
    assert [s["shape"] for s in result["shapes"]] == ["statistics", "readings"]
    for item in result["shapes"]:
        assert 0.9 <= item["file_mb"] <= 1.0 and item["rows"] > 0
        assert item["fetch"]["peak_rss_mb"] > 0 and not item["load"]["over_cap"]
        assert item["load"]["peak_rss_mb"] > 0
    statistics, readings = result["shapes"]
    # The rows really went through the loader: summed observations, and every reading stored.
    assert statistics["load"]["observations"] > 0 and statistics["read"]["rows_read"] == statistics["rows"]
    assert readings["load"]["readings"] == readings["rows"]
    assert (out / "memory-1mb.md").read_text(encoding="utf-8").startswith("# Memory benchmark: 1 MB CSV")
    assert not list(tmp_path.glob("citykpi-memory-*")), "the temporary homes are removed"


def test_generated_files_have_the_asked_size_and_whole_rows(tmp_path: Path) -> None:
    for shape in ("statistics", "readings"):
        path = tmp_path / f"{shape}.csv"
        rows = write_csv(path, shape, 0.3)
        data = path.read_bytes()
        assert 290_000 <= len(data) <= 300_000 and data.endswith(b"\n")
        lines = data.decode().splitlines()
        assert len(lines) == rows + 1 and len({line.count(",") for line in lines}) == 1
