"""Fault replays: each ends in a recovered fetch, or a FetchError naming the source and the URL with
the previous good snapshot, its files and CURRENT untouched and no staging folder left behind."""

from __future__ import annotations

import logging
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from canonical.errors import FetchError
from connectors.replay import (
    FAST_HTTP,
    Scripted,
    fetch,
    hidden_entries,
    json_response,
    make_city,
    snapshot_dirs,
    socrata_files,
    tree_state,
)
from connectors.test_socrata import bike_pages, page_size_option
from sources.config import LoadedConfig
from sources.http import HttpClient
from sources.landing import Snapshot, pointer_path

DATASET = "abcd-1234"
PATH = f"/resource/{DATASET}.json"
URL_IN_ERROR = rf"source 'bikes': GET http://127\.0\.0\.1:\d+/resource/{DATASET}\.json\?"


@pytest.fixture
def page_size(expected: dict[str, Any]) -> int:
    size: int = expected["socrata"]["page_size"]
    return size


@pytest.fixture
def city(page_size: int) -> Callable[..., LoadedConfig]:
    def make(tmp_path: Path, server: HTTPServer, **http: object) -> LoadedConfig:
        return make_city(tmp_path / "city", [{
            "id": "bikes", "kind": "socrata", "target": "observations",
            "socrata": {"base_url": server.url_for("/").rstrip("/"), "dataset": DATASET,
                        **page_size_option(page_size)},
            "http": {**FAST_HTTP, **http},
            "observations": {"year_field": "id", "variables": {"counts": {"variable": "population",
                                                                          "unit": "person"}}},
        }])

    return make


@pytest.fixture
def pages(payloads: Path, page_size: int) -> dict[int, bytes]:
    """The recorded pages keyed by their `$offset`: 0 and `page_size`."""
    return bike_pages(payloads, page_size)


def ok(pages: dict[int, bytes]) -> Scripted:
    return Scripted(socrata_files(pages))


@dataclass
class Previous:
    loaded: LoadedConfig
    home: Path
    snapshot: Snapshot
    state: dict[str, tuple[int, bytes]]
    pointer: str

    def assert_intact(self) -> None:
        assert tree_state(self.home / "raw") == self.state  # same files, bytes and mtimes
        assert pointer_path(self.home / "raw", "replay-city", "bikes").read_text().strip() == self.pointer
        assert snapshot_dirs(self.home, "replay-city", "bikes") == [self.snapshot.content_sha256]
        assert hidden_entries(self.home) == []


@pytest.fixture
def previous(tmp_path: Path, server: HTTPServer, pages: dict[int, bytes], home: Path,
             city: Callable[..., LoadedConfig]) -> Iterator[Previous]:
    """A first, good fetch; the test then installs a fault and fetches again."""
    server.expect_request(PATH).respond_with_handler(ok(pages))
    loaded = city(tmp_path, server)
    snapshot = fetch(loaded, home)
    server.clear()
    yield Previous(loaded, home, snapshot, tree_state(home / "raw"),
                   pointer_path(home / "raw", "replay-city", "bikes").read_text().strip())


def test_500_then_200_recovers(tmp_path: Path, server: HTTPServer, pages: dict[int, bytes], home: Path,
                               caplog: pytest.LogCaptureFixture, city: Callable[..., LoadedConfig],
                               page_size: int) -> None:
    good = socrata_files(pages)
    server.expect_request(PATH).respond_with_handler(
        Scripted(lambda r: Response("Internal Server Error", status=500), good))
    caplog.set_level(logging.WARNING)
    snapshot = fetch(city(tmp_path, server), home)
    assert [p.read_bytes() for p in snapshot.pages] == [pages[0], pages[page_size]]
    assert [resp.status_code for _, resp in server.log] == [500, 200, 200]
    assert any("HTTP 500" in r.getMessage() and "attempt 1 of 3" in r.getMessage() for r in caplog.records)


def test_500_every_time_gives_up_and_keeps_the_previous_snapshot(previous: Previous, server: HTTPServer) -> None:
    server.expect_request(PATH).respond_with_data("down for maintenance", status=503)
    with pytest.raises(FetchError, match=URL_IN_ERROR + r".*HTTP 503 SERVICE UNAVAILABLE; gave up after 3 attempt"):
        fetch(previous.loaded, previous.home)
    previous.assert_intact()


