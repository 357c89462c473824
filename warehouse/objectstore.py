"""Object storage for the files a home writes (releases, landing-zone snapshots), through pyarrow.fs.

A location is `s3://bucket/prefix` (S3 or an S3-compatible store: `CITYKPI_LAKE_S3_ENDPOINT`, and
the standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` / `AWS_REGION`),
`file:///path` or a plain local path. Keys and secrets come from the environment only and never
appear in messages (`warehouse.lake.redact`).

Writing follows the local rules of warehouse/home.py: immutable objects are written once, and the
object that makes a set of them visible (a release's `manifest.json`, the `latest` pointer) is written
last, so a reader that finds it finds everything it lists.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from canonical.errors import CitykpiError

if TYPE_CHECKING:
    from pyarrow import fs as pafs

ENV_S3_ENDPOINT = "CITYKPI_LAKE_S3_ENDPOINT"


class ObjectStoreError(CitykpiError):
    pass


@dataclass(frozen=True)
class Location:
    """A filesystem and a base path on it ("bucket/prefix" for S3, an absolute path locally)."""

    filesystem: pafs.FileSystem
    base: str
    uri: str

    def join(self, *parts: str) -> str:
        return "/".join([self.base.rstrip("/"), *[p.strip("/") for p in parts if p]])

    def display(self, *parts: str) -> str:
        return "/".join([self.uri.rstrip("/"), *[p.strip("/") for p in parts if p]])


def s3_filesystem(env: Mapping[str, str] | None = None) -> pafs.S3FileSystem:
    from pyarrow import fs as pafs

    env = os.environ if env is None else env
    endpoint = env.get(ENV_S3_ENDPOINT) or None
    kwargs: dict[str, object] = {"region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"}
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        kwargs.update(access_key=env["AWS_ACCESS_KEY_ID"], secret_key=env["AWS_SECRET_ACCESS_KEY"],
                      session_token=env.get("AWS_SESSION_TOKEN") or None)
    if endpoint:
        scheme, _, rest = endpoint.partition("://")
        kwargs.update(endpoint_override=rest or scheme, scheme=scheme if rest else "https",
                      force_virtual_addressing=False)
    return pafs.S3FileSystem(**kwargs)


def location(uri: str, env: Mapping[str, str] | None = None) -> Location:
    """The filesystem and base path of `uri` (s3://, file:// or a local path)."""
    from pyarrow import fs as pafs

    if uri.startswith("s3://"):
        base = uri[len("s3://"):].strip("/")
        if not base:
            raise ObjectStoreError(f"{uri!r} names no bucket")
        return Location(s3_filesystem(env), base, uri.rstrip("/"))
    path = Path(uri[len("file://"):] if uri.startswith("file://") else uri).expanduser().resolve()
    return Location(pafs.LocalFileSystem(), str(path), str(path))


def put_file(loc: Location, relative: str, source: Path) -> None:
    """Copy one local file to `relative` under the location (a new object, or a replaced one)."""
    target = loc.join(relative)
    parent = target.rsplit("/", 1)[0]
    loc.filesystem.create_dir(parent, recursive=True)
    with source.open("rb") as src, loc.filesystem.open_output_stream(target) as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)


def put_bytes(loc: Location, relative: str, data: bytes) -> None:
    target = loc.join(relative)
    loc.filesystem.create_dir(target.rsplit("/", 1)[0], recursive=True)
    with loc.filesystem.open_output_stream(target) as out:
        out.write(data)


def get_bytes(loc: Location, relative: str) -> bytes | None:
    """The object's bytes, or None when there is none."""
    from pyarrow import fs as pafs

    target = loc.join(relative)
    if loc.filesystem.get_file_info(target).type != pafs.FileType.File:
        return None
    with loc.filesystem.open_input_stream(target) as src:
        return bytes(src.read())


def get_file(loc: Location, relative: str, target: Path) -> int:
    """Stream one object into a local file; returns its size."""
    size = 0
    with loc.filesystem.open_input_stream(loc.join(relative)) as src, target.open("wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
            size += len(chunk)
    return size


def exists(loc: Location, relative: str) -> bool:
    from pyarrow import fs as pafs

    return bool(loc.filesystem.get_file_info(loc.join(relative)).type != pafs.FileType.NotFound)


def walk_files(root: Path) -> Iterator[Path]:
    """Every file under a local folder, in a stable order."""
    yield from sorted(p for p in root.rglob("*") if p.is_file())


# ---- the landing zone on object storage ------------------------------------------------------------
#
# <location>/<city>/<source>/<sha256>/...       a snapshot: its files, `meta.json` written last
# <location>/<city>/<source>/CURRENT            the snapshot the last pushing worker's warehouse reflects
#
# Snapshots are immutable and named by their content hash, so pushing one that is there (its
# meta.json exists) is skipped, and a half-pushed one (no meta.json: the pusher was killed) is pushed
# again and never pulled. A pull lands each snapshot in a dot-named staging folder and renames it into
# place, as sources/landing.py does, and sets CURRENT only where the home has none.

META = "meta.json"


@dataclass
class SyncReport:
    snapshots: int = 0
    files: int = 0
    bytes: int = 0
    pointers: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"snapshots": self.snapshots, "files": self.files, "bytes": self.bytes, "pointers": self.pointers}


