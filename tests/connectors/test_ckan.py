"""CKAN replay: a package_show (shared: the real data.gov.uk one; bundled: an invented one of the same shape),
then datastore_search pages or the resource file, with LAUS-shaped labour-force rows."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from canonical.errors import ConfigError, FetchError
from connectors.replay import (
    FAST_HTTP,
    ckan_datastore,
    ckan_package_show,
    fetch,
    hidden_entries,
    json_response,
    make_city,
    read_csv_rows,
    snapshot_dirs,
    with_etag,
)
from sources.config import LoadedConfig
from sources.fetch import current_snapshot
from sources.parsers.tabular import CsvStream
from warehouse.load import read_table


@pytest.fixture
def package(expected: dict[str, Any]) -> dict[str, str]:
    """The layer's recorded package: its name, its one resource's id and name."""
    facts: dict[str, str] = expected["ckan"]
    return facts


def laus_records(new_york: Path) -> list[dict[str, Any]]:
    rows = read_csv_rows(new_york / "LAUS_NYC_subset.csv")
    return [{"_id": i, **row} for i, row in enumerate(rows, start=1)]


def ckan_city(tmp_path: Path, server: HTTPServer, package: dict[str, str], fmt: str | None = None,
              **ckan: Any) -> LoadedConfig:
    return make_city(tmp_path / "city", [{
        "id": "laus", "kind": "ckan", "target": "observations", **({"format": fmt} if fmt else {}),
        "ckan": {"base_url": server.url_for("/").rstrip("/"), "package": package["package"],
                 "resource": package["resource_name"], **ckan},
        "http": FAST_HTTP,
        "observations": {"year_field": "Year", "variables": {
            "Labor Force": {"variable": "labour_force", "unit": "person"},
            "Unemployed": {"variable": "unemployed_persons", "unit": "person"}}},
    }])


def serve_package(server: HTTPServer, payloads: Path, package: dict[str, str], **kwargs: Any) -> None:
    body = ckan_package_show(payloads, server, **kwargs)
    server.expect_request("/api/3/action/package_show", query_string={"id": package["package"]}).respond_with_json(body)


def test_datastore_pages_follow_links_next_with_filters(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                        new_york: Path, package: dict[str, str],
        home: Path) -> None:
    serve_package(server, payloads, package)
    records = laus_records(new_york)
    server.expect_request("/api/3/action/datastore_search").respond_with_handler(
        ckan_datastore(package["resource_id"], records))
    loaded = ckan_city(tmp_path, server, package, page_size=20, filters={"Area": "New York City", "Month": "12"})
    snapshot = fetch(loaded, home)

    nyc_december = [r for r in records if r["Area"] == "New York City" and r["Month"] == "12"]
    assert len(snapshot.pages) == -(-len(nyc_december) // 20)
    table = read_table(loaded.config.sources[0], snapshot)
    assert len(table.rows) == len(nyc_december)
    assert table.columns[:3] == ["_id", "Area", "Year"]
    assert table.row_label(21) == "22 (page 2 record 2)"
    # Pages after the first were fetched from the server's own _links.next.
    requested = [req.args.get("offset") for req, _ in server.log if req.path.endswith("datastore_search")]
    assert requested == [str(20 * i) for i in range(len(snapshot.pages))]
    meta = json.loads((snapshot.path.parent / "meta.json").read_text(encoding="utf-8"))
    assert meta["request"]["resource_id"] == package["resource_id"] and meta["request"]["mode"] == "datastore"


def test_datastore_without_links_pages_by_offset_and_total(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                           new_york: Path, package: dict[str, str],
        home: Path) -> None:
    serve_package(server, payloads, package)
    records = laus_records(new_york)[:45]
    server.expect_request("/api/3/action/datastore_search").respond_with_handler(
        ckan_datastore(package["resource_id"], records, links=False))
    snapshot = fetch(ckan_city(tmp_path, server, package, page_size=20), home)
    assert len(snapshot.pages) == 3  # 20 + 20 + 5, then offset >= total stops without an empty page


def test_a_next_link_that_loops_is_an_error(tmp_path: Path, server: HTTPServer, payloads: Path, new_york: Path,
                                            package: dict[str, str],
        home: Path) -> None:
    serve_package(server, payloads, package)
    server.expect_request("/api/3/action/datastore_search").respond_with_handler(
        ckan_datastore(package["resource_id"], laus_records(new_york), loop=True))
    with pytest.raises(FetchError, match=r"source 'laus': GET http://127\.0\.0\.1:\d+/api/3/action/datastore_search"
                                         r"\?.*paging loop"):
        fetch(ckan_city(tmp_path, server, package, page_size=20), home)
    assert snapshot_dirs(home, "replay-city", "laus") == []
    assert hidden_entries(home) == []


def test_unknown_resource_names_the_ones_there_are(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                   package: dict[str, str],
        home: Path) -> None:
    serve_package(server, payloads, package)
    listed = re.escape(f"['{package['resource_name']}']")
    with pytest.raises(FetchError, match=r"no resource 'nope' in package .*" + listed):
        fetch(ckan_city(tmp_path, server, package, resource="nope"), home)


def test_ckan_error_envelope_is_a_fetch_error(tmp_path: Path, server: HTTPServer, home: Path) -> None:
    server.expect_request("/api/3/action/package_show").respond_with_response(json_response(
        {"help": "...", "success": False, "error": {"__type": "Not Found Error", "message": "Not found"}}))
    with pytest.raises(FetchError, match=r"package_show\?id=.*CKAN Not Found Error: Not found"):
        fetch(ckan_city(tmp_path, server, {"package": "p", "resource_name": "r"}), home)


def test_resource_download_is_conditional_on_etag(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                  new_york: Path, package: dict[str, str], expected: dict[str, Any],
        home: Path) -> None:
    body = (new_york / "LAUS_NYC_subset.csv").read_bytes()
    serve_package(server, payloads, package, datastore=False,
                  download_path="/dataset/laus/resource/r1/download/laus.csv")
    server.expect_request("/dataset/laus/resource/r1/download/laus.csv").respond_with_handler(
        lambda request: with_etag(request, body, '"laus-v1"', content_type="text/csv"))
    loaded = ckan_city(tmp_path, server, package, fmt="csv", mode="download")
    assert loaded.config.sources[0].resolved_format == "csv"
    first = fetch(loaded, home)
    assert first.paged is False and first.path.name == "laus.csv" and first.path.read_bytes() == body
    assert first.content_sha256 == hashlib.sha256(body).hexdigest()
    second = fetch(loaded, home)
    assert second.new is False and second.snapshot_id == first.snapshot_id
    assert server.log[-1][1].status_code == 304
    table = read_table(loaded.config.sources[0], second)
    # A statistics CSV is streamed (issue #14), read row by row from the stored snapshot.
    assert isinstance(table, CsvStream) and sum(1 for _ in table.rows()) == expected["laus_rows"]
    current = current_snapshot(home / "raw", home, "replay-city", "laus")
    assert current is not None and current.snapshot_id == first.snapshot_id


def test_download_mode_needs_a_format(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ckan mode 'download' needs 'format'"):
        make_city(tmp_path / "city", [{
            "id": "x", "kind": "ckan", "target": "observations",
            "ckan": {"base_url": "https://ckan.example.org", "package": "p", "resource": "r", "mode": "download"},
            "observations": {"year_field": "Year", "variables": {"v": {"variable": "population", "unit": "person"}}},
        }])
