"""FIWARE NGSI v2 (Orion Context Broker): entities of one type.

`GET /v2/entities?type=&limit=&offset=&options=count[,keyValues]` with the tenant in
`Fiware-Service` / `Fiware-ServicePath`; the total comes in `Fiware-Total-Count`. Orion caps
`limit` at 1000 and answers an offset past the end with `[]`. Error bodies
(`{"error": "BadRequest", "description": ...}`) are FetchErrors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sources.config import LoadedConfig, SourceConfig
from sources.kinds._session import SourceFetch
from sources.landing import Snapshot

DESCRIPTION = "FIWARE NGSI v2 (Orion) entities of one type (limit/offset, Fiware-Total-Count, Fiware-Service)"


def fetch(loaded: LoadedConfig, source: SourceConfig, raw_root: Path, home_root: Path) -> Snapshot:
    options = source.ngsi_v2
    assert options is not None
    headers = {"Accept": "application/json"}
    if options.service:
        headers["Fiware-Service"] = options.service
    if options.service_path:
        headers["Fiware-ServicePath"] = options.service_path

    def params(offset: int) -> dict[str, Any]:
        return {"type": options.type, "q": options.q, "attrs": options.attrs,
                "options": "count,keyValues" if options.key_values else "count",
                "limit": options.page_size, "offset": offset}

    with SourceFetch(loaded, source, raw_root, home_root, headers=headers) as session:
        entities = session.entity_pages(source.location, params, api="NGSI v2", total_header="Fiware-Total-Count",
                                        page_size=options.page_size)
        return session.land(paged=True, entity_type=options.type, entities=entities)
