"""Fixtures for the connector tests: the loopback server, the shared payloads, a temporary home.

The helpers and platform replays live in `replay.py` beside this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from shared_data import require_shared


@pytest.fixture
def payloads() -> Path:
    """Real recorded API payloads (`../shared/fixtures/payloads`); skips when the folder is absent."""
    return require_shared("fixtures/payloads")


@pytest.fixture
def new_york() -> Path:
    """Real New York City open data (`../shared/fixtures/cities/new_york`); skips when absent."""
    return require_shared("fixtures/cities/new_york")


@pytest.fixture(scope="session")
def _loopback() -> Iterator[HTTPServer]:
    # threaded: a handler that sleeps (timeout tests) must not hold up the retry behind it.
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def server(_loopback: HTTPServer) -> Iterator[HTTPServer]:
    _loopback.clear()
    yield _loopback
    _loopback.clear()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


