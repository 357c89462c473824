"""OpenAQ API v3: one list endpoint (`locations`, `sensors/<id>/years`, ...) paged by page/limit.

Every request needs `X-API-Key`; it is read from the environment variable named by
`openaq.api_key_env` (default `OPENAQ_API_KEY`) unless `http.headers` sets X-API-Key itself, and is
redacted everywhere. Responses are `{"meta": {"page", "limit", "found"}, "results": [...]}`;
paging stops on a short page or once page * limit reaches `meta.found` (which v3 may give as a
string such as ">1000", then only the short page counts).
With `since_field` (e.g. `period.datetimeFrom.utc` of `sensors/<id>/measurements`) a later fetch
sends `datetime_from` (or `date_from`) one second (one day) after the newest value landed, since
OpenAQ's bound is inclusive, and lands the answer as a delta.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sources.config import HttpOptions, LoadedConfig, OpenAqOptions, SourceConfig
from sources.kinds._session import SourceFetch
from sources.kinds._since import land_delta, parse_instant, plan, since_request
from sources.landing import Snapshot

DESCRIPTION = "OpenAQ API v3 list endpoint (locations -> stations, sensors/<id>/years ...), page/limit, X-API-Key"


def fetch(loaded: LoadedConfig, source: SourceConfig, raw_root: Path, home_root: Path) -> Snapshot:
    options = source.openaq
    assert options is not None
    http = source.http or HttpOptions()
    if not any(name.lower() == "x-api-key" for name in http.headers):
        http = http.model_copy(update={"headers": {**http.headers, "X-API-Key": f"${{{options.api_key_env}}}"}})
    with SourceFetch(loaded, source, raw_root, home_root, http=http, headers={"Accept": "application/json"}) \
            as session:
        # A measurement is one parameter at one time: that identifies it when revised in place.
        key = options.since_key or ([options.since_field, "parameter.id"] if options.since_field else None)
        since = plan(session, field=options.since_field, key_fields=key, max_deltas=options.since_max_deltas)
        bound = _next_bound(options, since.after) if since is not None else None
        if since is not None and bound is not None:
            rows = _pages(session, source.location, options, {**options.params, options.since_param: bound})
            delta = land_delta(session, since, endpoint=options.endpoint, rows=rows)
            if delta is not None:
                return delta
            session.discard_pages()
        rows = _pages(session, source.location, options, options.params)
        return session.land(paged=True, endpoint=options.endpoint, rows=rows,
                            **since_request(source, options.since_field))


def _next_bound(options: OpenAqOptions, after: object) -> str | None:
    """The inclusive datetime_from / date_from just after the newest value landed (None: not a time)."""
    instant = parse_instant(after)
    if instant is None:
        return None
    if options.since_param == "date_from":
        return (instant.date() + timedelta(days=1)).isoformat()
    return (instant + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")


def _pages(session: SourceFetch, url: str, options: OpenAqOptions, query: dict[str, Any]) -> int:
    """Every page of the query (page from 1); returns the number of results."""
    number, rows = 1, 0
    while True:
        params: dict[str, Any] = {**query, "limit": options.page_size, "page": number}
        page = session.page(url, params)
        payload = page.data
        if not (isinstance(payload, dict) and isinstance(payload.get("results"), list)):
            detail = payload.get("detail") or payload.get("message") if isinstance(payload, dict) else None
            raise session.error(page.url, f"OpenAQ error: {detail}" if detail
                                else "expected {meta, results} from the OpenAQ API")
        results = payload["results"]
        rows += len(results)
        found = (payload.get("meta") or {}).get("found")
        if len(results) < options.page_size or (isinstance(found, int) and number * options.page_size >= found):
            return rows
        number += 1
