"""Per-city pieces of a release made again only when what they are made from changed (issue #16).

A release of many cities writes each city's U4SSC workbooks and report page, the slowest part of
publishing (openpyxl, Altair). Usually most cities did not change since the last release. Each piece
is kept in `<home>/cache/publish/<kind>/<city digest>/<key>`, where the key is the SHA-256 of
everything the piece is made from: its rows (Arrow IPC bytes of each frame), the facts it prints,
and a salt of the code and libraries that write it (every file of the `publish` and `kpis` packages,
the versions of openpyxl, altair, polars and pyarrow). Equal key, equal bytes, so a release built
from cached pieces is byte-identical to one built without them (`tests/test_publish_pieces.py`).

After a release is in place, each city of that release keeps only the pieces it used (`prune`):
the cache holds about one release's worth of per-city pieces. A cache file is written to a temporary
name and renamed, so a killed run leaves no half-written piece, and ends with the SHA-256 of its bytes,
checked when read: a damaged or unreadable piece is made again.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import polars as pl

from canonical.code_digest import package_digest

Part = bytes | str | pl.DataFrame | None

LIBRARIES = ("openpyxl", "altair", "polars", "pyarrow")
FOLDER = "publish"  # under <home>/cache/
DIGEST_BYTES = 32  # each stored piece ends with the SHA-256 of its bytes, checked when read


@cache
def code_salt() -> str:
    """The code that makes a piece (the publish and kpis packages) and the libraries' versions."""
    digest = hashlib.sha256(package_digest("publish", "kpis").encode())
    for library in LIBRARIES:
        try:
            digest.update(f"{library}=={version(library)}\n".encode())
        except PackageNotFoundError:
            digest.update(f"{library} missing\n".encode())
    return digest.hexdigest()


def frame_bytes(frame: pl.DataFrame) -> bytes:
    """A frame's schema and values as bytes (Arrow IPC, uncompressed, one chunk)."""
    buffer = io.BytesIO()
    frame.rechunk().write_ipc(buffer, compression="uncompressed")
    return buffer.getvalue()


def piece_key(kind: str, salt: str, parts: Iterable[Part]) -> str:
    """SHA-256 of the kind, the salt and each part (length-prefixed, so parts never run into each other)."""
    digest = hashlib.sha256(f"{kind}\n{salt}\n".encode())
    for part in parts:
        if part is None:
            data, tag = b"", b"N"
        elif isinstance(part, pl.DataFrame):
            data, tag = frame_bytes(part), b"F"
        elif isinstance(part, str):
            data, tag = part.encode("utf-8"), b"S"
        else:
            data, tag = part, b"B"
        digest.update(tag + len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def _read_checked(path: Path) -> bytes | None:
    """A stored piece without its trailing SHA-256, None when missing or damaged (then it is made again)."""
    try:
        stored = path.read_bytes()
    except OSError:
        return None
    data, check = stored[:-DIGEST_BYTES], stored[-DIGEST_BYTES:]
    return data if len(stored) >= DIGEST_BYTES and hashlib.sha256(data).digest() == check else None


def _city_folder(city_id: str) -> str:
    # City ids are untrusted text: the folder name is a digest, never the id itself.
    return hashlib.sha256(city_id.encode("utf-8")).hexdigest()[:24]


@dataclass
class PieceCache:
    """The cache of one release's pieces; `root` None makes every piece (no home, e.g. a writer's test)."""

    root: Path | None
    salt: str = field(default_factory=code_salt)
    used: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    made: int = 0
    reused: int = 0
    _catalogues: dict[int, tuple[object, str]] = field(default_factory=dict)

    @classmethod
    def in_home_cache(cls, cache_dir: Path | None) -> PieceCache:
        return cls(None if cache_dir is None else cache_dir / FOLDER)

    def catalogue_digest(self, catalogue: Sequence[object]) -> str:
        """A digest of the indicator catalogue a writer was given (computed once per catalogue object)."""
        known = self._catalogues.get(id(catalogue))
        if known is None or known[0] is not catalogue:
            known = (catalogue, hashlib.sha256(repr(list(catalogue)).encode("utf-8")).hexdigest())
            self._catalogues[id(catalogue)] = known  # holding the object keeps its id from being reused
        return known[1]

    def get(self, kind: str, city_id: str, parts: Iterable[Part], make: Callable[[], bytes]) -> bytes:
        """The piece's bytes: from the cache when a piece made from equal parts is there, else `make()` (kept)."""
        if self.root is None:
            self.made += 1
            return make()
        key = piece_key(kind, self.salt, parts)
        folder = self.root / kind / _city_folder(city_id)
        self.used.setdefault((kind, folder.name), set()).add(key)
        path = folder / key
        stored = _read_checked(path)
        if stored is not None:
            self.reused += 1
            return stored
        data = make()
        self.made += 1
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".piece-", dir=folder)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data + hashlib.sha256(data).digest())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return data

    def prune(self) -> int:
        """Remove the pieces of this release's cities that this release did not use; how many were removed."""
        if self.root is None:
            return 0
        removed = 0
        for (kind, city_folder), keys in self.used.items():
            folder = self.root / kind / city_folder
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if path.name not in keys:  # an older piece, or a temporary file a killed run left
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed
