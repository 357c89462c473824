"""kind `openaq`: OpenAQ API v3 replayed from recorded responses (shared: the openaq-python client's real ones;
bundled: invented ones of the same shape)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from canonical.errors import FetchError
from connectors.replay import FAST_HTTP, fetch, make_city, openaq_pages
from sources.config import LoadedConfig
from warehouse.load import parse_source, read_table

KEY = "oaq-test-key-0123456789abcdef"


def _results(payloads: Path, name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((payloads / "openaq_v3" / name).read_text(encoding="utf-8"))["results"]
    return data


def locations_city(tmp_path: Path, server: HTTPServer) -> LoadedConfig:
    return make_city(tmp_path / "city", [{
        "id": "stations", "kind": "openaq", "target": "points", "http": FAST_HTTP,
        "openaq": {"base_url": server.url_for("/v3"), "endpoint": "locations", "page_size": 2,
                   "params": {"iso": "US", "parameters_id": 2}},
        "points": {"point_type": "air_quality_station"}}])


def test_locations_page_by_meta_found_and_become_stations(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                           home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = _results(payloads, "openaq-python_locations.json")[0]
    stations = [{**recorded, "id": recorded["id"] + n,
                 "coordinates": {"latitude": recorded["coordinates"]["latitude"] + n / 100,
                                 "longitude": recorded["coordinates"]["longitude"]}} for n in range(5)]
    server.expect_request("/v3/locations").respond_with_handler(openaq_pages(stations, api_key=KEY))
    monkeypatch.setenv("OPENAQ_API_KEY", KEY)
    loaded = locations_city(tmp_path, server)
    snapshot = fetch(loaded, home)
    assert [req.args["page"] for req, _ in server.log] == ["1", "2", "3"]  # 2 + 2 + 1 (short page)
    assert all(req.args["iso"] == "US" and req.args["parameters_id"] == "2" for req, _ in server.log)
    meta_text = (snapshot.path.parent / "meta.json").read_text(encoding="utf-8")
    assert KEY not in meta_text and json.loads(meta_text)["request"]["headers"]["X-API-Key"] == "***"
    parsed = parse_source(loaded, loaded.config.sources[0], snapshot)
    assert parsed.frame is not None and parsed.frame.height == 5
    first = parsed.frame.row(0, named=True)
    assert first["point_id"] == str(recorded["id"]) and first["name"] == recorded["name"]
    assert (first["lon"], first["lat"]) == (recorded["coordinates"]["longitude"], recorded["coordinates"]["latitude"])


def test_measurements_read_as_records_with_a_year(tmp_path: Path, server: HTTPServer, payloads: Path, home: Path,
                                                  expected: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    measurements = _results(payloads, "openaq-python_measurements.json")
    server.expect_request("/v3/sensors/3917/measurements").respond_with_handler(
        openaq_pages(measurements, api_key=KEY))
    monkeypatch.setenv("AQ_KEY", KEY)
    loaded = make_city(tmp_path / "city", [{
        "id": "pm25", "kind": "openaq", "target": "observations", "http": FAST_HTTP,
        "openaq": {"base_url": server.url_for("/v3"), "endpoint": "sensors/3917/measurements", "page_size": 1,
                   "api_key_env": "AQ_KEY"},
        "observations": {"layout": "long", "year_field": "year", "variable_field": "parameter.name",
                         "value_field": "value", "variables": {
                             "pm25": {"variable": "air_concentration_ugm3", "unit": "ug/m3", "data_point": "PM2.5"}}}}])
    snapshot = fetch(loaded, home)
    assert len(snapshot.pages) == 2  # found = 2, limit 1: page * limit reaches found
    table = read_table(loaded.config.sources[0], snapshot)
    assert table.columns[0] == "year" and {row[0] for row in table.rows} == {expected["openaq"]["year"]}
    assert "parameter.name" in table.columns and table.row_label(1) == "2 (page 2 record 1)"


def test_a_missing_key_is_a_clear_error_and_a_wrong_one_a_401(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                              home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server.expect_request("/v3/locations").respond_with_handler(openaq_pages([], api_key=KEY))
    monkeypatch.delenv("OPENAQ_API_KEY", raising=False)
    loaded = locations_city(tmp_path, server)
    with pytest.raises(FetchError, match="environment variable OPENAQ_API_KEY is not set"):
        fetch(loaded, home)
    monkeypatch.setenv("OPENAQ_API_KEY", "wrong-key-value")
    with pytest.raises(FetchError, match=r"source 'stations': GET http://127\.0\.0\.1:\d+/v3/locations\?.*"
                                         r"HTTP 401 UNAUTHORIZED: .*valid API key") as info:
        fetch(loaded, home)
    assert "wrong-key-value" not in str(info.value)
    assert len(server.log) == 1  # a 401 is not retried
