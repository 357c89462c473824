"""Versioned, immutable releases under <home>/releases/<release_id>/.

A release is written completely in <home>/tmp/ and renamed into place in one step, so a
releases/ folder only ever holds complete releases; an existing release is never touched. Only
then is `<home>/releases/latest` (a relative symlink) swapped to it, with one atomic rename, so a
reader that follows `latest` always lands in a complete release.

Release ids read `<UTC date-time>-<hash>`, e.g. `20261124T165825Z-3f2a9c1b`: the time sorts them
(it is bumped a second when needed so that ids stay strictly increasing), and the hash is the
first 8 hex digits of the data files' content hash, so two releases with equal data show equal
hashes. The formats are written by `publish` (one module per format); the manifest lists
every file with its role, description, SHA-256 and size. docs/releases.md describes the layout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from canonical.errors import CitykpiError
from publish import (
    City,
    FileEntry,
    PreviousRelease,
    PublishContext,
    SourceInfo,
    content_hash,
    data_writers,
    document_writers,
    piece_starters,
    sha256_of,
)
from publish.checksums import write_checksums
from publish.pieces import PieceCache
from sources.config import DATA_QUALITY_LABELS, LoadedConfig
from warehouse.home import Home

RELEASE_COLUMNS = [
    "city_id", "year", "framework", "indicator_id", "data_point", "value", "unit", "status", "status_reason",
    "numerator", "denominator", "missing_inputs", "inputs", "formula", "formula_version",
    "confidence", "method_variant", "caveats",
]
LATEST = "latest"
ID_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
ID_HASH_DIGITS = 8
# Every role a manifest can hold (docs/releases.md); tools find files by role, not by name.
FILE_ROLES = {
    "kpi_values_parquet": "indicator values, typed (Parquet)",
    "kpi_values_csv": "indicator values (CSV)",
    "datapackage": "Frictionless Data Package",
    "sdmx_csv": "SDMX-CSV 1.0 with the SDG DSD's concepts",
    "open_sdg": "Open SDG data and metadata, one pair per SDG 11 indicator",
    "ngsi_ld": "NGSI-LD KeyPerformanceIndicator entities",
    "u4ssc_workbook": "U4SSC submission workbook, one per city and year",
    "scores": "U4SSC scores against targets, kpi_scores (Parquet and CSV)",
    "rollups": "U4SSC score roll-ups per category, sub-dimension and dimension, kpi_rollups (Parquet and CSV)",
    "progress": "progress towards the targets, kpi_progress (Parquet and CSV)",
    "report_html": "self-contained HTML report",
    "quality_docs": "Great Expectations Data Docs of the quality checks (static HTML, opens offline)",
    "changes": "CHANGES.md against the previous release",
    "duckdb_snapshot": "read-only DuckDB database for dashboards",
    "checksums": "SHA256SUMS",
}

__all__ = ["FILE_ROLES", "LATEST", "RELEASE_COLUMNS", "Release", "list_releases", "load_release", "publish_release",
           "reconcile_releases", "release_frame", "resolve_release_id", "sha256_of"]


@dataclass(frozen=True)
class Release:
    release_id: str
    path: Path
    manifest: dict[str, Any]

    def files(self, role: str) -> list[Path]:
        """The release's files with this manifest role."""
        return [self.path / f["path"] for f in self.manifest.get("files", []) if f.get("role") == role]


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


def release_frame(con: duckdb.DuckDBPyConnection, city_ids: list[str]) -> pl.DataFrame:
    """The release's rows: run-independent columns only, in a stable order, so equal inputs give equal bytes."""
    table = con.sql(f"""
        SELECT {', '.join(RELEASE_COLUMNS)} FROM kpi_values WHERE city_id IN (SELECT unnest(?))
        ORDER BY city_id, year, framework, indicator_id, data_point NULLS FIRST""", params=[city_ids]).to_arrow_table()
    return pl.from_arrow(table)  # type: ignore[return-value]


# ---- ids and the `latest` pointer ---------------------------------------------------------------


