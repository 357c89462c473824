"""Versioned, immutable releases under <home>/releases/<release_id>/.

A release is written completely in <home>/tmp/ and renamed into place in one step, so a
releases/ folder only ever holds complete releases; an existing release is never touched.
The manifest lists every file with its role and SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from warehouse.home import Home

RELEASE_COLUMNS = [
    "city_id", "year", "framework", "indicator_id", "data_point", "value", "unit", "status", "status_reason",
    "numerator", "denominator", "missing_inputs", "inputs", "formula", "formula_version",
]
FILE_ROLES = {
    "kpi_values.parquet": "data: indicator values (canonical, typed)",
    "kpi_values.csv": "data: indicator values (CSV, UTF-8, missing_inputs as ';'-joined text)",
}


@dataclass(frozen=True)
class Release:
    release_id: str
    path: Path
    manifest: dict[str, Any]


@cache
def code_version() -> str:
    try:
        package = version("citykpi")
    except PackageNotFoundError:
        package = "unknown"
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        return f"{package}+g{commit}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return package


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def release_frame(con: duckdb.DuckDBPyConnection, city_ids: list[str]) -> pl.DataFrame:
    """The release's rows: run-independent columns only, in a stable order, so equal inputs give equal bytes."""
    table = con.sql(f"""
        SELECT {', '.join(RELEASE_COLUMNS)} FROM kpi_values WHERE list_contains(?, city_id)
        ORDER BY city_id, year, framework, indicator_id, data_point NULLS FIRST""", params=[city_ids]).to_arrow_table()
    return pl.from_arrow(table)  # type: ignore[return-value]


def _new_release_id(releases_dir: Path, now: datetime) -> str:
    base = now.strftime("%Y%m%dT%H%M%SZ")
    candidate, n = base, 1
    while (releases_dir / candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _write_data_files(frame: pl.DataFrame, folder: Path) -> None:
    frame.write_parquet(folder / "kpi_values.parquet", compression="zstd", statistics=True)
    csv_frame = frame.with_columns(pl.col("missing_inputs").list.join(";"))
    csv_frame.write_csv(folder / "kpi_values.csv", float_precision=None)


def _file_entries(folder: Path, roles: dict[str, str]) -> list[dict[str, Any]]:
    return [{"path": name, "role": role, "sha256": sha256_of(folder / name), "bytes": (folder / name).stat().st_size}
            for name, role in sorted(roles.items())]


def publish_release(
    con: duckdb.DuckDBPyConnection,
    home: Home,
    *,
    cities: list[dict[str, Any]],
    snapshots: list[dict[str, Any]],
    run_id: str,
    extra: dict[str, Any] | None = None,
) -> Release:
    """Write a new release for `cities` from the warehouse's kpi_values and register it."""
    city_ids = [c["id"] for c in cities]
    frame = release_frame(con, city_ids)
    now = datetime.now(UTC)
    home.ensure()
    staging = Path(tempfile.mkdtemp(prefix="release-", dir=home.tmp))
    try:
        _write_data_files(frame, staging)
        counts = frame.group_by("framework", "status").len().sort("framework", "status")
        release_id = _new_release_id(home.releases, now)
        manifest: dict[str, Any] = {
            "release_id": release_id,
            "created_at": now.isoformat(timespec="seconds"),
            "code_version": code_version(),
            "run_id": run_id,
            "cities": cities,
            "years": sorted({int(y) for y in frame["year"].unique()}),
            "input_snapshots": snapshots,
            "row_counts": {"kpi_values": frame.height,
                           "by_framework_and_status": [dict(zip(("framework", "status", "rows"), r, strict=True))
                                                       for r in counts.iter_rows()]},
            "files": _file_entries(staging, FILE_ROLES),
            **(extra or {}),
        }
        manifest_path = staging / "manifest.json"
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=False, ensure_ascii=False) + "\n",
                                 encoding="utf-8")
        _write_sha256sums(staging)
        for item in staging.iterdir():
            os.chmod(item, 0o444)
        os.chmod(staging, 0o755)  # mkdtemp makes it owner-only; a published release is readable like its files
        target = home.releases / release_id
        os.rename(staging, target)  # atomic on one filesystem; fails rather than overwrite
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    register_release(con, target, manifest)
    return Release(release_id, target, manifest)


def _write_sha256sums(folder: Path) -> None:
    lines = [f"{sha256_of(folder / p.name)}  {p.name}" for p in sorted(folder.iterdir()) if p.is_file()]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n", encoding="utf-8")


def register_release(con: duckdb.DuckDBPyConnection, path: Path, manifest: dict[str, Any]) -> None:
    con.execute(
        """INSERT OR IGNORE INTO releases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [manifest["release_id"], manifest["created_at"], str(path), manifest.get("run_id"),
         [c["id"] for c in manifest["cities"]], manifest["years"], manifest["row_counts"]["kpi_values"],
         sha256_of(path / "manifest.json"), manifest["code_version"]])


def reconcile_releases(con: duckdb.DuckDBPyConnection, home: Home) -> int:
    """Register releases present on disk but not in the table (a kill between rename and insert)."""
    if not home.releases.exists():
        return 0
    known = {row[0] for row in con.execute("SELECT release_id FROM releases").fetchall()}
    added = 0
    for folder in sorted(home.releases.iterdir()):
        manifest_path = folder / "manifest.json"
        if folder.name not in known and manifest_path.exists():
            register_release(con, folder, json.loads(manifest_path.read_text(encoding="utf-8")))
            added += 1
    return added


def list_releases(home: Home) -> list[str]:
    if not home.releases.exists():
        return []
    return sorted(p.name for p in home.releases.iterdir() if (p / "manifest.json").exists())


def load_release(home: Home, release_id: str) -> Release:
    path = home.releases / release_id
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    return Release(release_id, path, manifest)
