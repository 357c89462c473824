"""Local files: a path relative to the city config (or absolute)."""

from __future__ import annotations

from pathlib import Path

from sources.config import LoadedConfig, SourceConfig
from sources.confine import OutsideRoots, confined_path
from sources.errors import FetchError
from sources.landing import Snapshot, land_file, land_files

# A shapefile is several files with one stem; these travel with the .shp (.sbn/.sbx indexes do not).
SHAPEFILE_SIDECARS = (".shx", ".dbf", ".prj", ".cpg", ".qix", ".shp.xml")

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
    if path.suffix.lower() == ".shp":
        sidecars = sorted(p for p in path.parent.iterdir() if p.is_file() and p.name.startswith(path.stem + ".")
                          and p.name[len(path.stem):].lower() in SHAPEFILE_SIDECARS)
        return land_files(
            raw_root, home_root, city_id=loaded.city_id, source_id=source.id, kind=source.kind,
            location=source.location, fmt=source.resolved_format, payloads=[path, *sidecars],
            request={"path": str(path), "mtime_ns": stat.st_mtime_ns, "sidecars": [p.name for p in sidecars]})
    return land_file(
        raw_root, home_root, city_id=loaded.city_id, source_id=source.id, kind=source.kind,
        location=source.location, fmt=source.resolved_format, payload=path, filename=path.name,
        request={"path": str(path), "mtime_ns": stat.st_mtime_ns},
    )
