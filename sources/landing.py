"""The raw landing zone: the exact bytes fetched, immutable, addressed by content hash.

A snapshot lives in `<home>/raw/<city_id>/<source_id>/<sha256>/` with the payload under its
original file name and `meta.json` (request metadata, fetch time, hash, size). Writing goes to a
temporary directory that is renamed into place, so a snapshot is either complete or absent, and
an existing snapshot is never rewritten: fetching unchanged content returns the existing one.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


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

    def record(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = self.relative_path
        data.pop("relative_path")
        data.pop("new")
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


def from_meta(meta: dict[str, Any], directory: Path, home_root: Path, *, new: bool) -> Snapshot:
    path = directory / meta["filename"]
    return Snapshot(
        snapshot_id=meta["snapshot_id"], city_id=meta["city_id"], source_id=meta["source_id"],
        kind=meta["kind"], location=meta["location"], format=meta["format"],
        content_sha256=meta["content_sha256"], size_bytes=meta["size_bytes"], path=path,
        relative_path=str(path.relative_to(home_root)), fetched_at=meta["fetched_at"],
        request=meta["request"], new=new,
    )


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
