"""kind `overpass`: OpenStreetMap Overpass JSON replayed from recorded responses (shared: overpy's real ones;
bundled: invented ones of the same shape)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from canonical.errors import ConfigError, FetchError
from connectors.replay import FAST_HTTP, fetch, make_city, snapshot_dirs
from sources.config import LoadedConfig
from warehouse.load import parse_source

JSON_TYPE = "application/json"


def parks_city(tmp_path: Path, server: HTTPServer, **overpass: Any) -> LoadedConfig:
    return make_city(tmp_path / "city", [{
        "id": "green", "kind": "overpass", "target": "areas", "http": FAST_HTTP,
        "overpass": {"base_url": server.url_for("/api"), "area_name": "Bonn", **overpass},
        "areas": {"area_type": "green_area", "id_field": "id"}}], country="DE")


def test_closed_tagged_ways_become_polygons(tmp_path: Path, server: HTTPServer, payloads: Path,
                                           expected: dict[str, Any], home: Path) -> None:
    body = (payloads / "overpass" / "overpy_way-02.json").read_bytes()

    def handle(request: Request) -> Response:
        query = request.args["data"]
        assert query.startswith("[out:json][timeout:180];") and 'area["name"="Bonn"]["admin_level"="8"]' in query
        assert "out geom;" in query and 'way[leisure~"^(park|garden|playground|nature_reserve)$"](area.a)' in query
        return Response(body, content_type=JSON_TYPE)

    server.expect_request("/api/interpreter").respond_with_handler(handle)
    loaded = parks_city(tmp_path, server)
    snapshot = fetch(loaded, home)
    assert snapshot.path.name == "overpass.json" and snapshot.path.read_bytes() == body
    parsed = parse_source(loaded, loaded.config.sources[0], snapshot)
    assert parsed.frame is not None and parsed.frame["area_id"].to_list() == [expected["overpass"]["closed_way"]]
    area = parsed.frame.row(0, named=True)
    assert 0.001 < area["area_ha"] < 1 and area["area_type"] == "green_area"
    assert area["source_record"].startswith("overpass.json element ")


def test_out_geom_multipolygon_relations_and_open_ways(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                       home: Path) -> None:
    """`out geom;` shape: a park relation with an outer and an inner ring; a route relation is no area."""
    route = json.loads((payloads / "overpass" / "overpy_relation-04.json").read_text(encoding="utf-8"))

    def ring(lon: float, lat: float, d: float) -> list[dict[str, float]]:
        pts = [(lon, lat), (lon + d, lat), (lon + d, lat + d), (lon, lat + d), (lon, lat)]
        return [{"lon": x, "lat": y} for x, y in pts]

    park = {"type": "relation", "id": 42, "tags": {"type": "multipolygon", "leisure": "park", "name": "Hofgarten"},
            "members": [{"type": "way", "ref": 1, "role": "outer", "geometry": ring(7.10, 50.73, 0.01)},
                        {"type": "way", "ref": 2, "role": "inner", "geometry": ring(7.102, 50.732, 0.002)}]}
    route["elements"].append(park)
    server.expect_request("/api/interpreter").respond_with_data(json.dumps(route), content_type=JSON_TYPE)
    loaded = parks_city(tmp_path, server)
    parsed = parse_source(loaded, loaded.config.sources[0], fetch(loaded, home))
    assert parsed.frame is not None and parsed.frame["area_id"].to_list() == ["relation/42"]
    row = parsed.frame.row(0, named=True)
    assert row["name"] == "Hofgarten" and 75 < row["area_ha"] < 76  # ~78.5 ha outer minus ~3.1 ha hole


@pytest.mark.parametrize("name", ["overpy_remark-runtime-error-01.json"])
def test_a_runtime_error_remark_served_with_200_is_a_fetch_error(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                                 home: Path, name: str) -> None:
    good = (payloads / "overpass" / "overpy_way-03.json").read_bytes()
    server.expect_request("/api/interpreter").respond_with_data(good, content_type=JSON_TYPE)
    loaded = parks_city(tmp_path, server)
    first = fetch(loaded, home)
    server.clear()
    server.expect_request("/api/interpreter").respond_with_data((payloads / "overpass" / name).read_bytes(),
                                                                content_type=JSON_TYPE)
    with pytest.raises(FetchError, match=r"source 'green': GET http://127\.0\.0\.1:\d+/api/interpreter\?data=.*"
                                         r"Overpass error served with HTTP 200: runtime error: Query timed out"):
        fetch(loaded, home)
    assert snapshot_dirs(home, "replay-city", "green") == [first.content_sha256]  # previous snapshot intact
    assert (home / "raw" / "replay-city" / "green" / "CURRENT").read_text(encoding="utf-8").strip().endswith(
        first.content_sha256)


def test_the_xhtml_error_page_is_a_fetch_error(tmp_path: Path, server: HTTPServer, payloads: Path,
                                               home: Path) -> None:
    page = (payloads / "overpass" / "overpy_bad-request.html").read_bytes()
    server.expect_request("/api/interpreter").respond_with_data(page, status=400, content_type="text/html")
    loaded = parks_city(tmp_path, server)
    with pytest.raises(FetchError, match=r"source 'green': GET .*/api/interpreter\?data=.*HTTP 400 BAD REQUEST"):
        fetch(loaded, home)
    server.clear()
    server.expect_request("/api/interpreter").respond_with_response(Response(page, status=200))
    server.log.clear()
    with pytest.raises(FetchError, match=r"served an HTML page \(HTTP 200"):
        fetch(loaded, home)


def test_overpass_config_checks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[out:json\]"):
        make_city(tmp_path / "a", [{"id": "g", "kind": "overpass", "target": "areas",
                                    "overpass": {"query": "way[leisure=park];out geom;"},
                                    "areas": {"id_field": "id"}}])
    with pytest.raises(ConfigError, match="feeds target 'areas'"):
        make_city(tmp_path / "b", [{"id": "g", "kind": "overpass", "target": "points",
                                    "overpass": {"area_name": "Bonn"}, "points": {"point_type": "park"}}])
