"""Skip hashing a local source file again when its file-system stat shows it has not changed.

A run lands every file source, and landing hashes the whole file (a 1,000-city run hashed 9,000 files,
3.5 GB, on every run). After a file is landed, `<raw>/<city>/<source>/FILE_STAT.json` (beside
`CURRENT`) records each payload file's stat (path, size, modification and change times, inode,
device), when it was taken and the snapshot's content hash. The next fetch of the same files with an
equal stat returns that snapshot without reading the file.

Why an equal stat means equal bytes here, and where it would not (git's index makes the same bet):
- any write changes the change time (`st_ctime`), which no user call can set back; `touch -d` or
  `cp -p` can set the modification time back, not the change time;
- a replaced file (editors, `mv`, a new download) has another inode;
- a write within the same timestamp tick as the recorded stat would go unseen ("racily clean"): the
  record is only trusted when both times are older than the moment the stat was taken by more than
  `RACY_NS` (coarse file-system clocks, 2 s on FAT). A file written just before a run is hashed again
  on the next run, and trusted from then on.
The record lives in the home, never in the city's folder; a missing, unreadable or foreign record
means hashing, as before.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

RECORD = "FILE_STAT.json"
RACY_NS = 3 * 10**9  # a time this close to the stat's own moment may hide a write in the same tick


@dataclass(frozen=True)
class FileStat:
    path: str
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int


def stat_of(path: Path) -> FileStat:
    found = path.stat()
    return FileStat(str(path), found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino, found.st_dev)


def stats_now(paths: Sequence[Path]) -> tuple[list[FileStat], int]:
    """The files' stats and the moment taken (before they are read, so a write while hashing shows)."""
    taken_ns = time.time_ns()
    return [stat_of(path) for path in paths], taken_ns


def _record_path(raw_root: Path, city_id: str, source_id: str) -> Path:
    return raw_root / city_id / source_id / RECORD


def unchanged_hash(raw_root: Path, city_id: str, source_id: str, stats: Sequence[FileStat]) -> str | None:
    """The content hash recorded for exactly these stats, when the record can be trusted; else None."""
    try:
        record = json.loads(_record_path(raw_root, city_id, source_id).read_text(encoding="utf-8"))
        recorded = [FileStat(**entry) for entry in record["files"]]
        taken_ns = int(record["taken_ns"])
        sha = str(record["content_sha256"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if recorded != list(stats):
        return None
    if any(max(s.mtime_ns, s.ctime_ns) >= taken_ns - RACY_NS for s in recorded):
        return None  # racily clean: a write in the same tick as the stat would not show
    if not sha.isalnum() or not (raw_root / city_id / source_id / sha / "meta.json").is_file():
        return None
    return sha


def remember(raw_root: Path, city_id: str, source_id: str, stats: Sequence[FileStat], taken_ns: int,
             content_sha256: str) -> None:
    """Record the stats the snapshot was hashed from (replaced atomically; a failure only costs a hash)."""
    target = _record_path(raw_root, city_id, source_id)
    record = {"files": [asdict(s) for s in stats], "taken_ns": taken_ns, "content_sha256": content_sha256}
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".file-stat-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
        os.replace(tmp, target)
    except OSError:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
