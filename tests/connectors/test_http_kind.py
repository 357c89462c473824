"""kind `http`: any URL to one file, landed as received, conditional on Last-Modified / ETag."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from canonical.errors import ConfigError, FetchError
from connectors.replay import FAST_HTTP, fetch, make_city, snapshot_dirs
from pipelines.cli import main
from sources.kinds import KINDS
from warehouse.load import parse_source

MODIFIED = "Wed, 01 Jan 2025 00:00:00 GMT"


def test_a_gtfs_zip_is_landed_and_parsed(tmp_path: Path, server: HTTPServer, payloads: Path, home: Path) -> None:
    body = (payloads / "gtfs" / "gtfs_kit_cairns_gtfs.zip").read_bytes()

    def feed(request: Request) -> Response:
        if request.headers.get("If-Modified-Since") == MODIFIED:
            return Response(status=304)
        return Response(body, content_type="application/zip", headers={"Last-Modified": MODIFIED})

    server.expect_request("/feeds/cairns_gtfs.zip").respond_with_handler(feed)
    loaded = make_city(tmp_path / "city", [{
        "id": "transit", "kind": "http", "target": "transit_feed", "http": FAST_HTTP,
        "location": server.url_for("/feeds/cairns_gtfs.zip")}], country="AU")
    first = fetch(loaded, home)
    assert first.path.name == "cairns_gtfs.zip" and first.path.read_bytes() == body
    assert first.request["headers"] == {} and first.paged is False
    parsed = parse_source(loaded, loaded.config.sources[0], first)
    assert parsed.frame is not None and parsed.frame.height > 0
    second = fetch(loaded, home)
    assert second.new is False and second.snapshot_id == first.snapshot_id
    assert server.log[-1][0].headers["If-Modified-Since"] == MODIFIED and server.log[-1][1].status_code == 304
    assert snapshot_dirs(home, "replay-city", "transit") == [first.content_sha256]


def test_a_csv_url_serving_a_pdf_is_an_error(tmp_path: Path, server: HTTPServer, home: Path) -> None:
    server.expect_request("/stats.csv").respond_with_data(b"%PDF-1.7", content_type="application/pdf")
    loaded = make_city(tmp_path / "city", [{
        "id": "stats", "kind": "http", "target": "observations", "http": FAST_HTTP,
        "location": server.url_for("/stats.csv"),
        "observations": {"year_field": "Year", "variables": {"Pop": {"variable": "population", "unit": "person"}}}}])
    with pytest.raises(FetchError, match=r"source 'stats': GET http://127\.0\.0\.1:\d+/stats\.csv: unexpected "
                                         r"content type 'application/pdf' where CSV was expected"):
        fetch(loaded, home)


def test_the_http_kind_needs_an_http_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"kind 'http' needs an http\(s\) URL"):
        make_city(tmp_path / "city", [{"id": "t", "kind": "http", "target": "transit_feed",
                                       "location": "feeds/gtfs.zip"}])


def test_citykpi_sources_lists_every_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sources"]) == 0
    out = capsys.readouterr().out
    for kind in ("file", "http", "ckan", "socrata", "opendatasoft", "worldbank", "ngsi_ld", "ngsi_v2", "openaq",
                 "eurostat", "overpass"):
        assert kind in KINDS
        assert any(line.split()[:1] == [kind] for line in out.splitlines()), out
