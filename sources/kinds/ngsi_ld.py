"""FIWARE NGSI-LD context broker (Orion-LD, Scorpio, Stellio): entities of one type.

`GET /ngsi-ld/v1/entities?type=&limit=&offset=&count=true`; the broker answers with a JSON array
and the total in the `NGSILD-Results-Count` header. Paging stops at that count, or on a short or
empty page when the broker does not send it. The `@context` goes in a `Link` header (with
`Accept: application/json` the entities then come without an embedded `@context`). Problem-details
errors (`{"type": ".../errors/BadRequestData", "title", "detail"}`) are FetchErrors.

With `ngsi_ld.temporal` the kind reads attribute histories from the temporal API
(`/temporal/entities?type=&timerel=&timeAt=&pageSize=&options=count`) instead. Mintaka pages by
entity: a `206 Partial Content` answer carries `Content-Range: date-time <from>-<to>/<lastN>` and
`Next-Page: <entity id>`, which is sent back as `pageAnchor`; the last page has no `Next-Page`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sources.config import LoadedConfig, SourceConfig
from sources.kinds._session import SourceFetch
from sources.landing import Snapshot

DESCRIPTION = "FIWARE NGSI-LD broker entities of one type (limit/offset, count=true, @context via Link)"
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"


def fetch(loaded: LoadedConfig, source: SourceConfig, raw_root: Path, home_root: Path) -> Snapshot:
    options = source.ngsi_ld
    assert options is not None
    headers = {"Accept": "application/json"}
    if options.context:
        headers["Link"] = f'<{options.context}>; rel="{CONTEXT_REL}"; type="application/ld+json"'
    if options.tenant:
        headers["NGSILD-Tenant"] = options.tenant
    with SourceFetch(loaded, source, raw_root, home_root, headers=headers) as session:
        if options.temporal is not None:
            return _temporal(session, source)
        offset = 0
        while True:
            params: dict[str, Any] = {"type": options.type, "q": options.q, "attrs": options.attrs,
                                      "options": "keyValues" if options.key_values else None,
                                      "limit": options.page_size, "offset": offset, "count": "true"}
            page = session.page(source.location, params)
            entities = entity_list(session, page.url, page.data, "NGSI-LD")
            total = count_header(session, page.url, page.headers.get("ngsild-results-count"))
            offset += len(entities)
            if not entities or (total is not None and offset >= total) or \
                    (total is None and len(entities) < options.page_size):
                break
        return session.land(paged=True, entity_type=options.type, entities=offset)


def _temporal(session: SourceFetch, source: SourceConfig) -> Snapshot:
    options = source.ngsi_ld
    assert options is not None and options.temporal is not None
    temporal = options.temporal
    anchor: str | None = None
    entities = 0
    while True:
        params: dict[str, Any] = {"type": options.type, "q": options.q, "attrs": temporal.attrs,
                                  "timerel": temporal.timerel, "timeAt": temporal.time_at,
                                  "endTimeAt": temporal.end_time_at, "lastN": temporal.last_n,
                                  "timeproperty": temporal.time_property, "pageSize": temporal.page_size,
                                  "options": "count", "pageAnchor": anchor}
        page = session.page(source.location, params)
        entities += len(entity_list(session, page.url, page.data, "NGSI-LD temporal"))
        anchor = page.headers.get("next-page") or None
        if anchor is None:
            break
    return session.land(paged=True, entity_type=options.type, entities=entities, temporal=True)


def entity_list(session: SourceFetch, url: str, payload: Any, api: str) -> list[Any]:
    """The page's entities, or a FetchError for an NGSI error body served with a 2xx status."""
    if isinstance(payload, dict):
        detail = payload.get("detail") or payload.get("description") or payload.get("title") \
            or payload.get("error")
        raise session.error(url, f"{api} error: {detail}" if detail else f"expected a JSON array of {api} entities")
    if not isinstance(payload, list) or not all(isinstance(e, dict) for e in payload):
        raise session.error(url, f"expected a JSON array of {api} entities")
    return payload


def count_header(session: SourceFetch, url: str, value: str | None) -> int | None:
    if value is None:
        return None
    if not value.strip().isdigit():
        raise session.error(url, f"result count header {value!r} is not a number")
    return int(value)
