"""Fetch a city's sources into the landing zone and keep a CURRENT pointer per source.

The pointer (`<raw>/<city>/<source>/CURRENT`, replaced atomically) names the snapshot the
warehouse should reflect; `--offline` runs use it without touching any source.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from canonical.errors import FetchError
from sources.config import LoadedConfig, SourceConfig
from sources.kinds import KINDS
from sources.landing import POINTER, Snapshot, current_snapshot, pointer_path

__all__ = ["POINTER", "current_snapshot", "fetch_source", "point_current_at", "set_current"]


def set_current(raw_root: Path, snapshot: Snapshot) -> None:
    point_current_at(raw_root, snapshot.city_id, snapshot.source_id, snapshot.content_sha256)


def point_current_at(raw_root: Path, city_id: str, source_id: str, content_sha256: str) -> None:
    """Atomically point a source's CURRENT at the snapshot with this content hash (if it exists)."""
    pointer = pointer_path(raw_root, city_id, source_id)
    if not (pointer.parent / content_sha256).is_dir():
        return
    with contextlib.suppress(OSError, UnicodeDecodeError):
        if pointer.read_text(encoding="utf-8").strip() == content_sha256:
            return  # already there: a run over 1,000 unchanged cities rewrote 9,000 pointers
    fd, tmp = tempfile.mkstemp(dir=pointer.parent, prefix=".current-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content_sha256 + "\n")
    os.replace(tmp, pointer)


def fetch_source(loaded: LoadedConfig, source: SourceConfig, raw_root: Path, home_root: Path, *,
                 offline: bool = False) -> Snapshot:
    """Land one source (or, offline, return its current snapshot) and point CURRENT at it."""
    if offline:
        try:
            snapshot = current_snapshot(raw_root, home_root, loaded.city_id, source.id)
        except (OSError, ValueError) as exc:  # e.g. a delta whose base snapshot was removed
            raise FetchError(f"source {source.id!r} of {loaded.city_id!r}: current snapshot unreadable: {exc}; "
                             "run once without --offline") from None
        if snapshot is None:
            raise FetchError(f"source {source.id!r} of {loaded.city_id!r} has no snapshot yet; "
                             "run once without --offline")
        return snapshot
    fetch: Callable[..., Snapshot] = KINDS[source.kind].fetch
    snapshot = fetch(loaded, source, raw_root, home_root)
    set_current(raw_root, snapshot)
    return snapshot
