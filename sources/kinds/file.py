"""Local files: a path relative to the city config (or absolute)."""

from __future__ import annotations

from pathlib import Path

from canonical.errors import FetchError
from sources.config import LoadedConfig, SourceConfig
from sources.confine import OutsideRoots, confined_path
from sources.file_stat import remember, stats_now, unchanged_hash
from sources.landing import Snapshot, land_file, land_files, snapshot_by_hash

# A shapefile is several files with one stem; these travel with the .shp (.sbn/.sbx indexes do not).
SHAPEFILE_SIDECARS = (".shx", ".dbf", ".prj", ".cpg", ".qix", ".shp.xml")

DESCRIPTION = ("Local file (CSV, Excel, Parquet, JSON, GeoJSON, NGSI-LD JSON, GTFS zip, shapefile with its "
               "sidecars, GeoPackage) next to the city config")


def shapefile_sidecars(shp: Path, source_id: str) -> list[Path]:
    """The files beside a .shp that belong to it. Each must be a regular file really in the .shp's folder:
    a sidecar symlinked elsewhere would let a config read a file outside its allowed folders."""
    folder = shp.resolve().parent
    out = []
    for candidate in sorted(shp.parent.iterdir()):
        if not (candidate.name.startswith(shp.stem + ".")
                and candidate.name[len(shp.stem):].lower() in SHAPEFILE_SIDECARS):
            continue
        real = candidate.resolve()
        if real.parent != folder or not real.is_file():
            raise FetchError(f"source {source_id!r}: the shapefile's {candidate.name} is not a regular file in "
                             f"{folder} (it leads to {real}); refusing to read it")
        out.append(candidate)
    return out


def fetch(loaded: LoadedConfig, source: SourceConfig, raw_root: Path, home_root: Path) -> Snapshot:
    if source.is_url:
        raise FetchError(f"source {source.id!r}: kind 'file' needs a path, got URL {source.location!r}")
    try:
        path = confined_path(loaded, source)  # regular files under the config's folder or allowed_roots
    except OutsideRoots as exc:
        raise FetchError(f"source {source.id!r}: {exc}") from None
    except OSError:
        raise FetchError(f"source {source.id!r}: file not found: {loaded.source_path(source)}") from None
    payloads = [path, *shapefile_sidecars(path, source.id)] if path.suffix.lower() == ".shp" else [path]
    stats, taken_ns = stats_now(payloads)
    known = unchanged_hash(raw_root, loaded.city_id, source.id, stats)
    if known is not None:  # same files as last landed (sources/file_stat.py): no need to read them again
        return snapshot_by_hash(raw_root, home_root, loaded.city_id, source.id, known)
    snapshot = _land(loaded, source, raw_root, home_root, payloads, stats[0].mtime_ns)
    remember(raw_root, loaded.city_id, source.id, stats, taken_ns, snapshot.content_sha256)
    return snapshot


def _land(loaded: LoadedConfig, source: SourceConfig, raw_root: Path, home_root: Path, payloads: list[Path],
          mtime_ns: int) -> Snapshot:
    path, sidecars = payloads[0], payloads[1:]
    if path.suffix.lower() == ".shp":
        return land_files(
            raw_root, home_root, city_id=loaded.city_id, source_id=source.id, kind=source.kind,
            location=source.location, fmt=source.resolved_format, payloads=payloads,
            request={"path": str(path), "mtime_ns": mtime_ns, "sidecars": [p.name for p in sidecars]})
    return land_file(
        raw_root, home_root, city_id=loaded.city_id, source_id=source.id, kind=source.kind,
        location=source.location, fmt=source.resolved_format, payload=path, filename=path.name,
        request={"path": str(path), "mtime_ns": mtime_ns},
    )
