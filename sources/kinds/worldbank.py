"""World Bank Indicators API v2: `[meta, data]` pages of one indicator for one or more countries.

Errors come back with HTTP 200 as `[{"message": [{"id", "key", "value"}]}]`; they are FetchErrors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sources.config import LoadedConfig, SourceConfig
from sources.kinds._session import SourceFetch
from sources.landing import Snapshot

DESCRIPTION = "World Bank Indicators API v2 (one indicator, [meta, data] pages by page/per_page)"


def fetch(loaded: LoadedConfig, source: SourceConfig, raw_root: Path, home_root: Path) -> Snapshot:
    options = source.worldbank
    assert options is not None
    with SourceFetch(loaded, source, raw_root, home_root) as session:
        number, pages, total = 1, 1, 0
        while number <= pages:
            params: dict[str, Any] = {"format": "json", "date": options.date, "per_page": options.per_page,
                                      "page": number}
            page = session.page(source.location, params)
            meta = _meta(session, page.url, page.data)
            pages, total = int(meta.get("pages") or 0), int(meta.get("total") or 0)
            if int(meta.get("page") or number) != number:
                raise session.error(page.url, f"asked for page {number}, the API answered page {meta.get('page')}")
            number += 1
        return session.land(paged=True, indicator=options.indicator, country=options.country, rows=total)


def _meta(session: SourceFetch, url: str, payload: Any) -> dict[str, Any]:
    if isinstance(payload, list) and payload and isinstance(payload[0], dict) and "message" in payload[0]:
        messages = payload[0]["message"]
        text = "; ".join(f"{m.get('key', '')}: {m.get('value', '')}".strip(": ") for m in messages
                         if isinstance(m, dict)) if isinstance(messages, list) else str(messages)
        raise session.error(url, f"World Bank API error: {text}")
    if not (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[0], dict)
            and "pages" in payload[0] and (payload[1] is None or isinstance(payload[1], list))):
        raise session.error(url, "expected the World Bank [meta, data] array")
    return payload[0]
