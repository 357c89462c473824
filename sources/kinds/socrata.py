"""Socrata SODA 2: `/resource/<id>.json` paged with `$limit`/`$offset` in stable `$order=:id`.

Paging stops on a short (or empty) page, as sodapy's `get_all` does. An app token goes in
`http.headers: {X-App-Token: "${SOCRATA_APP_TOKEN}"}`; without one the IP-shared throttle applies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sources.config import LoadedConfig, SourceConfig
from sources.kinds._session import SourceFetch
from sources.landing import Snapshot

DESCRIPTION = "Socrata SODA dataset (/resource/<id>.json), paged by $limit/$offset in :id order"


def fetch(loaded: LoadedConfig, source: SourceConfig, raw_root: Path, home_root: Path) -> Snapshot:
    options = source.socrata
    assert options is not None
    url = source.location
    with SourceFetch(loaded, source, raw_root, home_root) as session:
        offset = 0
        while True:
            params: dict[str, Any] = {"$select": options.select, "$where": options.where, "$order": ":id",
                                      "$limit": options.page_size, "$offset": offset}
            page = session.page(url, params)
            rows = page.data
            if isinstance(rows, dict) and rows.get("error"):
                raise session.error(page.url, f"Socrata error: {rows.get('message', rows)}")
            if not isinstance(rows, list):
                raise session.error(page.url, f"expected a JSON array of rows, got {type(rows).__name__}")
            if len(rows) < options.page_size:
                break
            offset += len(rows)
        return session.land(paged=True, dataset=options.dataset, page_size=options.page_size,
                            rows=offset + len(rows))