@pytest.mark.parametrize("retry_after", ["30", "http-date"])
def test_429_with_retry_after_waits_capped_then_recovers(tmp_path: Path, server: HTTPServer,
                                                         pages: dict[int, bytes], home: Path,
                                                         retry_after: str, city: Callable[..., LoadedConfig],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    value = retry_after if retry_after != "http-date" else format_datetime(
        datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    server.expect_request(PATH).respond_with_handler(Scripted(
        lambda r: json_response({"message": "Too many requests"}, status=429, headers={"Retry-After": value}),
        socrata_files(pages)))
    # The wait the retry loop is told to sleep, recorded (not timed: a loaded machine is slow anyway).
    waits: list[bool | float] = []
    backoff = HttpClient._backoff

    def recording(self: HttpClient, exc: Exception) -> bool | float:
        waits.append(backoff(self, exc))
        return waits[-1]

    monkeypatch.setattr(HttpClient, "_backoff", recording)
    snapshot = fetch(city(tmp_path, server), home)
    assert waits == [FAST_HTTP["retry_after_max"]]  # 30 s asked, http.retry_after_max applied
    assert len(snapshot.pages) == 2
    assert [resp.status_code for _, resp in server.log][:2] == [429, 200]


def test_a_timeout_is_retried_and_recovers(tmp_path: Path, server: HTTPServer, pages: dict[int, bytes],
                                           home: Path, city: Callable[..., LoadedConfig], page_size: int) -> None:
    good = socrata_files(pages)

    def slow(request: Request) -> Response:
        time.sleep(3.0)
        return good(request)

    # A generous timeout: the good answer must arrive within it even on a loaded machine.
    server.expect_request(PATH).respond_with_handler(Scripted(slow, good))
    snapshot = fetch(city(tmp_path, server, timeout=1.0), home)
    assert [p.read_bytes() for p in snapshot.pages] == [pages[0], pages[page_size]]


def test_timeouts_every_time_are_a_clear_error(previous: Previous, server: HTTPServer,
                                               pages: dict[int, bytes], city: Callable[..., LoadedConfig]) -> None:
    good = socrata_files(pages)

    def slow(request: Request) -> Response:
        time.sleep(0.5)
        return good(request)

    server.expect_request(PATH).respond_with_handler(slow)
    loaded = city(previous.loaded.path.parent.parent, server, timeout=0.1, attempts=2)
    with pytest.raises(FetchError, match=URL_IN_ERROR + r".*timed out after 0\.1 s \(ReadTimeout\); gave up after 2"):
        fetch(loaded, previous.home)
    previous.assert_intact()


def test_truncated_json_is_an_error(previous: Previous, server: HTTPServer, pages: dict[int, bytes]) -> None:
    server.expect_request(PATH).respond_with_handler(socrata_files({0: pages[0][:5000]}))
    with pytest.raises(FetchError, match=URL_IN_ERROR + r".*invalid JSON \(truncated\?\): .*\(5,000 bytes received\)"):
        fetch(previous.loaded, previous.home)
    previous.assert_intact()


def test_a_body_cut_short_by_the_connection_is_retried(tmp_path: Path, pages: dict[int, bytes], home: Path,
                                                       page_size: int) -> None:
    """The first answer announces the full Content-Length and closes after a tenth of it."""
    body = pages[0]
    answers = [body[: len(body) // 10], body, pages[page_size]]
    lengths = [len(body), len(body), len(pages[page_size])]

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # the request head; a GET has no body
            index = min(served.count, len(answers) - 1)
            served.count += 1
            head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {lengths[index]}\r\n"
                    "Connection: close\r\n\r\n").encode()
            self.wfile.write(head + answers[index])

    class Served:
        count = 0

    served = Served()
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler) as raw:
        threading.Thread(target=raw.serve_forever, daemon=True).start()
        try:
            loaded = make_city(tmp_path / "city", [{
                "id": "bikes", "kind": "socrata", "target": "observations",
                "socrata": {"base_url": f"http://127.0.0.1:{raw.server_address[1]}", "dataset": DATASET,
                            **page_size_option(page_size)},
                "http": FAST_HTTP, "observations": {"year_field": "id", "variables": {
                    "counts": {"variable": "population", "unit": "person"}}}}])
            snapshot = fetch(loaded, home)
        finally:
            raw.shutdown()
    assert served.count == 3  # cut short, retried, then the last page
    assert [p.read_bytes() for p in snapshot.pages] == [body, pages[page_size]]


def test_an_html_error_page_served_with_200_is_an_error(previous: Previous, server: HTTPServer) -> None:
    page = b"<!DOCTYPE html><html><head><title>Portal maintenance</title></head><body>Back soon</body></html>"
    server.expect_request(PATH).respond_with_data(page, content_type="text/html; charset=utf-8")
    with pytest.raises(FetchError, match=URL_IN_ERROR + r".*served an HTML page \(HTTP 200, text/html\) where JSON "
                                         r"was expected: <!DOCTYPE html><html><head><title>Portal maintenance"):
        fetch(previous.loaded, previous.home)
    previous.assert_intact()


def test_an_html_page_without_content_type_is_sniffed(previous: Previous, server: HTTPServer) -> None:
    def html(request: Request) -> Response:
        response = Response(b"<html><body>Login required</body></html>")
        del response.headers["Content-Type"]
        return response

    server.expect_request(PATH).respond_with_handler(html)
    with pytest.raises(FetchError, match=URL_IN_ERROR + r".*served an HTML page \(HTTP 200\) where JSON was expected"):
        fetch(previous.loaded, previous.home)
    previous.assert_intact()


def test_a_wrong_content_type_is_an_error(previous: Previous, server: HTTPServer, pages: dict[int, bytes]) -> None:
    server.expect_request(PATH).respond_with_data(pages[0], content_type="text/csv")
    with pytest.raises(FetchError, match=URL_IN_ERROR + r".*unexpected content type 'text/csv' where JSON"):
        fetch(previous.loaded, previous.home)
    previous.assert_intact()


def test_an_empty_body_is_an_error(previous: Previous, server: HTTPServer) -> None:
    server.expect_request(PATH).respond_with_data(b"", content_type="application/json")
    with pytest.raises(FetchError, match=URL_IN_ERROR + r".*empty response body \(HTTP 200\) where JSON was expected"):
        fetch(previous.loaded, previous.home)
    previous.assert_intact()


def test_a_failure_on_a_later_page_lands_nothing(previous: Previous, server: HTTPServer,
                                                 pages: dict[int, bytes], page_size: int) -> None:
    good = socrata_files({0: pages[0]})

    def second_page_fails(request: Request) -> Response:
        if request.args.get("$offset") == str(page_size):
            return Response(b"forbidden", status=403)
        return good(request)

    server.expect_request(PATH).respond_with_handler(second_page_fails)
    with pytest.raises(FetchError, match=URL_IN_ERROR + rf".*%24offset={page_size}.*HTTP 403 FORBIDDEN: forbidden"):
        fetch(previous.loaded, previous.home)
    previous.assert_intact()


def test_a_response_over_the_size_limit_is_an_error(previous: Previous, server: HTTPServer,
                                                    pages: dict[int, bytes], city: Callable[..., LoadedConfig],
                                                    expected: dict[str, Any]) -> None:
    server.expect_request(PATH).respond_with_handler(socrata_files(pages))
    soda = expected["socrata"]
    loaded = city(previous.loaded.path.parent.parent, server, max_bytes=soda["max_bytes"])
    with pytest.raises(FetchError, match=URL_IN_ERROR + rf".*{soda['page_1_bytes']:,} bytes exceeds http.max_bytes "
                                         rf"\({soda['max_bytes']:,}\)"):
        fetch(loaded, previous.home)
    previous.assert_intact()


def test_a_streamed_response_over_the_size_limit_is_an_error(previous: Previous, server: HTTPServer,
                                                             pages: dict[int, bytes], city: Callable[..., LoadedConfig],
                                                    expected: dict[str, Any]) -> None:
    def chunked(request: Request) -> Response:
        body = pages[0]
        return Response((body[i:i + 4096] for i in range(0, len(body), 4096)), content_type="application/json")

    server.expect_request(PATH).respond_with_handler(chunked)
    limit = expected["socrata"]["max_bytes"]
    loaded = city(previous.loaded.path.parent.parent, server, max_bytes=limit)
    with pytest.raises(FetchError, match=URL_IN_ERROR + rf".*response exceeds http.max_bytes \({limit:,} bytes\)"):
        fetch(loaded, previous.home)
    previous.assert_intact()