def _local_snapshots(raw_root: Path, city_id: str) -> Iterator[tuple[str, Path]]:
    """(<source>/<sha>, folder) of every complete local snapshot of the city."""
    city = raw_root / city_id
    if not city.is_dir():
        return
    for source in sorted(p for p in city.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for snapshot in sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if (snapshot / META).is_file():
                yield f"{source.name}/{snapshot.name}", snapshot


def push_raw(raw_root: Path, loc: Location, city_ids: Sequence[str]) -> SyncReport:
    """Copy the cities' snapshots that the location lacks (files first, meta.json last) and their
    CURRENT pointers (the location's pointer is replaced: the last pushing worker wins)."""
    from sources.landing import POINTER

    report = SyncReport()
    for city_id in city_ids:
        for key, folder in _local_snapshots(raw_root, city_id):
            if exists(loc, f"{city_id}/{key}/{META}"):
                continue
            files = [p for p in walk_files(folder) if p.name != META] + [folder / META]
            for path in files:
                put_file(loc, f"{city_id}/{key}/{path.relative_to(folder).as_posix()}", path)
                report.files += 1
                report.bytes += path.stat().st_size
            report.snapshots += 1
        city = raw_root / city_id
        for pointer in sorted(city.glob(f"*/{POINTER}")) if city.is_dir() else []:
            relative = f"{city_id}/{pointer.parent.name}/{POINTER}"
            if get_bytes(loc, relative) != pointer.read_bytes():
                put_file(loc, relative, pointer)
                report.pointers += 1
    return report


def pull_raw(loc: Location, raw_root: Path, city_ids: Sequence[str]) -> SyncReport:
    """Copy the cities' complete snapshots this home lacks from the location (each into a staging
    folder renamed into place); set CURRENT from the location where the home has none."""
    import shutil
    import uuid

    from pyarrow import fs as pafs

    from sources.landing import POINTER

    report = SyncReport()
    for city_id in city_ids:
        base = loc.join(city_id)
        if loc.filesystem.get_file_info(base).type == pafs.FileType.NotFound:
            continue
        infos = loc.filesystem.get_file_info(pafs.FileSelector(base, recursive=True))
        by_snapshot: dict[str, list[str]] = {}
        pointers = []
        for info in infos:
            if info.type != pafs.FileType.File:
                continue
            relative = info.path[len(base):].lstrip("/")
            parts = relative.split("/")
            if len(parts) == 2 and parts[1] == POINTER:
                pointers.append(parts[0])
            elif len(parts) >= 3 and not parts[0].startswith(".") and not parts[1].startswith("."):
                by_snapshot.setdefault(f"{parts[0]}/{parts[1]}", []).append("/".join(parts[2:]))
        for key, files in sorted(by_snapshot.items()):
            target = raw_root / city_id / key
            if META not in files or (target / META).is_file():
                continue   # half-pushed, or already here
            staging = target.parent / f".pull-{target.name}-{uuid.uuid4().hex[:8]}"
            try:
                for name in sorted(files):
                    path = staging / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    report.bytes += get_file(loc, f"{city_id}/{key}/{name}", path)
                    report.files += 1
                try:
                    os.rename(staging, target)
                except OSError:
                    if not (target / META).is_file():
                        raise
                    shutil.rmtree(staging, ignore_errors=True)   # landed meanwhile by this home's own fetch
                report.snapshots += 1
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        for source in pointers:
            local = raw_root / city_id / source / POINTER
            data = get_bytes(loc, f"{city_id}/{source}/{POINTER}")
            if local.exists() or not data or not (local.parent / data.decode("utf-8").strip()).is_dir():
                continue
            staging_pointer = local.with_name(f".current-pull-{uuid.uuid4().hex[:8]}")
            staging_pointer.write_bytes(data)
            os.replace(staging_pointer, local)
            report.pointers += 1
    return report
