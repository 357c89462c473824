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
from collections.abc import Iterator, Mapping
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


def exists(loc: Location, relative: str) -> bool:
    from pyarrow import fs as pafs

    return bool(loc.filesystem.get_file_info(loc.join(relative)).type != pafs.FileType.NotFound)


def walk_files(root: Path) -> Iterator[Path]:
    """Every file under a local folder, in a stable order."""
    yield from sorted(p for p in root.rglob("*") if p.is_file())
