"""Source kinds: how a source is fetched into the landing zone. One module per kind.

Each kind module exposes `DESCRIPTION` (one line, shown by `citykpi sources`) and
`fetch(loaded, source, home) -> Snapshot`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from sources.kinds import file as file_kind

KINDS: dict[str, ModuleType] = {"file": file_kind}


def fetcher(kind: str) -> Callable[..., object]:
    fetch: Callable[..., object] = KINDS[kind].fetch
    return fetch
