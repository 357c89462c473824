"""Shared plumbing of the networked kinds: one HTTP client, one staging folder, one landing.

A kind opens a `SourceFetch`, asks for JSON pages (`page`) or one file (`download`), and calls
`land`. Pages are written straight into the staging folder as received; nothing reaches the
landing zone unless the whole fetch succeeds, and on any error the staging folder is removed, so
the previous snapshot and CURRENT stay as they were.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from sources.config import HttpOptions, LoadedConfig, SourceConfig
from sources.http import JSON, Expect, Fetched, HttpClient, PageGuard
from sources.landing import Page, Snapshot, Staging, current_snapshot, land_pages

log = logging.getLogger("citykpi.http")


class SourceFetch:
    def __init__(self, loaded: LoadedConfig, source: SourceConfig, raw_root: Path, home_root: Path, *,
                 headers: dict[str, str] | None = None, http: HttpOptions | None = None) -> None:
        self.loaded = loaded
        self.source = source
        self.home_root = home_root
        try:
            previous = current_snapshot(raw_root, home_root, loaded.city_id, source.id)
        except (OSError, ValueError) as exc:
            # A damaged landing zone (a delta whose base is gone) must not block a fresh full fetch.
            log.warning("source %r: previous snapshot unreadable (%s); fetching in full", source.id, exc)
            previous = None
        self.previous = previous
        self.client = HttpClient(source.id, http or source.http, home_url=source.location, previous=previous,
                                 headers=headers)
        self.guard = PageGuard(self.client)
        try:
            self.staging = Staging(raw_root, loaded.city_id, source.id)
        except BaseException:
            self.client.close()
            raise
        self.pages: list[Page] = []

    def __enter__(self) -> SourceFetch:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.client.close()
        self.staging.discard()  # after a successful land the folder was renamed away already

    def error(self, url: str, message: str) -> Exception:
        return self.client.error(url, message)

    def url(self, url: str, params: dict[str, Any] | None = None) -> str:
        return self.client.url(url, params)

    def metadata(self, url: str, params: dict[str, Any] | None = None) -> Any:
        """A JSON request that is not part of the snapshot (e.g. CKAN package_show)."""
        return self.client.get(url, params, expect=JSON).data

    def page(self, url: str, params: dict[str, Any] | None = None) -> Fetched:
        """The next JSON page, landed as page-NNNN.json; loops and page counts are bounded."""
        self.guard.check(self.client.url(url, params))
        dest = self.staging.file(f"page-{len(self.pages) + 1:04d}.json")
        fetched = self.client.get(url, params, expect=JSON, dest=dest)
        self.pages.append(fetched.page())
        return fetched

    def download(self, url: str, params: dict[str, Any] | None = None, *, expect: Expect,
                 filename: str | None = None) -> Fetched:
        """One file (a CSV, a workbook, an export): the snapshot's only page."""
        dest = self.staging.file(filename or file_name(url, self.source.resolved_format))
        fetched = self.client.get(url, params, expect=expect, dest=dest)
        self.pages.append(fetched.page())
        return fetched

    def discard_pages(self) -> None:
        """Forget the pages fetched so far (e.g. OpenDataSoft switching from records to an export)."""
        for page in self.pages:
            self.staging.file(page.file).unlink(missing_ok=True)
        self.pages.clear()
        self.guard.seen.clear()

    def staged(self) -> list[Path]:
        """The files of the pages fetched so far, in order."""
        return [self.staging.file(page.file) for page in self.pages]

    def land(self, *, paged: bool, base: Snapshot | None = None, **request: Any) -> Snapshot:
        """Land the pages fetched; with `base`, as a delta on top of that snapshot."""
        record = {"method": "GET", "headers": {**self.client.fixed_headers, **self.client.credentials.recorded},
                  **request}
        # meta.json never holds a secret value, whatever a kind put into the request or a page's URL.
        redact = self.client.redact
        pages = [dataclasses.replace(p, url=redact(p.url), headers=redact.data(p.headers)) for p in self.pages]
        return land_pages(self.staging, self.home_root, city_id=self.loaded.city_id, source_id=self.source.id,
                          kind=self.source.kind, location=self.source.location, fmt=self.source.resolved_format,
                          pages=pages, request=redact.data(record), paged=paged, base=base)

    def entity_pages(self, url: str, params: Callable[[int], dict[str, Any]], *, api: str, total_header: str,
                     page_size: int) -> int:
        """Page a limit/offset entity list (NGSI-LD, NGSI v2); returns the number of entities.

        `params(offset)` gives each page's query. Paging stops on an empty page, once `offset`
        reaches the count the broker sends in `total_header`, or, without that header, on a short page.
        """
        offset = 0
        while True:
            page = self.page(url, params(offset))
            entities = entity_list(self, page.url, page.data, api)
            total = count_header(self, page.url, page.headers.get(total_header.lower()))
            offset += len(entities)
            if not entities or (total is not None and offset >= total) or \
                    (total is None and len(entities) < page_size):
                return offset


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
    """A result-count header (NGSILD-Results-Count, Fiware-Total-Count) as a number; None when absent."""
    if value is None:
        return None
    if not value.strip().isdigit():
        raise session.error(url, f"result count header {value!r} is not a number")
    return int(value)


EXTENSIONS = {"csv": ".csv", "excel": ".xlsx", "parquet": ".parquet", "json": ".json", "geojson": ".geojson",
              "ngsi-ld": ".jsonld", "gtfs": ".zip", "xml": ".xml"}


def file_name(url: str, fmt: str) -> str:
    """A safe local file name for a download: the URL's last path segment, else `payload.<ext>`."""
    segment = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", segment).strip("._")[:120]
    if not name or name in ("meta.json", "CURRENT"):
        name = "payload"
    if "." not in name:
        name += EXTENSIONS.get(fmt, "")
    return name


def absolute(base: str, link: str) -> str:
    """Resolve a (possibly relative) next link against the URL it came from."""
    return urllib.parse.urljoin(base, link)
