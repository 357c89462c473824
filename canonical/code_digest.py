"""A digest of our own packages' files: what decides whether kept results were made by the same code.

Used by the fingerprints that let a run keep earlier results (kpis/state.py, quality/state.py) and by
the release's per-city pieces (publish/pieces.py): any edit to a package's code or data files (a
formula, a suite, the catalogue, a template) gives another digest, so nothing made by other code is
reused.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

SUFFIXES = (".py", ".yaml", ".csv", ".sql", ".txt")


@cache
def package_digest(*packages: str) -> str:
    """SHA-256 over every code and data file of these packages (names and bytes, in a stable order)."""
    digest = hashlib.sha256()
    for package in packages:
        root = resources.files(package)
        stack, files = [root], []
        while stack:
            folder = stack.pop()
            for entry in folder.iterdir():
                if entry.is_dir():
                    if entry.name != "__pycache__":
                        stack.append(entry)
                elif entry.name.endswith(SUFFIXES):
                    files.append(entry)
        for entry in sorted(files, key=str):
            digest.update(f"{package}:{str(entry).removeprefix(str(root))}\n".encode())
            digest.update(entry.read_bytes())
    return digest.hexdigest()
