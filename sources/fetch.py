"""Fetch a city's sources into the landing zone and keep a CURRENT pointer per source.

The pointer (`<raw>/<city>/<source>/CURRENT`, replaced atomically) names the snapshot the
warehouse should reflect; `--offline` runs use it without touching any source.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from sources.config import LoadedConfig, SourceConfig
from sources.errors import FetchError
from sources.kinds import KINDS
from sources.landing import Snapshot, from_meta, latest_snapshot

POINTER = "CURRENT"


def _pointer_path(raw_root: Path, city_id: str, source_id: str) -> Path:
    return raw_root / city_id / source_id / POINTER


def set_current(raw_root: Path, snapshot: Snapshot) -> None:
    pointer = _pointer_path(raw_root, snapshot.city_id, snapshot.source_id)
    fd, tmp = tempfile.mkstemp(dir=pointer.parent, prefix=".current-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(snapshot.content_sha256 + "\n")
    os.replace(tmp, pointer)


def current_snapshot(raw_root: Path, home_root: Path, city_id: str, source_id: str) -> Snapshot | None:
    pointer = _pointer_path(raw_root, city_id, source_id)
    if not pointer.exists():
        return latest_snapshot(raw_root, home_root, city_id, source_id)
    directory = pointer.parent / pointer.read_text(encoding="utf-8").strip()
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    return from_meta(meta, directory, home_root, new=False)


def fetch_source(loaded: LoadedConfig, source: SourceConfig, raw_root: Path, home_root: Path, *,
                 offline: bool = False) -> Snapshot:
    """Land one source (or, offline, return its current snapshot) and point CURRENT at it."""
    if offline:
        snapshot = current_snapshot(raw_root, home_root, loaded.city_id, source.id)
        if snapshot is None:
            raise FetchError(f"source {source.id!r} of {loaded.city_id!r} has no snapshot yet; "
                             "run once without --offline")
        return snapshot
    fetch: Callable[..., Snapshot] = KINDS[source.kind].fetch
    snapshot = fetch(loaded, source, raw_root, home_root)
    set_current(raw_root, snapshot)
    return snapshot
