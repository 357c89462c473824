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
With `temporal.since` a later fetch asks `timerel=after&timeAt=<newest instance landed>` and lands
the answer as a delta (`sources/kinds/_since.py`).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from sources.config import LoadedConfig, SourceConfig
from sources.kinds._session import SourceFetch, count_header, entity_list
from sources.kinds._since import land_delta, plan, since_request
from sources.landing import Snapshot
from sources.parsers.pages import temporal_rows

__all__ = ["CONTEXT_REL", "DESCRIPTION", "count_header", "entity_list", "fetch"]

DESCRIPTION = "FIWARE NGSI-LD broker entities of one type (limit/offset, count=true, @context via Link)"
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
# A temporal row is one attribute instance: entity, attribute and time identify it.
TEMPORAL_KEY = ("entity", "attribute", "observed_at")


def fetch(loaded: LoadedConfig, source: SourceConfig, raw_root: Path, home_root: Path) -> Snapshot:
    options = source.ngsi_ld
    assert options is not None
    headers = {"Accept": "application/json"}
    if options.context:
        headers["Link"] = f'<{options.context}>; rel="{CONTEXT_REL}"; type="application/ld+json"'
    if options.tenant:
        headers["NGSILD-Tenant"] = options.tenant

    def params(offset: int) -> dict[str, Any]:
        return {"type": options.type, "q": options.q, "attrs": options.attrs,
                "options": "keyValues" if options.key_values else None,
                "limit": options.page_size, "offset": offset, "count": "true"}

    with SourceFetch(loaded, source, raw_root, home_root, headers=headers) as session:
        if options.temporal is not None:
            return _temporal(session, source)
        entities = session.entity_pages(source.location, params, api="NGSI-LD", total_header="NGSILD-Results-Count",
                                        page_size=options.page_size)
        return session.land(paged=True, entity_type=options.type, entities=entities)


def _temporal(session: SourceFetch, source: SourceConfig) -> Snapshot:
    options = source.ngsi_ld
    assert options is not None and options.temporal is not None
    temporal = options.temporal
    rows = partial(temporal_rows, time_property=temporal.time_property)
    since = plan(session, field="observed_at" if temporal.since else None, key_fields=TEMPORAL_KEY,
                 max_deltas=temporal.since_max_deltas, records=rows)
    if since is not None:
        entities = _temporal_pages(session, source, "after", str(since.after), None)
        delta = land_delta(session, since, records=rows, entity_type=options.type, entities=entities, temporal=True)
        if delta is not None:
            return delta
        session.discard_pages()
    entities = _temporal_pages(session, source, temporal.timerel, temporal.time_at, temporal.end_time_at)
    return session.land(paged=True, entity_type=options.type, entities=entities, temporal=True,
                        **since_request(source, "observed_at" if temporal.since else None))


def _temporal_pages(session: SourceFetch, source: SourceConfig, timerel: str, time_at: str,
                    end_time_at: str | None) -> int:
    """Every page of a temporal query (Mintaka's pageAnchor paging); returns the number of entities."""
    options = source.ngsi_ld
    assert options is not None and options.temporal is not None
    temporal = options.temporal
    anchor: str | None = None
    entities = 0
    while True:
        params: dict[str, Any] = {"type": options.type, "q": options.q, "attrs": temporal.attrs,
                                  "timerel": timerel, "timeAt": time_at,
                                  "endTimeAt": end_time_at,
                                  "lastN": temporal.last_n, "timeproperty": temporal.time_property,
                                  "pageSize": temporal.page_size, "options": "count", "pageAnchor": anchor}
        page = session.page(source.location, params)
        entities += len(entity_list(session, page.url, page.data, "NGSI-LD temporal"))
        anchor = page.headers.get("next-page") or None
        if anchor is None:
            return entities
