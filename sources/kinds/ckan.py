"""CKAN Action API: `package_show` finds the resource; then `datastore_search` pages or the file.

DataStore paging follows `result._links.next` (CKAN 2.10+), else `offset` + `limit`, and stops on
an empty page or when `offset >= total`. Both `package_show` and the pages must say
`"success": true`. A token goes in `http.headers: {Authorization: "${CKAN_API_TOKEN}"}`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sources.config import CkanOptions, LoadedConfig, SourceConfig
from sources.http import Expect
from sources.kinds._session import SourceFetch, absolute
from sources.landing import Snapshot

DESCRIPTION = "CKAN dataset resource: package_show, then datastore_search pages or the resource file"


def fetch(loaded: LoadedConfig, source: SourceConfig, raw_root: Path, home_root: Path) -> Snapshot:
    options = source.ckan
    assert options is not None
    with SourceFetch(loaded, source, raw_root, home_root) as session:
        resource = _resource(session, source.location, options)
        described = {"package": options.package, "resource_id": resource.get("id"),
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
        rows = _datastore_pages(session, options, str(resource["id"]))
        return session.land(paged=True, mode="datastore", rows=rows, **described)


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
