"""Source kinds: how a source is fetched into the landing zone. One module per kind.

Each kind module exposes `DESCRIPTION` (one line, shown by `citykpi sources`) and
`fetch(loaded, source, raw_root, home_root) -> Snapshot`. The networked kinds share the HTTP
client in `sources/http.py` and the staging/landing plumbing in `_session.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from sources.kinds import ckan, eurostat, ngsi_ld, ngsi_v2, openaq, opendatasoft, overpass, socrata, worldbank
from sources.kinds import file as file_kind
from sources.kinds import http as http_kind

KINDS: dict[str, ModuleType] = {
    "file": file_kind,
    "http": http_kind,
    "ckan": ckan,
    "socrata": socrata,
    "opendatasoft": opendatasoft,
    "worldbank": worldbank,
    "ngsi_ld": ngsi_ld,
    "ngsi_v2": ngsi_v2,
    "openaq": openaq,
    "eurostat": eurostat,
    "overpass": overpass,
}


def fetcher(kind: str) -> Callable[..., object]:
    fetch: Callable[..., object] = KINDS[kind].fetch
    return fetch
