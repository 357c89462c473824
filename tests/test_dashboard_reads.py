"""Dashboards read while the pipeline writes: a reader process queries `releases/latest` in a tight
loop while `citykpi run` writes a new release in another process.

The warehouse is locked by the writer for the whole run (DuckDB: one writing process, no
readers), so dashboards read the per-release snapshot instead (docs/sql-interface.md). The test
requires zero errors, that every read saw a complete release (its manifest and every listed file
present with the listed size), and that readers moved from the old to the new release exactly
once, after it was complete, and never back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (
    REPO_ROOT,
    RUN_TIMEOUT,
    CompletedHome,
    citykpi_command,
    release_path_from_stdout,
    subprocess_env,
)

READER = r"""
import json, sys, time
from pathlib import Path
import duckdb

releases, stop, ready = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
deadline = time.monotonic() + float(sys.argv[4])  # only against a hang: the stop file ends the loop
log, errors, after_stop = [], [], 0
while time.monotonic() < deadline and after_stop < 20:
    if stop.exists():
        after_stop += 1  # a few more reads once the writer is done: the new release must be what they see
    try:
        con = duckdb.connect(str(releases / "latest" / "citykpi.duckdb"), read_only=True)
        try:
            release_id, kpi_rows = con.execute("SELECT release_id, kpi_rows FROM release").fetchone()
            rows = con.execute("SELECT count(*) FROM kpi_values").fetchone()[0]
            report = con.execute("SELECT count(*) FROM kpi_report WHERE status = 'computed'").fetchone()[0]
        finally:
            con.close()
        # Plain Parquet through the same pointer (what Evidence or a notebook would read).
        parquet = duckdb.sql(f"SELECT count(*) FROM read_parquet('{releases / 'latest' / 'kpi_values.parquet'}')"
                             ).fetchall()[0][0]
        folder = releases / release_id
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        complete = all((folder / f["path"]).stat().st_size == f["bytes"] for f in manifest["files"])
        log.append([time.monotonic(), release_id, rows == kpi_rows == parquet and report > 0, complete])
        ready.touch()  # the first read is done: the writer may start
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    time.sleep(0.005)  # a dashboard's pace, and leave the writer a core
print(json.dumps({"log": log, "errors": errors}))
"""


@pytest.mark.slow
def test_readers_never_fail_and_switch_only_to_complete_releases(completed_home: CompletedHome,
                                                                  home_copy: Path, tmp_path: Path) -> None:
    releases = home_copy / "releases"
    old_id = (releases / "latest").resolve().name
    stop, ready = tmp_path / "writer-done", tmp_path / "reader-ready"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(releases), str(stop), str(ready),
                               str(3 * RUN_TIMEOUT)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(home_copy))
    try:
        # The writer starts once the reader has read the old release (a condition, not a sleep); the
        # limit only bounds a reader that died or hangs.
        hang_limit = time.monotonic() + RUN_TIMEOUT
        while not ready.exists() and reader.poll() is None and time.monotonic() < hang_limit:
            time.sleep(0.01)
        assert ready.exists(), f"the reader never completed a read: {reader.poll()=}"
        started = time.monotonic()
        writer = subprocess.run([*citykpi_command(), "--home", str(home_copy), "run", "--force",
                                 str(completed_home.config)],
                                capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=REPO_ROOT,
                                env=subprocess_env(home_copy))
        finished = time.monotonic()
        stop.touch()
        out, err = reader.communicate(timeout=RUN_TIMEOUT)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert writer.returncode == 0, writer.stderr
    new_id = release_path_from_stdout(writer.stdout).name
    assert reader.returncode == 0, err
    result = json.loads(out)
    log = result["log"]

    assert result["errors"] == []
    during = [entry for entry in log if started <= entry[0] <= finished]
    print(f"\n{len(log)} reads, {len(during)} while `citykpi run` wrote ({finished - started:.1f} s), "
          f"switch {old_id} -> {new_id}")
    assert len(during) >= 20, "the reader hardly read while the writer ran"
    assert all(consistent and complete for _, _, consistent, complete in log)
    seen = [release_id for _, release_id, _, _ in log]
    assert seen[0] == old_id and seen[-1] == new_id
    switch = seen.index(new_id)
    assert set(seen[:switch]) == {old_id} and set(seen[switch:]) == {new_id}, "readers went back or saw a third id"
