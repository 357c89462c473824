"""Socrata SODA 2: `/resource/<id>.json` paged with `$limit`/`$offset` in stable `$order=:id`.

Paging stops on a short (or empty) page, as sodapy's `get_all` does. An app token goes in
`http.headers: {X-App-Token: "${SOCRATA_APP_TOKEN}"}`; without one the IP-shared throttle applies.
With `since_field` (append-only feeds) a later fetch adds `<field> > '<newest landed>'` to `$where`
and lands the answer as a delta (`sources/kinds/_since.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sources.config import LoadedConfig, SocrataOptions, SourceConfig
from sources.kinds._session import SourceFetch
from sources.kinds._since import and_where, is_number, land_delta, plan, quoted, since_request
from sources.landing import Snapshot

DESCRIPTION = "Socrata SODA dataset (/resource/<id>.json), paged by $limit/$offset in :id order"


def fetch(loaded: LoadedConfig, source: SourceConfig, raw_root: Path, home_root: Path) -> Snapshot:
    options = source.socrata
    assert options is not None
    with SourceFetch(loaded, source, raw_root, home_root) as session:
        since = plan(session, field=options.since_field, key_fields=options.since_key,
                     max_deltas=options.since_max_deltas)
        if since is not None:
            after = str(since.after) if is_number(since.after) else quoted(since.after)
            rows = _pages(session, source.location, options, and_where(options.where, f"{since.field} > {after}"))
            delta = land_delta(session, since, dataset=options.dataset, page_size=options.page_size, rows=rows)
            if delta is not None:
                return delta
            session.discard_pages()
        rows = _pages(session, source.location, options, options.where)
        return session.land(paged=True, dataset=options.dataset, page_size=options.page_size, rows=rows,
                            **since_request(source, options.since_field))


def _pages(session: SourceFetch, url: str, options: SocrataOptions, where: str | None) -> int:
    """Fetch every page of the query; returns the number of rows."""
    offset = 0
    while True:
        params: dict[str, Any] = {"$select": options.select, "$where": where, "$order": ":id",
                                  "$limit": options.page_size, "$offset": offset}
        page = session.page(url, params)
        rows = page.data
        if isinstance(rows, dict) and rows.get("error"):
            raise session.error(page.url, f"Socrata error: {rows.get('message', rows)}")
        if not isinstance(rows, list):
            raise session.error(page.url, f"expected a JSON array of rows, got {type(rows).__name__}")
        offset += len(rows)
        if len(rows) < options.page_size:
            return offset
