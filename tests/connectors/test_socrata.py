"""Socrata SODA replay: bike-counter pages (a full page, then 1 row), paged by $offset.

Shared layer: the real sodapy pages (1000 rows, then 1); bundled layer: invented pages of the same shape.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from canonical.errors import FetchError
from connectors.replay import FAST_HTTP, fetch, make_city, snapshot_dirs, socrata_files, socrata_rows
from sources.config import LoadedConfig
from sources.landing import Page, pages_sha256
from warehouse.load import read_table

DATASET = "abcd-1234"


def bike_pages(payloads: Path, page_size: int) -> dict[int, bytes]:
    """The two recorded pages keyed by the `$offset` that asks for them."""
    folder = payloads / "socrata"
    return {0: (folder / "sodapy_resource_bike_counts_page_1.json").read_bytes(),
            page_size: (folder / "sodapy_resource_bike_counts_page_2.json").read_bytes()}


def page_size_option(page_size: int) -> dict[str, int]:
    """`page_size` for the config: left to the default (1000) when the layer's pages are that size."""
    return {} if page_size == 1000 else {"page_size": page_size}


def bike_city(tmp_path: Path, server: HTTPServer, page_size: int, **http: object) -> LoadedConfig:
    return make_city(tmp_path / "city", [{
        "id": "bikes", "kind": "socrata", "target": "observations",
        "socrata": {"base_url": server.url_for("/").rstrip("/"), "dataset": DATASET, **page_size_option(page_size)},
        "http": {**FAST_HTTP, **http},
        "observations": {"year_field": "id", "variables": {"counts": {"variable": "population", "unit": "person"}}},
    }])


def test_pages_are_landed_byte_for_byte_with_request_metadata(tmp_path: Path, server: HTTPServer,
                                                               payloads: Path, expected: dict[str, Any],
                                                               home: Path) -> None:
    soda = expected["socrata"]
    size = soda["page_size"]
    pages = bike_pages(payloads, size)
    server.expect_request(f"/resource/{DATASET}.json").respond_with_handler(socrata_files(pages))
    snapshot = fetch(bike_city(tmp_path, server, size), home)

    assert snapshot.new and snapshot.paged and snapshot.kind == "socrata"
    assert [p.name for p in snapshot.pages] == ["page-0001.json", "page-0002.json"]
    assert [p.read_bytes() for p in snapshot.pages] == [pages[0], pages[size]]
    meta = json.loads((snapshot.path.parent / "meta.json").read_text(encoding="utf-8"))
    assert [page["status"] for page in meta["pages"]] == [200, 200]
    assert f"%24offset={size}" in meta["pages"][1]["url"] and "%24order=%3Aid" in meta["pages"][1]["url"]
    assert meta["pages"][0]["headers"]["content-type"].startswith("application/json")
    assert meta["pages"][0]["bytes"] == len(pages[0]) == soda["page_1_bytes"]
    assert meta["size_bytes"] == len(pages[0]) + len(pages[size])
    # The content hash covers both pages in order (sha256sum-style listing of the pages).
    listing = "".join(f"{p['sha256']}  {p['file']}\n" for p in meta["pages"])
    assert snapshot.content_sha256 == hashlib.sha256(listing.encode()).hexdigest()
    assert snapshot.path.parent.name == snapshot.content_sha256
    assert meta["request"]["rows"] == soda["rows"] == size + 1


def test_read_table_concatenates_pages_with_page_and_record_row_numbers(tmp_path: Path, server: HTTPServer,
                                                                        payloads: Path, expected: dict[str, Any],
                                                                        home: Path) -> None:
    soda = expected["socrata"]
    size = soda["page_size"]
    server.expect_request(f"/resource/{DATASET}.json").respond_with_handler(socrata_files(bike_pages(payloads, size)))
    loaded = bike_city(tmp_path, server, size)
    snapshot = fetch(loaded, home)
    table = read_table(loaded.config.sources[0], snapshot)
    assert table.columns == ["id", "date", "counts", "status"]
    assert len(table.rows) == soda["rows"]
    assert table.rows[0] == soda["first_row"]
    assert table.rows[-1] == soda["last_row"]
    assert table.row_numbers[-1] == soda["rows"] and table.row_label(-1) == f"{soda['rows']} (page 2 record 1)"
    assert table.row_label(16) == "17 (page 1 record 17)"
    assert table.display_name == "page-0001.json..page-0002.json"


