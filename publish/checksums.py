"""SHA256SUMS: `sha256sum -c` over the release (role `checksums`).

It lists every file except itself and manifest.json: the manifest lists SHA256SUMS with its hash
(every manifest entry carries one), so SHA256SUMS cannot also cover the manifest. The manifest's
own hash is kept in the warehouse's `releases` table.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from publish import FileEntry, file_entry, write_bytes

NAME = "SHA256SUMS"
ROLE = "checksums"


def write_checksums(folder: Path, entries: Sequence[FileEntry]) -> list[FileEntry]:
    lines = [f"{e.sha256}  {e.path}\n" for e in sorted(entries, key=lambda e: e.path)]
    write_bytes(folder, NAME, "".join(lines).encode("utf-8"))
    return [file_entry(folder, NAME, ROLE, "SHA-256 of every other file except manifest.json (sha256sum -c)")]
