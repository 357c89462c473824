"""Shared fixtures for the acceptance tests: a small generated demo city, a home with one completed
run, and helpers that run the real `citykpi` command in a subprocess.

Every test works in temporary homes only: `CITYKPI_HOME` (and `DAGSTER_HOME`) point into pytest's
temporary directory for the whole session, and subprocesses always get `--home` as well, so the
default home (~/.local/share/citykpi) is never touched. The demo city is local files: no network.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN_DIR = Path(sys.executable).parent
SMALL_SCALE = 0.1  # one air quality station: the fastest demo city that still has every source
RUN_TIMEOUT = 1500  # a guard against hangs only: a loaded 2-core machine is slow (pyproject: 3600 per test)


def citykpi_command() -> list[str]:
    """The installed console script next to this interpreter, else `python -m pipelines.cli`."""
    script = BIN_DIR / "citykpi"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pipelines.cli"]


@dataclass(repr=False)
class CliResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def __repr__(self) -> str:  # shown by pytest when an assertion on the result fails
        return (f"citykpi {' '.join(self.args)} -> {self.returncode} in {self.seconds:.2f} s\n"
                f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}")


def subprocess_env(home: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment for a citykpi subprocess: current env, tmp homes, venv bin first on PATH, and
    this checkout first on PYTHONPATH, so the child imports the code under test (the venv's console
    script would otherwise import whichever checkout the venv was installed from)."""
    env = dict(os.environ)
    env.pop("CITYKPI_CITIES", None)
    env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
    env["PYTHONUNBUFFERED"] = "1"
    if home is not None:
        env["CITYKPI_HOME"] = str(home)
    env.update(extra)
    return env


def run_cli(*args: str | Path, home: Path | None = None, timeout: float = RUN_TIMEOUT,
            env: dict[str, str] | None = None) -> CliResult:
    """Run `citykpi [--home HOME] ARGS...` to completion."""
    argv = [*(["--home", str(home)] if home is not None else []), *map(str, args)]
    started = time.monotonic()
    proc = subprocess.run([*citykpi_command(), *argv], capture_output=True, text=True, timeout=timeout,
                          env=env or subprocess_env(home), cwd=REPO_ROOT)
    return CliResult(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


# ---- release and file checks ----------------------------------------------------------------


def sha256_bytes(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hash_tree(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under root."""
    return {str(p.relative_to(root)): sha256_bytes(p) for p in sorted(root.rglob("*")) if p.is_file()}


def release_dirs(home: Path) -> list[Path]:
    """Release folders, oldest first (not the `latest` symlink, not dot-named staging)."""
    releases = home / "releases"
    if not releases.exists():
        return []
    return sorted(p for p in releases.iterdir() if not p.is_symlink() and not p.name.startswith("."))


def verify_release(path: Path) -> dict:
    """Assert the release folder is complete and every file matches its manifest hash; return the manifest."""
    assert path.is_dir(), f"{path} is not a directory"
    manifest_path = path / "manifest.json"
    assert manifest_path.is_file(), f"partial release without manifest.json: {path}"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["release_id"] == path.name
    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert {"kpi_values.parquet", "kpi_values.csv", "SHA256SUMS"} <= set(listed), listed  # + formats, docs/releases.md
    for name, entry in listed.items():
        file = path / name
        assert file.is_file(), f"{path.name}: listed file {name} is missing"
        assert entry["sha256"] == sha256_bytes(file), f"{path.name}: {name} does not match its manifest hash"
        assert entry["bytes"] == file.stat().st_size
        assert entry["role"], f"{path.name}: {name} has no role"
    sums = {}
    for line in (path / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        sums[name] = digest
    # SHA256SUMS covers every file but itself and the manifest (which lists SHA256SUMS with its hash).
    assert set(sums) == set(listed) - {"SHA256SUMS"}, sums
    for name, digest in sums.items():
        assert digest == sha256_bytes(path / name), f"{path.name}: SHA256SUMS entry for {name} is wrong"
    on_disk = {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()}
    assert on_disk == {*listed, "manifest.json"}, f"{path.name}: unexpected files {sorted(on_disk)}"
    return manifest


def verify_all_releases(home: Path) -> list[dict]:
    return [verify_release(p) for p in release_dirs(home)]


def snapshot_dirs(home: Path) -> set[str]:
    """Complete landing-zone snapshots: <city>/<source>/<sha256> folders holding a meta.json."""
    raw = home / "raw"
    return {str(p.parent.relative_to(raw)) for p in raw.glob("*/*/*/meta.json")} if raw.exists() else set()


def release_path_from_stdout(stdout: str) -> Path:
    lines = [line for line in stdout.splitlines() if line.startswith("Release ")]
    assert len(lines) == 1, stdout
    return Path(lines[0].split(": ", 1)[1].strip())


# ---- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def isolated_homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point CITYKPI_HOME and DAGSTER_HOME at temporary folders for the whole session."""
    guard = tmp_path_factory.mktemp("guard-home")
    dagster_home = tmp_path_factory.mktemp("dagster-home")
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CITYKPI_HOME", str(guard))
        mp.setenv("DAGSTER_HOME", str(dagster_home))
        mp.delenv("CITYKPI_CITIES", raising=False)
        yield guard


@pytest.fixture(scope="session")
def demo_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated demo city (read-only for tests; copy it with `city_copy` to corrupt it)."""
    from sources.demo.generator import generate_demo_city

    return generate_demo_city(tmp_path_factory.mktemp("demo") / "city", scale=SMALL_SCALE)


@pytest.fixture
def city_copy(demo_config: Path, tmp_path: Path) -> Path:
    """A private copy of the small demo city's folder; returns its city.yaml."""
    target = tmp_path / "city"
    shutil.copytree(demo_config.parent, target)
    return target / "city.yaml"


@dataclass
class CompletedHome:
    home: Path
    config: Path
    result: CliResult
    release: Path


@pytest.fixture(scope="session")
def completed_home(demo_config: Path, tmp_path_factory: pytest.TempPathFactory) -> CompletedHome:
    """A home after one successful `citykpi run CONFIG` of the small demo city. Do not mutate it:
    tests that write use `home_copy`."""
    home = tmp_path_factory.mktemp("completed") / "home"
    result = run_cli("run", demo_config, home=home)
    assert result.returncode == 0, result
    return CompletedHome(home, demo_config, result, release_path_from_stdout(result.stdout))


@pytest.fixture
def home_copy(completed_home: CompletedHome, tmp_path: Path) -> Path:
    """A private copy of the completed home (same warehouse, snapshots and release)."""
    target = tmp_path / "home"
    shutil.copytree(completed_home.home, target, symlinks=True)
    return target


def kpi_frame(warehouse: Path):  # -> polars.DataFrame
    """The warehouse's kpi_values in release form (run-independent columns, stable order)."""
    import duckdb

    from publish.releases import release_frame

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        city_ids = [r[0] for r in con.execute("SELECT DISTINCT city_id FROM kpi_values").fetchall()]
        return release_frame(con, sorted(city_ids))
    finally:
        con.close()
