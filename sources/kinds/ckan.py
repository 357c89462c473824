"""CKAN Action API: `package_show` finds the resource; then `datastore_search` pages or the file.

DataStore paging follows `result._links.next` (CKAN 2.10+), else `offset` + `limit`, and stops on
an empty page or when `offset >= total`. Both `package_show` and the pages must say
`"success": true`. A token goes in `http.headers: {Authorization: "${CKAN_API_TOKEN}"}`.

`datastore_search` filters only on equality, so with `since_field` (append-only DataStore tables) a
later fetch pages `datastore_search_sql` (`SELECT * ... WHERE "<field>" > '<newest landed>' ORDER BY
"_id" LIMIT/OFFSET`, plus the equality filters) and lands the answer as a delta. That endpoint is
off unless the portal sets `ckan.datastore.sqlsearch.enabled`; its refusal is a FetchError.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from canonical.sqltext import ident, literal
from sources.config import CkanOptions, LoadedConfig, SourceConfig
from sources.http import Expect
from sources.kinds._session import SourceFetch, absolute
from sources.kinds._since import land_delta, plan, since_request
from sources.landing import Snapshot

DESCRIPTION = "CKAN dataset resource: package_show, then datastore_search pages or the resource file"


def fetch(loaded: LoadedConfig, source: SourceConfig, raw_root: Path, home_root: Path) -> Snapshot:
    options = source.ckan
    assert options is not None
    with SourceFetch(loaded, source, raw_root, home_root) as session:
        resource = _resource(session, source.location, options)
        described: dict[str, Any] = {"package": options.package, "resource_id": resource.get("id"),
                     "resource_last_modified": resource.get("last_modified") or resource.get("metadata_modified")}
        if options.mode == "download":
            url = resource.get("url")
            if not isinstance(url, str) or not url:
                raise session.error(source.location, f"resource {options.resource!r} has no download url")
            http = source.http
            session.download(absolute(source.location, url), expect=Expect.for_format(
                source.resolved_format, http.content_types if http else None))
            return session.land(paged=False, mode="download", resource_url=url, **described)
        if resource.get("datastore_active") is False:
            raise session.error(source.location, f"resource {options.resource!r} is not in the DataStore; "
                                                 "use ckan.mode: download (with format)")
        resource_id = str(resource["id"])
        # `_id` is the DataStore's own record id: an updated record keeps it.
        since = plan(session, field=options.since_field, key_fields=options.since_key or ["_id"],
                     max_deltas=options.since_max_deltas)
        if since is not None:
            rows = _sql_pages(session, options, resource_id, since.field, since.after)
            delta = land_delta(session, since, mode="datastore_sql", rows=rows, **described)
            if delta is not None:
                return delta
            session.discard_pages()
        rows = _datastore_pages(session, options, resource_id)
        return session.land(paged=True, mode="datastore", rows=rows, **described,
                            **since_request(source, options.since_field))


def _resource(session: SourceFetch, url: str, options: CkanOptions) -> dict[str, Any]:
    package = _result(session, url, session.metadata(url))
    resources = package.get("resources") if isinstance(package, dict) else None
    if not isinstance(resources, list):
        raise session.error(url, "package_show result has no 'resources' list")
    for resource in resources:
        if isinstance(resource, dict) and options.resource in (resource.get("id"), resource.get("name")):
            return resource
    names = [r.get("name") or r.get("id") for r in resources if isinstance(r, dict)]
    raise session.error(url, f"no resource {options.resource!r} in package {options.package!r}; it has {names}")


def _result(session: SourceFetch, url: str, payload: Any) -> Any:
    if not isinstance(payload, dict) or "success" not in payload:
        raise session.error(url, "not a CKAN Action API response (no 'success')")
    if payload["success"] is not True:
        error = payload.get("error") or {}
        detail = error.get("message") or error if isinstance(error, dict) else error
        kind = error.get("__type", "error") if isinstance(error, dict) else "error"
        raise session.error(url, f"CKAN {kind}: {detail}")
    return payload.get("result")


def _datastore_pages(session: SourceFetch, options: CkanOptions, resource_id: str) -> int:
    base = options.base_url.rstrip("/") + "/api/3/action/datastore_search"
    first: dict[str, Any] = {
        "resource_id": resource_id, "limit": options.page_size, "offset": 0,
        "filters": json.dumps(options.filters, sort_keys=True) if options.filters else None}
    url, offset, rows = base, 0, 0
    params: dict[str, Any] | None = first
    while True:
        page = session.page(url, params)
        result = _result(session, page.url, page.data)
        records = result.get("records") if isinstance(result, dict) else None
        if not isinstance(records, list):
            raise session.error(page.url, "datastore_search result has no 'records' list")
        rows += len(records)
        offset += len(records)
        total = result.get("total")
        if not records or (isinstance(total, int) and offset >= total):
            return rows
        link = (result.get("_links") or {}).get("next")
        if isinstance(link, str) and link:
            url, params = absolute(page.url, link), None  # the link carries every parameter
        else:
            url, params = base, {**first, "offset": offset}


def _sql_pages(session: SourceFetch, options: CkanOptions, resource_id: str, field: str, after: object) -> int:
    """The records after `after`, paged by LIMIT/OFFSET in `_id` order until a short page."""
    url = options.base_url.rstrip("/") + "/api/3/action/datastore_search_sql"
    # Values compare as text, as PostgreSQL casts a quoted literal to the column's type.
    conditions = [f"{ident(field)} > {literal(str(after))}"]
    conditions += [f"{ident(key)} = {literal(str(value))}" for key, value in sorted((options.filters or {}).items())]
    select = f"SELECT * FROM {ident(resource_id)} WHERE {' AND '.join(conditions)} ORDER BY {ident('_id')}"
    offset = 0
    while True:
        page = session.page(url, {"sql": f"{select} LIMIT {options.page_size} OFFSET {offset}"})
        result = _result(session, page.url, page.data)
        records = result.get("records") if isinstance(result, dict) else None
        if not isinstance(records, list):
            raise session.error(page.url, "datastore_search_sql result has no 'records' list")
        offset += len(records)
        if len(records) < options.page_size:
            return offset
