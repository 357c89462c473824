"""Loopback replay handlers and helpers for the connector tests.

A real HTTP server (pytest-httpserver: werkzeug in a thread, bound to 127.0.0.1 on a free port)
replays recorded payloads with each platform's paging behaviour. The payloads come from one of two
layers (`layers.py`; each payload test runs once per layer): `bundled`, small invented payloads in
`tests/connectors/payloads/` (written by its `make_payloads.py`, always present, so a user's checkout
tests its connectors), and `shared`, the real recordings in `../shared/fixtures/payloads/` and
`../shared/fixtures/cities/new_york/`, read in place, never copied, and skipped with a clear reason when
absent (`tests/shared_data.py`). Figures a test expects from the payloads come from the layer
(`payloads/expected.json`, or the literals in `layers.py`). Nothing here reaches the internet.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from sources.config import LoadedConfig, load_city_config
from sources.fetch import fetch_source
from sources.landing import Snapshot

# Tiny waits and timeouts so fault tests take milliseconds, not minutes.
FAST_HTTP: dict[str, Any] = {"timeout": 2.0, "attempts": 3, "retry_wait_initial": 0.01, "retry_wait_max": 0.05,
                             "retry_jitter": 0.01, "retry_after_max": 0.05, "retry_total": 30}
JSON_TYPE = "application/json;charset=utf-8"

Handler = Callable[[Request], Response]


# ---- city configs -----------------------------------------------------------------------------


def make_city(folder: Path, sources: list[dict[str, Any]], *, years: list[int] | None = None,
              country: str = "US", city_id: str = "replay-city") -> LoadedConfig:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"config_version": 1,
              "city": {"id": city_id, "name": "Replay City", "country": country,
                       "reporting_years": years or [2019, 2020]},
              "sources": sources}
    path = folder / "city.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return load_city_config(path)


def fetch(loaded: LoadedConfig, home: Path, source_id: str | None = None) -> Snapshot:
    source = next(s for s in loaded.config.sources if source_id in (None, s.id))
    return fetch_source(loaded, source, home / "raw", home)


def observations(variable: str, unit: str, *, year_field: str = "year", field: str = "value") -> dict[str, Any]:
    return {"year_field": year_field, "variables": {field: {"variable": variable, "unit": unit}}}


def snapshot_dirs(home: Path, city: str, source: str) -> list[str]:
    folder = home / "raw" / city / source
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.exists() else []


def hidden_entries(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*")] if root.exists() else []


def tree_state(root: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file()}


# ---- responses --------------------------------------------------------------------------------


def json_response(body: bytes | Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    return Response(data, status=status, headers=headers or {}, content_type=JSON_TYPE)


def with_etag(request: Request, body: bytes, etag: str, content_type: str = JSON_TYPE) -> Response:
    """Serve `body` with an ETag, or 304 when the client already has it."""
    if request.headers.get("If-None-Match") == etag:
        return Response(status=304, headers={"ETag": etag})
    return Response(body, status=200, headers={"ETag": etag}, content_type=content_type)


class Scripted:
    """Answers each request with the next response factory; the last one repeats."""

    def __init__(self, *factories: Handler) -> None:
        self.factories = list(factories)
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        with self.lock:
            index = min(self.calls, len(self.factories) - 1)
            self.calls += 1
        return self.factories[index](request)


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    text = path.read_text(encoding="utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


# ---- platform replays -------------------------------------------------------------------------


def socrata_files(pages: dict[int, bytes], *, etag: bool = False) -> Handler:
    """Socrata /resource/<id>.json answering each $offset with recorded page bytes ([] past the end)."""

    def handle(request: Request) -> Response:
        assert request.args.get("$order") == ":id", request.url
        offset = int(request.args.get("$offset", "0"))
        body = pages.get(offset, b"[]")
        if etag:
            return with_etag(request, body, f'"p{offset}-{len(body)}"')
        return json_response(body)

    return handle


def socrata_rows(rows: list[dict[str, Any]]) -> Handler:
    """Socrata over a list of rows: $limit/$offset slices, values as strings (as SODA serves them)."""

    def handle(request: Request) -> Response:
        limit = int(request.args.get("$limit", "1000"))
        offset = int(request.args.get("$offset", "0"))
        page = [{k: str(v) for k, v in row.items()} for row in rows[offset:offset + limit]]
        return json_response(page, headers={"X-SODA2-Fields": json.dumps(list(rows[0]) if rows else [])})

    return handle


def ckan_package_show(payloads: Path, server: HTTPServer, *, datastore: bool = True,
                      download_path: str | None = None) -> dict[str, Any]:
    """The layer's package_show (real data.gov.uk or bundled), its one resource made DataStore-active or
    downloadable here."""
    package = json.loads((payloads / "ckan" / "datagovuk_package_show.json").read_text(encoding="utf-8"))
    resource = package["result"]["resources"][0]
    resource["datastore_active"] = datastore
    if download_path is not None:
        resource["url"] = server.url_for(download_path)
    return package


def ckan_datastore(resource_id: str, records: list[dict[str, Any]], *, links: bool = True,
                   loop: bool = False) -> Handler:
    """datastore_search with filters/limit/offset, `total` and `_links.next` as CKAN 2.10+ returns them."""

    def handle(request: Request) -> Response:
        if request.args.get("resource_id") != resource_id:
            return json_response({"success": False, "error": {"__type": "Not Found Error",
                                                              "message": "Not found: Resource was not found."}},
                                 status=404)
        limit = int(request.args.get("limit", "100"))
        offset = int(request.args.get("offset", "0"))
        filters = json.loads(request.args.get("filters", "{}"))
        matched = [r for r in records if all(str(r.get(k)) == str(v) for k, v in filters.items())]
        page = matched[offset:offset + limit]
        query: dict[str, Any] = {"resource_id": resource_id, "limit": limit, "offset": offset + limit}
        if loop:  # the same first page again, its parameters in another order
            query = {"offset": 0, "limit": limit, "resource_id": resource_id}
        if filters:
            query["filters"] = json.dumps(filters)
        result: dict[str, Any] = {
            "resource_id": resource_id, "fields": [{"id": "_id", "type": "int"}] + [
                {"id": k, "type": "text"} for k in (records[0] if records else {}) if k != "_id"],
            "records": page, "total": len(matched), "total_was_estimated": False, "limit": limit,
            "offset": offset, "filters": filters, "records_format": "objects", "include_total": True}
        if links:
            result["_links"] = {"start": f"/api/3/action/datastore_search?resource_id={resource_id}",
                                "next": f"/api/3/action/datastore_search?{urlencode(query)}"}
        return json_response({"help": "http://127.0.0.1/api/3/action/help_show?name=datastore_search",
                              "success": True, "result": result})

    return handle


def ods_records(records: list[dict[str, Any]], *, total_count: int | None = None) -> Handler:
    """Explore v2.1 /records: limit <= 100 and offset + limit <= 10,000, as the API enforces."""

    def handle(request: Request) -> Response:
        limit = int(request.args.get("limit", "10"))
        offset = int(request.args.get("offset", "0"))
        if limit > 100 or offset + limit > 10_000:
            error = {"message": "Invalid value for limit/offset", "error_code": "InvalidRESTParameterError"}
            return json_response(error, status=400)
        total = len(records) if total_count is None else total_count
        return json_response({"total_count": total, "results": records[offset:offset + limit]})

    return handle


def world_bank_pages(indicator: str, name: str, country: tuple[str, str, str],
                     values: dict[int, float | None]) -> Handler:
    """Indicators API v2 built from its documented shape: [meta, data], newest first, page/per_page."""
    iso2, iso3, country_name = country
    items = [{"indicator": {"id": indicator, "value": name}, "country": {"id": iso2, "value": country_name},
              "countryiso3code": iso3, "date": str(year), "value": value, "unit": "", "obs_status": "", "decimal": 1}
             for year, value in sorted(values.items(), reverse=True)]

    def handle(request: Request) -> Response:
        if request.args.get("format") != "json":
            return Response(b"<?xml version='1.0'?><wb:data/>", content_type="application/xml")
        per_page = int(request.args.get("per_page", "50"))
        page = int(request.args.get("page", "1"))
        pages = max(1, -(-len(items) // per_page))
        meta = {"page": page, "pages": pages, "per_page": per_page, "total": len(items), "sourceid": "2",
                "sourcename": "World Development Indicators", "lastupdated": "2025-07-01"}
        data = items[(page - 1) * per_page: page * per_page] or None
        return json_response([meta, data])

    return handle


def ngsi_ld_entities(entities: list[dict[str, Any]], *, context: str | None = None,
                     count_header: bool = True) -> Handler:
    """NGSI-LD /entities: type filter, limit/offset, count=true -> NGSILD-Results-Count, @context by Link.

    With `Accept: application/json` and a Link header (as Orion-LD answers), entities lose their
    embedded `@context` and the response names the context in its own Link header.
    """

    def handle(request: Request) -> Response:
        wanted = request.args.get("type")
        matched = [e for e in entities if e.get("type") == wanted or str(e.get("type", "")).endswith(f"/{wanted}")]
        limit = int(request.args.get("limit", "20"))
        offset = int(request.args.get("offset", "0"))
        if limit > 1000:
            return json_response({"type": "https://uri.etsi.org/ngsi-ld/errors/BadRequestData",
                                  "title": "Invalid limit", "detail": "limit must be <= 1000"}, status=400)
        page = [dict(e) for e in matched[offset:offset + limit]]
        headers: dict[str, str] = {}
        link = request.headers.get("Link", "")
        if link and "application/json" in request.headers.get("Accept", ""):
            for entity in page:
                entity.pop("@context", None)
            headers["Link"] = link
        if count_header and request.args.get("count") == "true":
            headers["NGSILD-Results-Count"] = str(len(matched))
        if context is not None and context not in link:
            return json_response({"type": "https://uri.etsi.org/ngsi-ld/errors/BadRequestData",
                                  "title": "Unknown @context", "detail": "Link header missing"}, status=400)
        return json_response(page, headers=headers)

    return handle


def orion_v2_entities(entities: list[dict[str, Any]], *, service: str, service_path: str = "/") -> Handler:
    """Orion NGSI v2 /v2/entities: Fiware-Service tenancy, limit (max 1000) / offset, options=count."""

    def handle(request: Request) -> Response:
        if request.headers.get("Fiware-Service") != service or \
                request.headers.get("Fiware-ServicePath", "/") != service_path:
            return json_response([])  # another tenant: Orion simply has no entities there
        options = request.args.get("options", "").split(",")
        limit = int(request.args.get("limit", "20"))
        offset = int(request.args.get("offset", "0"))
        if limit > 1000:
            return json_response({"error": "BadRequest", "description": "Bad pagination limit: /1001/ [max: 1000]"},
                                 status=400)
        matched = [e for e in entities if e.get("type") == request.args.get("type")]
        headers = {"Fiware-Total-Count": str(len(matched))} if "count" in options else {}
        return json_response(matched[offset:offset + limit], headers=headers)

    return handle


def openaq_pages(results: list[dict[str, Any]], *, api_key: str) -> Handler:
    """OpenAQ v3 list endpoint: X-API-Key required (401 otherwise), page/limit, meta.found."""

    def handle(request: Request) -> Response:
        if request.headers.get("X-API-Key") != api_key:
            return json_response({"detail": "Unauthorized. A valid API key must be provided in the X-API-Key header."},
                                 status=401)
        limit = int(request.args.get("limit", "100"))
        page = int(request.args.get("page", "1"))
        if limit > 1000:
            return json_response({"detail": "limit must be <= 1000"}, status=422)
        meta = {"name": "openaq-api", "website": "/", "page": page, "limit": limit, "found": len(results)}
        return json_response({"meta": meta, "results": results[(page - 1) * limit: page * limit]},
                             headers={"x-ratelimit-limit": "60", "x-ratelimit-remaining": "59"})

    return handle
