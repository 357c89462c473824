"""Acceptance: crash safety of `citykpi run` in real subprocesses, on real DuckDB files in tmp homes:
a run killed with SIGKILL at any point leaves an openable warehouse with the previous indicator
values and no partial release. (Split from test_end_to_end.py, every assertion kept, so that xdist can
run the two modules on different workers.)
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest
from conftest import (
    REPO_ROOT,
    RUN_TIMEOUT,
    CompletedHome,
    citykpi_command,
    hash_tree,
    kpi_frame,
    release_dirs,
    release_path_from_stdout,
    run_cli,
    subprocess_env,
    verify_all_releases,
)
from polars.testing import assert_frame_equal

from warehouse.db import writer_lock


def _check_state_after_kill(home: Path, expected_values: pl.DataFrame, kept: dict[str, dict[str, str]],
                            observations: int) -> None:
    warehouse = home / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))  # read-write: replays whatever WAL the killed run left
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()]
        assert {"kpi_values", "observations", "source_snapshots", "releases", "schema_migrations"} <= set(tables)
        for table in tables:
            con.execute(f'SELECT count(*) FROM "{table}"').fetchall()
        assert con.execute("SELECT count(*) FROM observations").fetchone() == (observations,)
    finally:
        con.close()
    assert_frame_equal(kpi_frame(warehouse), expected_values)
    manifests = verify_all_releases(home)  # no partial release: each folder complete and verified
    assert len(manifests) >= len(kept)
    for name, hashes in kept.items():
        assert hash_tree(home / "releases" / name) == hashes, f"release {name} changed"
    with writer_lock(home):  # the killed run's lock died with it
        pass


def _wait_for_lines(proc: subprocess.Popen[bytes], err_path: Path, lines: int) -> bool:
    """Wait until the run has printed `lines` lines on stderr (True) or ended first (False). No clock:
    the run's own end bounds the wait (and pytest's timeout a hang)."""
    while proc.poll() is None:
        if err_path.read_bytes().count(b"\n") >= lines:
            return True
        time.sleep(0.005)
    return False


def _stage(stderr: str) -> str:
    """The last progress line a killed run printed (for the report of where kills landed)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1][:70] if lines else "(nothing printed)"


@pytest.mark.slow
def test_sigkill_at_any_point_leaves_warehouse_and_releases_intact(completed_home: CompletedHome,
                                                                  home_copy: Path, tmp_path: Path) -> None:
    home, config = home_copy, completed_home.config
    first_release = home / "releases" / completed_home.release.name
    expected_values = pl.read_parquet(first_release / "kpi_values.parquet")
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    observations = con.execute("SELECT count(*) FROM observations").fetchone()[0]  # type: ignore[index]
    con.close()

    # A normal second run, timed: the kills spread over its duration.
    timed = run_cli("run", "--force", config, home=home)  # --force: unchanged inputs still write a release
    assert timed.returncode == 0, timed
    kept = {p.name: hash_tree(p) for p in release_dirs(home)}
    assert len(kept) == 2
    _check_state_after_kill(home, expected_values, kept, observations)

    # Kill points: half of them when the run has printed its n-th progress line (n spread over the
    # lines the timed run printed, never its last): those land mid-run however loaded the machine is.
    # The other half at delays spread over the timed run's duration: they land anywhere, also inside a
    # stage (or after the end, when the machine got faster).
    n_kills = 12
    span = max(timed.seconds, 1.0)
    delays = [0.2 + i * (span - 0.2) / (n_kills - 1) for i in range(n_kills)]
    lines = len(timed.stderr.splitlines())
    assert lines >= 3, timed
    at_lines = [1 + j * (lines - 3) // (n_kills // 2 - 1) for j in range(n_kills // 2)]  # 1 .. lines - 2
    plans: list[tuple[str, float]] = [("line", at_lines[i // 2]) if i % 2 == 0 else ("time", delays[i])
                                      for i in range(n_kills)]
    landed = []
    for i, (kind, point) in enumerate(plans):
        err_path = tmp_path / f"kill-{i}.stderr"
        with err_path.open("w") as err:
            started = time.monotonic()
            proc = subprocess.Popen([*citykpi_command(), "--home", str(home), "run", "--force", str(config)],
                                    stdout=subprocess.DEVNULL, stderr=err, env=subprocess_env(home),
                                    cwd=REPO_ROOT)
            if kind == "line":
                reached = _wait_for_lines(proc, err_path, int(point))
            else:
                try:
                    proc.wait(timeout=point)
                    reached = False
                except subprocess.TimeoutExpired:
                    reached = True
            if reached and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=RUN_TIMEOUT)
                outcome = "killed"
            else:
                proc.wait(timeout=RUN_TIMEOUT)
                outcome = f"finished (rc {proc.returncode})"
        elapsed = time.monotonic() - started
        where = f"line {int(point):2d}" if kind == "line" else f"{point:5.2f}s"
        landed.append(f"{where} {outcome:>16}: {_stage(err_path.read_text())} ({elapsed:.2f}s)")
        if outcome.startswith("finished"):
            assert proc.returncode == 0, err_path.read_text()
        _check_state_after_kill(home, expected_values, kept, observations)
        # A release completed just before the kill is kept too, and must stay as it is.
        kept.update({p.name: hash_tree(p) for p in release_dirs(home) if p.name not in kept})
    print(f"\nSIGKILL landing points (normal run took {timed.seconds:.2f} s):\n  " + "\n  ".join(landed))
    assert sum("killed" in line for line in landed) >= n_kills // 2, landed

    final = run_cli("run", "--force", config, home=home)
    assert final.returncode == 0, final
    _check_state_after_kill(home, expected_values, kept, observations)
    final_release = release_path_from_stdout(final.stdout)
    assert final_release.name not in kept
    assert_frame_equal(pl.read_parquet(final_release / "kpi_values.parquet"), expected_values)
    # Every release on disk is registered (a kill between rename and insert is reconciled) and vice versa.
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    registered = {r[0] for r in con.execute("SELECT release_id FROM releases").fetchall()}
    con.close()
    assert registered == {p.name for p in release_dirs(home)}
    assert list((home / "tmp").iterdir()) == [], "the run did not clear leftovers in tmp/"
