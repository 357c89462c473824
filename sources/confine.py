"""Where a `kind: file` source may read: regular files under the config's folder or `allowed_roots`.

A config is trusted to name its own data, not to read the rest of the machine: a location such as
`/proc/self/environ` (the environment, with every token), a device, a FIFO (a fetch that never
ends) or a symlink leading out of the allowed folders is refused before a byte is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sources.config import LoadedConfig, SourceConfig

# Pseudo file systems: never data, whatever allowed_roots says.
FORBIDDEN_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))


class OutsideRoots(ValueError):
    """A file source location the config may not read; the message says why."""


def allowed_roots(loaded: LoadedConfig) -> list[Path]:
    """The config's folder, then each `allowed_roots` entry (relative to the config), symlinks resolved."""
    base = loaded.path.parent
    roots = [base.resolve()]
    for entry in loaded.config.allowed_roots:
        path = Path(entry).expanduser()
        roots.append((path if path.is_absolute() else base / path).resolve())
    return roots


def forbidden(path: Path) -> Path | None:
    """The pseudo file system `path` lies in, if any (lexically, before and after resolving)."""
    for candidate in (Path(os.path.abspath(path)), path.resolve()):
        for root in FORBIDDEN_ROOTS:
            if candidate == root or candidate.is_relative_to(root):
                return root
    return None


def confined_path(loaded: LoadedConfig, source: SourceConfig) -> Path:
    """The real path of a file source, checked; raises OutsideRoots (or FileNotFoundError)."""
    location = Path(source.location).expanduser()
    given = Path(os.path.abspath(location if location.is_absolute() else loaded.path.parent / location))
    root = forbidden(given)
    if root is not None:
        raise OutsideRoots(f"{given} is under {root}, which holds no data files; refusing to read it")
    real = given.resolve()
    roots = allowed_roots(loaded)
    if not any(real == r or real.is_relative_to(r) for r in roots):
        via = f" (a symlink to {real})" if real != given else ""
        raise OutsideRoots(f"{given}{via} is outside the config's folder {roots[0]}"
                           + (f" and allowed_roots ({', '.join(map(str, roots[1:]))})" if roots[1:] else "")
                           + "; add its folder to the config's allowed_roots to read it")
    mode = os.stat(real).st_mode  # FileNotFoundError when missing; never opens (a FIFO would block)
    if not stat.S_ISREG(mode):
        kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "not a regular file")
        raise OutsideRoots(f"{given} is {kind}, not a regular file")
    return real