def _id_time(release_id: str) -> datetime | None:
    try:
        return datetime.strptime(release_id[:16], ID_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def _new_release_id(releases_dir: Path, now: datetime, digest: str) -> str:
    """`<UTC second>-<hash>`, strictly after every existing release so that ids sort in publication order."""
    stamp = now.astimezone(UTC).replace(microsecond=0)
    times = [t for t in map(_id_time, list_release_dirs(releases_dir)) if t is not None]
    if times and stamp <= max(times):
        stamp = max(times) + timedelta(seconds=1)  # two releases within one second (tests, quick reruns)
    candidate = f"{stamp.strftime(ID_TIME_FORMAT)}-{digest[:ID_HASH_DIGITS]}"
    while (releases_dir / candidate).exists():  # a leftover folder without a manifest: never reuse its name
        stamp += timedelta(seconds=1)
        candidate = f"{stamp.strftime(ID_TIME_FORMAT)}-{digest[:ID_HASH_DIGITS]}"
    return candidate


def _point_latest(releases_dir: Path, release_id: str) -> None:
    """Swap `latest` to the release in one rename (a symlink is replaced atomically, never missing)."""
    staging = releases_dir / f".{LATEST}-{os.getpid()}"
    staging.unlink(missing_ok=True)
    os.symlink(release_id, staging)  # relative: the home directory can be moved or mounted elsewhere
    os.replace(staging, releases_dir / LATEST)


def list_release_dirs(releases_dir: Path) -> list[str]:
    """Complete release folders (with a manifest), oldest first; `latest` and staging names excluded."""
    if not releases_dir.exists():
        return []
    return sorted(p.name for p in releases_dir.iterdir()
                  if not p.name.startswith(".") and not p.is_symlink() and (p / "manifest.json").is_file())


def list_releases(home: Home) -> list[str]:
    return list_release_dirs(home.releases)


def latest_release_id(home: Home) -> str | None:
    link = home.releases / LATEST
    if link.is_symlink() and (link / "manifest.json").is_file():
        return os.readlink(link)
    releases = list_releases(home)
    return releases[-1] if releases else None


def resolve_release_id(home: Home, ref: str) -> str:
    """A release id, or `latest`; a clear error naming what exists otherwise."""
    release_id = latest_release_id(home) if ref == LATEST else ref
    known = list_releases(home)
    if release_id is None or release_id not in known:
        listing = ", ".join(known[-5:]) or "none yet (run `citykpi run`)"
        raise CitykpiError(f"no release {ref!r} in {home.releases}; releases: {listing}")
    return release_id


def load_release(home: Home, release_id: str) -> Release:
    if release_id == LATEST:
        release_id = resolve_release_id(home, release_id)
    path = home.releases / release_id
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    return Release(release_id, path, manifest)


# ---- writing -----------------------------------------------------------------------------------


def source_infos(cities: list[dict[str, Any]], snapshots: list[dict[str, Any]],
                 configs: Sequence[LoadedConfig] | None = None) -> tuple[SourceInfo, ...]:
    """Each input source's facts: description and licence from the city config (`configs` when the caller
    has them read already, else read from each city's `config` path), the snapshot from the warehouse."""
    from sources.config import load_city_config

    configured: dict[tuple[str, str], Any] = {}
    given = {c.city_id: c for c in configs or ()}
    for city in cities:
        loaded = given.get(city["id"])
        if loaded is None:
            try:
                loaded = load_city_config(Path(city["config"]), check_files=False)
            except (CitykpiError, OSError, KeyError):
                continue  # the config moved since the run: the snapshot facts still describe the source
        configured.update({(city["id"], s.id): s for s in loaded.config.sources})
    infos = []
    for snap in snapshots:
        source = configured.get((snap["city_id"], snap["source_id"]))
        infos.append(SourceInfo(
            city_id=snap["city_id"], source_id=snap["source_id"],
            description=getattr(source, "description", "") or "", license=getattr(source, "license", None),
            kind=snap.get("kind") or "", location=snap.get("location") or "", format=snap.get("format") or "",
            snapshot_id=snap.get("snapshot_id") or "", content_sha256=snap.get("content_sha256") or "",
            # The U4SSC template's vocabulary, declared per source in the city config.
            data_quality=DATA_QUALITY_LABELS.get(getattr(source, "data_quality", None) or ""),
            data_origin=getattr(source, "data_origin", None)))
    return tuple(infos)


def _previous(home: Home) -> PreviousRelease | None:
    release_id = latest_release_id(home)
    if release_id is None:
        return None
    return PreviousRelease(release_id, pl.read_parquet(home.releases / release_id / "kpi_values.parquet"))


def _unchanged_release(home: Home, digest: str, fingerprint: str | None) -> Release | None:
    """The latest release when its data hash and inputs fingerprint equal these (else None)."""
    release_id = latest_release_id(home)
    if release_id is None or fingerprint is None:
        return None
    latest = load_release(home, release_id)
    if latest.manifest.get("content_sha256") == digest and latest.manifest.get("inputs_fingerprint") == fingerprint:
        return latest
    return None


def _make_read_only(folder: Path) -> None:
    # Files read-only; folders stay 0755 like the release folder (mkdtemp made that one owner-only).
    for path in sorted(folder.rglob("*"), reverse=True):
        os.chmod(path, 0o755 if path.is_dir() else 0o444)
    os.chmod(folder, 0o755)


def _report_areas(con: duckdb.DuckDBPyConnection, city_ids: list[str]) -> pl.DataFrame:
    """The district polygons the report maps district values on."""
    table = con.sql("""
        SELECT city_id, area_type, area_id, name, geometry_wkb FROM core_areas
        WHERE city_id IN (SELECT unnest(?)) AND area_type = 'district' ORDER BY city_id, area_id""",
                    params=[city_ids]).to_arrow_table()
    return pl.from_arrow(table)  # type: ignore[return-value]


def release_context(con: duckdb.DuckDBPyConnection, home: Home, *, cities: list[dict[str, Any]],
                    snapshots: list[dict[str, Any]], quality: dict[str, Any] | None,
                    configs: Sequence[LoadedConfig] | None = None) -> tuple[pl.DataFrame, PublishContext]:
    """The release frame of `cities` and what the writers know besides it (before the release id is known);
    `configs`: the cities' configs when the caller has them (else each is read from its `config` path)."""
    from kpis.benchmarking.store import release_frames
    from quality.store import quality_rows

    city_ids = [c["id"] for c in cities]
    context = PublishContext(
        cities=tuple(City(c["id"], c.get("name", c["id"]), c.get("country", ""), tuple(c.get("reporting_years", ())))
                     for c in cities),
        sources=source_infos(cities, snapshots, configs), previous=_previous(home),
        quality=quality, cache_dir=home.cache, benchmarks=release_frames(con, city_ids),
        quality_results=None if quality is None else quality_rows(con, quality.get("run_id"), city_ids),
        areas=_report_areas(con, city_ids), pieces=PieceCache.in_home_cache(home.cache))
    return release_frame(con, city_ids), context


def publish_release(
    con: duckdb.DuckDBPyConnection,
    home: Home,
    *,
    cities: list[dict[str, Any]],
    snapshots: list[dict[str, Any]],
    run_id: str,
    extra: dict[str, Any] | None = None,
    skip_unchanged: bool = False,
    configs: Sequence[LoadedConfig] | None = None,
) -> Release:
    """Write a new release for `cities` from the warehouse's kpi_values and benchmarking tables (kpi_scores,
    kpi_rollups, kpi_progress), point `latest` at it, register it.

    `skip_unchanged`: when the latest release has the same `inputs_fingerprint` (in `extra`) and the
    same data hash, write nothing and return the latest release (an unchanged run adds no release).
    `configs`: the cities' configs, when the caller has read them (else read again from `cities`' paths)."""
    from kpis.catalogue import load_catalogue
    from publish.report_html import prefetch_bundle

    now = datetime.now(UTC)
    home.ensure()
    prefetch_bundle(home.cache)  # the report's JavaScript, bundled while the data files are written
    catalogue = load_catalogue()
    quality = (extra or {}).get("quality")
    frame, context = release_context(con, home, cities=cities, snapshots=snapshots,
                                     quality=quality if isinstance(quality, dict) else None, configs=configs)
    staging = Path(tempfile.mkdtemp(prefix="release-", dir=home.tmp))
    try:
        return _write_release(con, home, frame, catalogue, context, staging, cities=cities, snapshots=snapshots,
                              now=now, run_id=run_id, extra=extra, skip_unchanged=skip_unchanged)
    finally:
        if context.pieces is not None:
            context.pieces.close()


def _write_release(con: duckdb.DuckDBPyConnection, home: Home, frame: pl.DataFrame, catalogue: Any,
                   context: PublishContext, staging: Path, *, cities: list[dict[str, Any]],
                   snapshots: list[dict[str, Any]], now: datetime, run_id: str, extra: dict[str, Any] | None,
                   skip_unchanged: bool) -> Release:
    """Write the files into `staging`, rename it into place, point `latest` at it (publish_release's body)."""
    try:
        for start in piece_starters():
            start(frame, catalogue, context)
        data: list[FileEntry] = [e for write in data_writers() for e in write(frame, catalogue, context, staging)]
        digest = content_hash(data)
        if skip_unchanged and (same := _unchanged_release(home, digest, (extra or {}).get("inputs_fingerprint"))):
            shutil.rmtree(staging, ignore_errors=True)
            return same
        release_id = _new_release_id(home.releases, now, digest)
        context = replace(context, release_id=release_id, created_at=now.isoformat(timespec="seconds"),
                          files=tuple(data))
        documents = [e for write in document_writers() for e in write(frame, catalogue, context, staging)]
        entries = [*data, *documents, *write_checksums(staging, [*data, *documents])]
        counts = frame.group_by("framework", "status").len().sort("framework", "status")
        manifest: dict[str, Any] = {
            "release_id": release_id,
            "created_at": context.created_at,
            "code_version": code_version(),
            "run_id": run_id,
            "content_sha256": digest,
            "previous_release": context.previous.release_id if context.previous else None,
            "cities": cities,
            "years": sorted({int(y) for y in frame["year"].unique()}),
            "input_snapshots": snapshots,
            "row_counts": {"kpi_values": frame.height,
                           **{table: rows.height for table, rows in (context.benchmarks or {}).items()},
                           "by_framework_and_status": [dict(zip(("framework", "status", "rows"), r, strict=True))
                                                       for r in counts.iter_rows()]},
            "files": [e.as_manifest() for e in entries],
            **(extra or {}),
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                               encoding="utf-8")
        _make_read_only(staging)
        target = home.releases / release_id
        os.rename(staging, target)  # atomic on one filesystem; fails rather than overwrite
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _point_latest(home.releases, release_id)  # only now: readers never see an incomplete release
    register_release(con, target, manifest)
    if context.pieces is not None:
        context.pieces.prune()  # each city of this release keeps the pieces this release used
    return Release(release_id, target, manifest)


def register_release(con: duckdb.DuckDBPyConnection, path: Path, manifest: dict[str, Any]) -> None:
    con.execute(
        """INSERT OR IGNORE INTO releases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [manifest["release_id"], manifest["created_at"], str(path), manifest.get("run_id"),
         [c["id"] for c in manifest["cities"]], manifest["years"], manifest["row_counts"]["kpi_values"],
         sha256_of(path / "manifest.json"), manifest["code_version"]])


def reconcile_releases(con: duckdb.DuckDBPyConnection, home: Home) -> int:
    """Repair what a kill after the rename left: register unregistered releases, point `latest` at the newest."""
    releases = list_releases(home)
    if not releases:
        return 0
    known = {row[0] for row in con.execute("SELECT release_id FROM releases").fetchall()}
    added = 0
    for release_id in releases:
        if release_id not in known:
            folder = home.releases / release_id
            register_release(con, folder, json.loads((folder / "manifest.json").read_text(encoding="utf-8")))
            added += 1
    link = home.releases / LATEST
    if not link.is_symlink() or os.readlink(link) != releases[-1]:
        _point_latest(home.releases, releases[-1])
    for stale in home.releases.glob(f".{LATEST}-*"):  # a kill between symlink and rename (we hold the lock)
        stale.unlink(missing_ok=True)
    return added
