"""Fixtures for the connector tests: the loopback server, the payload layers, a temporary home.

Every test that asks for `payloads`, `new_york` or `expected` runs once per layer (`layers.py`):
`bundled` (small invented payloads inside tests/, always present) and `shared` (the real recordings in
../shared, skipped with a clear reason when absent). The helpers and platform replays live in `replay.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from connectors.layers import LAYERS, Layer


@pytest.fixture(params=LAYERS)
def layer(request: pytest.FixtureRequest) -> Layer:
    return Layer(request.param)


@pytest.fixture
def payloads(layer: Layer) -> Path:
    """API payloads of the layer: bundled (invented, tests/connectors/payloads) or shared (real, ../shared)."""
    return layer.payloads


@pytest.fixture
def new_york(layer: Layer) -> Path:
    """New York exports of the layer: bundled (a tiny invented city) or shared (real NYC open data)."""
    return layer.new_york


@pytest.fixture
def expected(layer: Layer) -> dict[str, Any]:
    """The figures the layer's payloads hold (bundled: payloads/expected.json; shared: layers.py)."""
    return layer.expected


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


