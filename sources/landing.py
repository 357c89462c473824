"""The raw landing zone: the exact bytes fetched, immutable, addressed by content hash.

A snapshot lives in `<home>/raw/<city_id>/<source_id>/<sha256>/` with the payload under its
original file name and `meta.json` (request metadata, fetch time, hash, size). Writing goes to a
temporary directory that is renamed into place, so a snapshot is either complete or absent, and
an existing snapshot is never rewritten: fetching unchanged content returns the existing one.

A snapshot fetched over HTTP may hold several pages (`page-0001.json`, ...), each the exact
bytes of one response, listed in `meta.json` under `pages` with its URL (never a secret), status,
selected response headers and SHA-256. The snapshot's content hash of a one-file snapshot is the
file's SHA-256; of a multi-page snapshot it is the SHA-256 of the `sha256sum`-style listing of
its pages in order (`<sha256>  <file>\n` per page), so it covers every page and their order.
`<raw>/<city>/<source>/CURRENT` names the snapshot the warehouse should reflect.

A local shapefile lands as one snapshot of several files (`land_files`): the `.shp` first, then
its sidecars (`.shx`, `.dbf`, `.prj`, `.cpg`, ...) under their own names, hashed like pages.

A *delta* snapshot (a since-filtered fetch of an append-only feed, see `sources/kinds/_since.py`)
holds only the records newer than its base and names the base's content hash in `meta.json`
(`base`, `depth`). Its `pages` are the base chain's pages followed by its own, so every reader sees
the full data. Its content hash is the SHA-256 of its own listing followed by `base <sha256>\n`,
so it covers the whole chain and equal pages on another base are another snapshot.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

CHUNK = 1 << 20
POINTER = "CURRENT"


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    city_id: str
    source_id: str
    kind: str
    location: str
    format: str
    content_sha256: str
    size_bytes: int
    path: Path            # absolute path of the payload file
    relative_path: str    # relative to the home directory
    fetched_at: str       # ISO 8601, UTC
    request: dict[str, Any]
    new: bool             # False when identical content was already in the landing zone
    pages: tuple[Path, ...] = ()  # every payload file in order (one for a single-file snapshot)
    paged: bool = False   # pages of JSON records from a paged API (read by the page reader)
    base: str | None = None  # a delta's base snapshot (content hash); its pages come first in `pages`
    depth: int = 0        # deltas in the chain up to this snapshot (0: a full snapshot)
    own_pages: tuple[Path, ...] = ()  # the pages landed in this snapshot's own folder

    def record(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = self.relative_path
        home = self.path.parents[len(Path(self.relative_path).parts) - 1]
        data["pages"] = [str(p.relative_to(home)) for p in self.pages]
        data["own_pages"] = [str(p.relative_to(home)) for p in self.own_pages]
        data.pop("relative_path")
        data.pop("new")
        return data


@dataclass(frozen=True)
class Page:
    """One response body landed as a file, with what is safe to record about its request."""

    file: str                  # file name inside the snapshot, e.g. page-0001.json
    url: str                   # the request URL (secrets are never in URLs)
    status: int                # 200, or 304 when the previous snapshot's bytes were still valid
    headers: dict[str, str]    # selected response headers (ETag, Last-Modified, Content-Type, ...)
    sha256: str
    bytes: int
    reused_from: str | None = None  # snapshot id whose page was revalidated by a 304

    def record(self) -> dict[str, Any]:
        data = asdict(self)
        if self.reused_from is None:
            data.pop("reused_from")
        return data


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _snapshot_dir(raw_root: Path, city_id: str, source_id: str, sha: str) -> Path:
    return raw_root / city_id / source_id / sha


def land_file(
    raw_root: Path,
    home_root: Path,
    *,
    city_id: str,
    source_id: str,
    kind: str,
    location: str,
    fmt: str,
    payload: Path,
    filename: str,
    request: dict[str, Any],
) -> Snapshot:
    """Copy `payload` into the landing zone (unless that exact content is already there)."""
    sha = sha256_file(payload)
    target = _snapshot_dir(raw_root, city_id, source_id, sha)
    if (target / "meta.json").exists():
        meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
        return from_meta(meta, target, home_root, new=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}-", dir=target.parent))
    try:
        shutil.copyfile(payload, staging / filename)
        meta = {
            "snapshot_id": f"{city_id}/{source_id}/{sha[:16]}",
            "city_id": city_id, "source_id": source_id, "kind": kind, "location": location,
            "format": fmt, "content_sha256": sha, "size_bytes": payload.stat().st_size,
            "filename": filename, "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "request": request,
        }
        (staging / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
        for item in staging.iterdir():
            os.chmod(item, 0o444)  # immutable by intent: read-only payloads
        os.rename(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        # Renaming onto a non-empty directory fails with ENOTEMPTY (or EEXIST): another writer
        # landed the same content first, and theirs is identical by hash.
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not (target / "meta.json").exists():
            raise
        meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
        return from_meta(meta, target, home_root, new=False)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
    return from_meta(meta, target, home_root, new=True)


def land_files(
    raw_root: Path,
    home_root: Path,
    *,
    city_id: str,
    source_id: str,
    kind: str,
    location: str,
    fmt: str,
    payloads: Sequence[Path],
    request: dict[str, Any],
) -> Snapshot:
    """Land several local files as one snapshot (a shapefile: .shp first, then its sidecars), so that
    the readers find them side by side. Each file is a page; the content hash covers them all."""
    with Staging(raw_root, city_id, source_id) as staging:
        pages = []
        for payload in payloads:
            target = staging.file(payload.name)
            shutil.copyfile(payload, target)
            pages.append(Page(file=payload.name, url=str(payload), status=200, headers={},
                              sha256=sha256_file(target), bytes=target.stat().st_size))
        return land_pages(staging, home_root, city_id=city_id, source_id=source_id, kind=kind, location=location,
                          fmt=fmt, pages=pages, request=request, paged=False)


MAX_CHAIN = 10_000  # a longer base chain is a corrupt landing zone (a cycle), not data


def from_meta(meta: dict[str, Any], directory: Path, home_root: Path, *, new: bool) -> Snapshot:
    path = directory / meta["filename"]
    own = tuple(directory / page["file"] for page in meta["pages"]) if "pages" in meta else (path,)
    pages = _base_pages(meta, directory) + own
    return Snapshot(
        snapshot_id=meta["snapshot_id"], city_id=meta["city_id"], source_id=meta["source_id"],
        kind=meta["kind"], location=meta["location"], format=meta["format"],
        content_sha256=meta["content_sha256"], size_bytes=meta["size_bytes"], path=path,
        relative_path=str(path.relative_to(home_root)), fetched_at=meta["fetched_at"],
        request=meta["request"], new=new, pages=pages, paged=bool(meta.get("paged", False)),
        base=meta.get("base"), depth=int(meta.get("depth", 0)), own_pages=own,
    )


def _base_pages(meta: dict[str, Any], directory: Path) -> tuple[Path, ...]:
    """The pages of a delta's base chain, oldest first (nothing for a full snapshot)."""
    chain: list[tuple[Path, ...]] = []
    seen: set[str] = set()
    while meta.get("base"):
        base = str(meta["base"])
        if base in seen or len(seen) >= MAX_CHAIN or Path(base).name != base:
            raise ValueError(f"{directory}: broken delta chain at base {base!r}")
        seen.add(base)
        directory = directory.parent / base
        meta_path = directory / "meta.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{meta_path}: the base snapshot of a delta is missing")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        chain.append(tuple(directory / page["file"] for page in meta["pages"]))
    return tuple(path for pages in reversed(chain) for path in pages)


