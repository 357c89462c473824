"""OpenAQ API v3: one list endpoint (`locations`, `sensors/<id>/years`, ...) paged by page/limit.

Every request needs `X-API-Key`; it is read from the environment variable named by
`openaq.api_key_env` (default `OPENAQ_API_KEY`) unless `http.headers` sets X-API-Key itself, and is
redacted everywhere. Responses are `{"meta": {"page", "limit", "found"}, "results": [...]}`;
paging stops on a short page or once page * limit reaches `meta.found` (which v3 may give as a
string such as ">1000", then only the short page counts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sources.config import HttpOptions, LoadedConfig, SourceConfig
from sources.kinds._session import SourceFetch
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
        number, rows = 1, 0
        while True:
            params: dict[str, Any] = {**options.params, "limit": options.page_size, "page": number}
            page = session.page(source.location, params)
            payload = page.data
            if not (isinstance(payload, dict) and isinstance(payload.get("results"), list)):
                detail = payload.get("detail") or payload.get("message") if isinstance(payload, dict) else None
                raise session.error(page.url, f"OpenAQ error: {detail}" if detail
                                    else "expected {meta, results} from the OpenAQ API")
            results = payload["results"]
            rows += len(results)
            found = (payload.get("meta") or {}).get("found")
            if len(results) < options.page_size or (isinstance(found, int) and number * options.page_size >= found):
                break
            number += 1
        return session.land(paged=True, endpoint=options.endpoint, rows=rows)
