"""Local files: a path relative to the city config (or absolute)."""

from __future__ import annotations

from pathlib import Path

from sources.config import LoadedConfig, SourceConfig
from sources.confine import OutsideRoots, confined_path
from sources.errors import FetchError
from sources.landing import Snapshot, land_file

DESCRIPTION = ("Local file (CSV, Excel, Parquet, JSON, GeoJSON, NGSI-LD JSON, GTFS zip) "
               "next to the city config")


def fetch(loaded: LoadedConfig, source: SourceConfig, raw_root: Path, home_root: Path) -> Snapshot:
    if source.is_url:
        raise FetchError(f"source {source.id!r}: kind 'file' needs a path, got URL {source.location!r}")
    try:
        path = confined_path(loaded, source)  # regular files under the config's folder or allowed_roots
    except OutsideRoots as exc:
        raise FetchError(f"source {source.id!r}: {exc}") from None
    except OSError:
        raise FetchError(f"source {source.id!r}: file not found: {loaded.source_path(source)}") from None
    stat = path.stat()
    return land_file(
        raw_root, home_root, city_id=loaded.city_id, source_id=source.id, kind=source.kind,
        location=source.location, fmt=source.resolved_format, payload=path, filename=path.name,
        request={"path": str(path), "mtime_ns": stat.st_mtime_ns},
    )