def test_paging_stops_on_an_empty_page(tmp_path: Path, server: HTTPServer, home: Path) -> None:
    rows = [{"year": 2000 + i, "value": i} for i in range(4)]
    server.expect_request(f"/resource/{DATASET}.json").respond_with_handler(socrata_rows(rows))
    loaded = make_city(tmp_path / "city", [{
        "id": "rows", "kind": "socrata", "target": "observations",
        "socrata": {"base_url": server.url_for("/").rstrip("/"), "dataset": DATASET, "page_size": 2},
        "http": FAST_HTTP,
        "observations": {"year_field": "year", "variables": {"value": {"variable": "population", "unit": "person"}}},
    }])
    snapshot = fetch(loaded, home)
    # 2 + 2 rows, then an empty page: an exact multiple of the page size needs the empty page to stop.
    assert [p.read_bytes() for p in snapshot.pages][-1] == b"[]"
    assert len(snapshot.pages) == 3
    assert len(read_table(loaded.config.sources[0], snapshot).rows) == 4


def test_max_pages_bounds_a_source_that_never_ends(tmp_path: Path, server: HTTPServer, home: Path) -> None:
    endless = socrata_rows([{"year": 2000, "value": 1}] * 100)
    server.expect_request(f"/resource/{DATASET}.json").respond_with_handler(endless)
    loaded = make_city(tmp_path / "city", [{
        "id": "rows", "kind": "socrata", "target": "observations",
        "socrata": {"base_url": server.url_for("/").rstrip("/"), "dataset": DATASET, "page_size": 5},
        "http": {**FAST_HTTP, "max_pages": 3},
        "observations": {"year_field": "year", "variables": {"value": {"variable": "population", "unit": "person"}}},
    }])
    with pytest.raises(FetchError, match=r"source 'rows': GET http://127\.0\.0\.1:\d+/resource/.*max_pages \(3\)"):
        fetch(loaded, home)
    assert snapshot_dirs(home, "replay-city", "rows") == []


def test_etag_revalidation_makes_no_new_snapshot(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                 expected: dict[str, Any], home: Path) -> None:
    size = expected["socrata"]["page_size"]
    pages = bike_pages(payloads, size)
    server.expect_request(f"/resource/{DATASET}.json").respond_with_handler(socrata_files(pages, etag=True))
    loaded = bike_city(tmp_path, server, size)
    first = fetch(loaded, home)
    second = fetch(loaded, home)
    assert second.new is False
    assert second.snapshot_id == first.snapshot_id
    assert snapshot_dirs(home, "replay-city", "bikes") == [first.content_sha256]
    conditional = [req for req, _ in server.log if req.headers.get("If-None-Match")]
    assert len(conditional) == 2  # both pages were revalidated
    assert all(resp.status_code == 304 for req, resp in server.log[2:])


def test_one_changed_page_reuses_the_unchanged_one(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                   expected: dict[str, Any], home: Path) -> None:
    size = expected["socrata"]["page_size"]
    pages = bike_pages(payloads, size)
    server.expect_request(f"/resource/{DATASET}.json").respond_with_handler(socrata_files(pages, etag=True))
    loaded = bike_city(tmp_path, server, size)
    first = fetch(loaded, home)
    server.clear()
    changed = {0: pages[0], size: b'[{"id":"100009424","date":"2016-10-02T02:00:00.000","counts":"5","status":"0"}]'}
    server.expect_request(f"/resource/{DATASET}.json").respond_with_handler(socrata_files(changed, etag=True))
    second = fetch(loaded, home)
    assert second.new is True and second.snapshot_id != first.snapshot_id
    meta = json.loads((second.path.parent / "meta.json").read_text(encoding="utf-8"))
    assert [p["status"] for p in meta["pages"]] == [304, 200]
    assert meta["pages"][0]["reused_from"] == first.snapshot_id
    assert second.pages[0].read_bytes() == pages[0]
    listed = [Page(p["file"], p["url"], p["status"], p["headers"], p["sha256"], p["bytes"]) for p in meta["pages"]]
    assert pages_sha256(listed) == second.content_sha256
