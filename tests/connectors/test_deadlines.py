"""A server trickling one byte at a time cannot hold a fetch: `http.deadline` bounds the whole request
(connect, headers, body) and `http.source_deadline` the whole source, although every single wait is
shorter than `http.timeout`. A real loopback socket server trickles; it stops when the client leaves.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from canonical.errors import FetchError
from connectors.replay import fetch, make_city
from sources.config import LoadedConfig

BODY = b'[{"year": 2020, "value": 1}]' + b" " * 100_000  # long enough to trickle for a day


class Trickler(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, where: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.where = where          # "headers" or "body": which part arrives one byte at a time
        self.stop = threading.Event()
        self.requests = 0
        self.gave_up = threading.Event()  # set when the client closed the connection mid-trickle


class _Handler(socketserver.BaseRequestHandler):
    server: Trickler

    def handle(self) -> None:
        self.request.recv(65536)
        self.server.requests += 1
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
                ).encode()
        trickled, sent_whole = (head, b"") if self.server.where == "headers" else (BODY, head)
        try:
            self.request.sendall(sent_whole)
            for i in range(len(trickled)):
                self.request.sendall(trickled[i:i + 1])
                if self.server.stop.wait(0.05):  # one byte every 50 ms: far inside http.timeout
                    return
        except OSError:
            self.server.gave_up.set()


@pytest.fixture(params=["headers", "body"])
def trickler(request: pytest.FixtureRequest) -> Iterator[Trickler]:
    server = Trickler(request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.stop.set()
    server.shutdown()
    server.server_close()


def _city(tmp_path: Path, server: Trickler, **http: float) -> LoadedConfig:
    host, port = server.server_address[:2]
    return make_city(tmp_path / "city", [{
        "id": "slow", "kind": "http", "target": "observations", "format": "json",
        "location": f"http://{host}:{port}/data.json",
        "http": {"timeout": 5.0, "attempts": 2, "retry_wait_initial": 0.01, "retry_wait_max": 0.01,
                 "retry_jitter": 0.0, **http},
        "observations": {"year_field": "year", "variables": {"value": {"variable": "population", "unit": "person"}}},
    }])


def test_a_trickling_server_hits_the_request_deadline(tmp_path: Path, trickler: Trickler) -> None:
    loaded = _city(tmp_path, trickler, deadline=0.5)
    with pytest.raises(FetchError, match=r"source 'slow': GET http://127\.0\.0\.1:\d+/data\.json: the request took "
                                         r"longer than http\.deadline \(0\.5 s; the server sends too slowly\); "
                                         r"gave up after 2 attempt\(s\)"):
        fetch(loaded, tmp_path / "home")
    assert trickler.requests == 2
    assert not list((tmp_path / "home").glob("raw/*/*/*/meta.json"))  # nothing landed


def test_the_source_deadline_bounds_every_attempt_together(tmp_path: Path, trickler: Trickler) -> None:
    loaded = _city(tmp_path, trickler, deadline=60, source_deadline=0.5, attempts=5)
    with pytest.raises(FetchError, match=r"took longer than http\.source_deadline \(0\.5 s\); stopping"):
        fetch(loaded, tmp_path / "home")
    assert trickler.requests == 1


def test_a_deadline_is_configurable_and_validated() -> None:
    from pydantic import ValidationError

    from sources.config import HttpOptions

    assert HttpOptions().deadline == 900 and HttpOptions().source_deadline == 7200
    with pytest.raises(ValidationError):
        HttpOptions(deadline=0)


def test_connect_is_bounded_by_the_deadline_too(tmp_path: Path) -> None:
    """A listener that never accepts: the TCP handshake completes (backlog) but nothing is ever sent."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        host, port = listener.getsockname()
        loaded = make_city(tmp_path / "city", [{
            "id": "mute", "kind": "http", "target": "transit_feed", "format": "gtfs",
            "location": f"http://{host}:{port}/feed.zip",
            "http": {"timeout": 30.0, "deadline": 0.3, "attempts": 1}}])
        with pytest.raises(FetchError, match=r"took longer than http\.deadline \(0\.3 s"):
            fetch(loaded, tmp_path / "home")
