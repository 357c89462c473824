"""OpenDataSoft Explore API v2.1: `records` pages, or the `exports` endpoint for bulk.

`records` returns at most 100 rows a page and only while offset + limit <= 10,000. Mode `auto`
reads the first page's `total_count` and switches to `exports/<format>` (the whole dataset in one
file) when there are more; mode `export` always exports (any format: csv, geojson, parquet, ...).
An API key goes in `http.headers: {Authorization: "Apikey ${ODS_API_KEY}"}`.
With `since_field` (mode `records`, append-only datasets) a later fetch adds
`<field> > date'<newest landed>'` to `where` and lands the answer as a delta.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sources.config import LoadedConfig, OpenDataSoftOptions, SourceConfig
from sources.http import Expect
from sources.kinds._session import SourceFetch
from sources.kinds._since import and_where, is_number, land_delta, parse_instant, plan, quoted, since_request
from sources.landing import Snapshot

DESCRIPTION = "OpenDataSoft Explore v2.1 dataset: records pages (<= 10,000 rows) or the exports endpoint"
RECORDS_WINDOW = 10_000  # offset + limit may not exceed this on /records


def fetch(loaded: LoadedConfig, source: SourceConfig, raw_root: Path, home_root: Path) -> Snapshot:
    options = source.opendatasoft
    assert options is not None
    with SourceFetch(loaded, source, raw_root, home_root) as session:
        since = plan(session, field=options.since_field, key_fields=options.since_key,
                     max_deltas=options.since_max_deltas)
        if since is not None:
            where = and_where(options.where, f"{since.field} > {_odsql_literal(since.after)}")
            rows = _records(session, source.location + "/records", options.model_copy(update={"where": where}))
            delta = land_delta(session, since, mode="records", rows=rows)
            if delta is not None:
                return delta
            session.discard_pages()
        if options.mode != "export":
            total = _records(session, source.location + "/records", options)
            if total is not None:
                return session.land(paged=True, mode="records", rows=total,
                                    **since_request(source, options.since_field))
            session.discard_pages()  # too many rows for /records: export instead
        http = source.http
        expect = Expect.for_format(source.resolved_format, http.content_types if http else None)
        session.download(f"{source.location}/exports/{source.export_format}", _query(options), expect=expect,
                         filename=f"export.{source.export_format}")
        return session.land(paged=False, mode="export", export_format=source.export_format)


def _odsql_literal(value: object) -> str:
    """ODSQL literal of a landed value: a number, date'...' for a date or time, else a string."""
    if is_number(value):
        return str(value)
    if parse_instant(value) is not None:
        return f"date{quoted(value)}"
    return quoted(value, '"')


def _query(options: OpenDataSoftOptions) -> dict[str, Any]:
    return {"select": options.select, "where": options.where, "order_by": options.order_by}


def _records(session: SourceFetch, url: str, options: OpenDataSoftOptions) -> int | None:
    """Page through /records; None when the dataset is larger than the records window (mode auto)."""
    offset = 0
    while True:
        params = {**_query(options), "limit": options.page_size, "offset": offset}
        page = session.page(url, params)
        payload = page.data
        if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
            detail = payload.get("message") or payload.get("error") if isinstance(payload, dict) else None
            raise session.error(page.url, f"expected {{total_count, results}}{': ' + str(detail) if detail else ''}")
        total = payload.get("total_count")
        if not isinstance(total, int):
            raise session.error(page.url, "records response has no integer total_count")
        if total > RECORDS_WINDOW:
            if options.mode == "auto":
                return None
            raise session.error(page.url, f"{total:,} records exceed the records API's {RECORDS_WINDOW:,}-row "
                                          "window; use opendatasoft.mode: export (or auto)")
        offset += len(payload["results"])
        if not payload["results"] or offset >= total:
            return offset
