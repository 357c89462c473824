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
from sources.kinds.ngsi_ld import count_header, entity_list
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
    with SourceFetch(loaded, source, raw_root, home_root, headers=headers) as session:
        offset = 0
        while True:
            params: dict[str, Any] = {"type": options.type, "q": options.q, "attrs": options.attrs,
                                      "options": "count,keyValues" if options.key_values else "count",
                                      "limit": options.page_size, "offset": offset}
            page = session.page(source.location, params)
            entities = entity_list(session, page.url, page.data, "NGSI v2")
            total = count_header(session, page.url, page.headers.get("fiware-total-count"))
            offset += len(entities)
            if not entities or (total is not None and offset >= total) or \
                    (total is None and len(entities) < options.page_size):
                break
        return session.land(paged=True, entity_type=options.type, entities=offset)
