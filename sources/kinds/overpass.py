"""OpenStreetMap Overpass API: parks and green areas as polygons (`target: areas`).

The query (Overpass QL, `[out:json]`, with `out geom;` or `out body; >; out skel qt;`) goes in
`GET <base>/interpreter?data=...`. Overpass reports a timeout or out-of-memory with HTTP 200, an
empty `elements` list and `"remark": "runtime error: ..."`: that is a FetchError, as is the HTML
page it serves for a syntax error (by content type) and a 429 when its slots are taken (retried).
"""

from __future__ import annotations

from pathlib import Path

from sources.config import LoadedConfig, SourceConfig
from sources.http import JSON
from sources.kinds._session import SourceFetch
from sources.landing import Snapshot

DESCRIPTION = "OpenStreetMap Overpass API query (parks, green areas) landed as Overpass JSON -> area polygons"


def fetch(loaded: LoadedConfig, source: SourceConfig, raw_root: Path, home_root: Path) -> Snapshot:
    options = source.overpass
    assert options is not None
    with SourceFetch(loaded, source, raw_root, home_root) as session:
        fetched = session.download(source.location, {"data": options.ql()}, expect=JSON, filename="overpass.json")
        payload = fetched.data
        if not isinstance(payload, dict) or not isinstance(payload.get("elements"), list):
            raise session.error(fetched.url, "expected Overpass JSON with an 'elements' list")
        remark = payload.get("remark")
        if isinstance(remark, str) and "error" in remark.lower():
            raise session.error(fetched.url, f"Overpass error served with HTTP {fetched.status}: {remark}")
        return session.land(paged=False, elements=len(payload["elements"]))