def pages_sha256(pages: Sequence[Page], base: str | None = None) -> str:
    """The content hash of a snapshot made of these pages (see the module docstring)."""
    if len(pages) == 1 and base is None:
        return pages[0].sha256
    listing = "".join(f"{page.sha256}  {page.file}\n" for page in pages)
    if base is not None:
        listing += f"base {base}\n"
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()


class Staging:
    """A private, dot-prefixed folder next to a source's snapshots where a fetch writes its pages.

    It is renamed into place by `land_pages` (same file system, so the rename is atomic) and
    removed on any failure, so a failed fetch leaves nothing behind and changes nothing.
    """

    def __init__(self, raw_root: Path, city_id: str, source_id: str) -> None:
        self.raw_root = raw_root
        self.parent = raw_root / city_id / source_id
        self.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.parent))

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.discard()

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def file(self, name: str) -> Path:
        if not name or name.startswith(".") or Path(name).name != name:
            raise ValueError(f"unsafe page file name {name!r}")
        return self.path / name


def land_pages(
    staging: Staging,
    home_root: Path,
    *,
    city_id: str,
    source_id: str,
    kind: str,
    location: str,
    fmt: str,
    pages: Sequence[Page],
    request: dict[str, Any],
    paged: bool,
    base: Snapshot | None = None,
) -> Snapshot:
    """Turn a staging folder holding `pages` into a snapshot (or reuse the identical one).

    With `base`, the pages are a delta on top of that snapshot (see the module docstring).
    """
    if not pages:
        raise ValueError("a snapshot needs at least one page")
    names = [page.file for page in pages]
    if len(set(names)) != len(names) or sorted(p.name for p in staging.path.iterdir()) != sorted(names):
        raise ValueError(f"staging folder does not hold exactly the pages {names}")
    sha = pages_sha256(pages, base.content_sha256 if base is not None else None)
    target = _snapshot_dir(staging.raw_root, city_id, source_id, sha)
    if (target / "meta.json").exists():
        staging.discard()
        return _existing(target, home_root)
    meta: dict[str, Any] = {
        "snapshot_id": f"{city_id}/{source_id}/{sha[:16]}",
        "city_id": city_id, "source_id": source_id, "kind": kind, "location": location,
        "format": fmt, "content_sha256": sha, "size_bytes": sum(page.bytes for page in pages),
        "filename": pages[0].file, "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "request": request, "paged": paged, "pages": [page.record() for page in pages],
    }
    if base is not None:
        meta["base"] = base.content_sha256
        meta["depth"] = base.depth + 1
    try:
        (staging.path / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
        for item in staging.path.iterdir():
            os.chmod(item, 0o444)  # immutable by intent: read-only payloads
        os.rename(staging.path, target)
    except OSError as exc:
        staging.discard()
        # As in land_file: a concurrent writer landed identical content first.
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not (target / "meta.json").exists():
            raise
        return _existing(target, home_root)
    except BaseException:
        staging.discard()
        raise
    return from_meta(meta, target, home_root, new=True)


def snapshot_by_hash(raw_root: Path, home_root: Path, city_id: str, source_id: str, sha: str) -> Snapshot:
    """The landed snapshot with this content hash (it must exist)."""
    return _existing(_snapshot_dir(raw_root, city_id, source_id, sha), home_root)


def _existing(target: Path, home_root: Path) -> Snapshot:
    meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
    return from_meta(meta, target, home_root, new=False)


def pointer_path(raw_root: Path, city_id: str, source_id: str) -> Path:
    return raw_root / city_id / source_id / POINTER


def current_snapshot(raw_root: Path, home_root: Path, city_id: str, source_id: str) -> Snapshot | None:
    """The snapshot CURRENT points at (else the latest one), or None before the first fetch."""
    pointer = pointer_path(raw_root, city_id, source_id)
    if not pointer.exists():
        return latest_snapshot(raw_root, home_root, city_id, source_id)
    directory = pointer.parent / pointer.read_text(encoding="utf-8").strip()
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    return from_meta(meta, directory, home_root, new=False)


def latest_snapshot(raw_root: Path, home_root: Path, city_id: str, source_id: str) -> Snapshot | None:
    """The most recently fetched complete snapshot of a source (for `--offline` runs)."""
    folder = raw_root / city_id / source_id
    if not folder.is_dir():
        return None
    metas = []
    for child in folder.iterdir():
        meta_path = child / "meta.json"
        if not child.name.startswith(".") and meta_path.exists():
            metas.append((json.loads(meta_path.read_text(encoding="utf-8")), child))
    if not metas:
        return None
    meta, directory = max(metas, key=lambda item: (item[0]["fetched_at"], item[0]["content_sha256"]))
    return from_meta(meta, directory, home_root, new=False)
