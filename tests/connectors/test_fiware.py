"""kinds `ngsi_ld` and `ngsi_v2`: FIWARE context brokers replayed from recorded payloads (shared: the FIWARE
tutorials' real ones; bundled: invented ones of the same shape)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from canonical.errors import ConfigError, FetchError
from connectors.replay import FAST_HTTP, fetch, make_city, ngsi_ld_entities, orion_v2_entities
from sources.config import LoadedConfig
from warehouse.load import parse_source, read_table

CONTEXT = "http://context/ngsi-context.jsonld"


def _load(payloads: Path, name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((payloads / name).read_text(encoding="utf-8"))
    return data


def _buildings(payloads: Path, copies: int) -> list[dict[str, Any]]:
    """The layer's two Building entities, repeated under new ids so that paging has work to do."""
    recorded = _load(payloads, "fiware_ngsi_ld/getting_started_04.json")
    out = []
    for n in range(copies):
        for entity in recorded:
            copy = json.loads(json.dumps(entity))
            copy["id"] = f"{entity['id']}-{n:03d}"
            out.append(copy)
    return out


def ld_city(tmp_path: Path, server: HTTPServer, **options: Any) -> LoadedConfig:
    return make_city(tmp_path / "city", [{
        "id": "buildings", "kind": "ngsi_ld", "target": "points", "http": FAST_HTTP,
        "ngsi_ld": {"base_url": server.url_for("/"), "type": "Building", "context": CONTEXT, "key_values": True,
                    "page_size": 3, **options},
        "points": {"point_type": "building"}}], country="DE")


def test_ngsi_ld_entities_page_by_count_and_become_points(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                           expected: dict[str, Any], home: Path) -> None:
    building = expected["fiware"]["first_building"]
    server.expect_request("/ngsi-ld/v1/entities").respond_with_handler(
        ngsi_ld_entities(_buildings(payloads, 4), context=CONTEXT))
    loaded = ld_city(tmp_path, server)
    snapshot = fetch(loaded, home)
    assert len(snapshot.pages) == 3  # 8 entities, 3 a page, stopped by NGSILD-Results-Count
    requests = [req for req, _ in server.log]
    assert [r.args["offset"] for r in requests] == ["0", "3", "6"]
    assert all(r.args["count"] == "true" and r.args["options"] == "keyValues" for r in requests)
    assert all(CONTEXT in r.headers["Link"] and "json-ld#context" in r.headers["Link"] for r in requests)
    meta = json.loads((snapshot.path.parent / "meta.json").read_text(encoding="utf-8"))
    assert meta["pages"][0]["headers"]["ngsild-results-count"] == "8"
    assert "Link" in meta["request"]["headers"]
    parsed = parse_source(loaded, loaded.config.sources[0], snapshot)
    assert parsed.frame is not None and parsed.frame.height == 8
    first = parsed.frame.row(0, named=True)
    assert first["point_id"] == f"{building['id']}-000" and first["name"] == building["name"]
    assert (first["lon"], first["lat"]) == (building["lon"], building["lat"])
    assert first["source_record"] == f"page-0001.json record 1 ({building['id']}-000)"


def test_ngsi_ld_normalised_entities_with_expanded_terms(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                         expected: dict[str, Any], home: Path) -> None:
    """Without a context the broker answers with full URIs and GeoProperty / Property objects."""
    entities = _load(payloads, "fiware_ngsi_ld/getting_started_02.json")
    server.expect_request("/ngsi-ld/v1/entities").respond_with_handler(ngsi_ld_entities(entities))
    loaded = make_city(tmp_path / "city", [{
        "id": "buildings", "kind": "ngsi_ld", "target": "points", "http": FAST_HTTP,
        "ngsi_ld": {"base_url": server.url_for("/"), "type": "https://smartdatamodels.org/dataModel.Building/Building"},
        "points": {"point_type": "building"}}], country="DE")
    snapshot = fetch(loaded, home)
    parsed = parse_source(loaded, loaded.config.sources[0], snapshot)
    assert parsed.frame is not None
    assert parsed.frame["name"].to_list() == expected["fiware"]["building_names"]
    table = read_table(loaded.config.sources[0], snapshot)  # the same pages also read as records
    assert "location.value.coordinates" in table.columns


def test_ngsi_ld_without_a_count_header_stops_on_a_short_or_empty_page(tmp_path: Path, server: HTTPServer,
                                                                      payloads: Path, home: Path) -> None:
    server.expect_request("/ngsi-ld/v1/entities").respond_with_handler(
        ngsi_ld_entities(_buildings(payloads, 3), context=CONTEXT, count_header=False))
    snapshot = fetch(ld_city(tmp_path, server), home)
    # 6 entities, 3 a page, no NGSILD-Results-Count: two full pages, then an empty one ends paging.
    assert [req.args["offset"] for req, _ in server.log] == ["0", "3", "6"]
    assert [json.loads(p.read_text(encoding="utf-8")) == [] for p in snapshot.pages] == [False, False, True]


def test_ngsi_ld_problem_details_are_a_fetch_error(tmp_path: Path, server: HTTPServer, home: Path) -> None:
    server.expect_request("/ngsi-ld/v1/entities").respond_with_handler(ngsi_ld_entities([], context="http://other/ctx"))
    with pytest.raises(FetchError, match=r"source 'buildings': GET http://127\.0\.0\.1:\d+/ngsi-ld/v1/entities\?"
                                         r"type=Building.*HTTP 400 BAD REQUEST: .*Unknown @context"):
        fetch(ld_city(tmp_path, server), home)
    assert not (home / "raw" / "replay-city" / "buildings").exists() or \
        not any((home / "raw" / "replay-city" / "buildings").iterdir())


def test_ngsi_v2_orion_with_tenant_headers_and_total_count(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                          expected: dict[str, Any], home: Path) -> None:
    stores = _load(payloads, "fiware_ngsi_v2/getting_started_02.json")
    many = [{**s, "id": f"{s['id']}-{n}"} for n in range(5) for s in stores]  # 10 stores of the recorded shape
    server.expect_request("/v2/entities").respond_with_handler(
        orion_v2_entities(many, service="openiot", service_path="/berlin"))
    loaded = make_city(tmp_path / "city", [{
        "id": "stores", "kind": "ngsi_v2", "target": "points", "http": FAST_HTTP,
        "ngsi_v2": {"base_url": server.url_for("/"), "type": "Store", "service": "openiot",
                    "service_path": "/berlin", "page_size": 4},
        "points": {"point_type": "store"}}], country="DE")
    snapshot = fetch(loaded, home)
    assert len(snapshot.pages) == 3
    assert [req.args["offset"] for req, _ in server.log] == ["0", "4", "8"]
    assert all(req.args["options"] == "count,keyValues" for req, _ in server.log)
    assert snapshot.request["headers"]["Fiware-Service"] == "openiot"
    parsed = parse_source(loaded, loaded.config.sources[0], snapshot)
    assert parsed.frame is not None and parsed.frame.height == 10
    assert parsed.frame.row(0, named=True)["name"] == expected["fiware"]["first_store"]


def test_ngsi_v2_error_body_and_limit(tmp_path: Path, server: HTTPServer, home: Path) -> None:
    server.expect_request("/v2/entities").respond_with_handler(orion_v2_entities([], service="openiot"))
    with pytest.raises(ConfigError, match="page_size"):
        make_city(tmp_path / "bad", [{"id": "s", "kind": "ngsi_v2", "target": "points",
                                      "ngsi_v2": {"base_url": server.url_for("/"), "type": "Store",
                                                  "page_size": 1001}, "points": {"point_type": "store"}}])
    loaded = make_city(tmp_path / "city", [{
        "id": "stores", "kind": "ngsi_v2", "target": "points", "http": FAST_HTTP,
        "ngsi_v2": {"base_url": server.url_for("/"), "type": "Store", "service": "openiot"},
        "points": {"point_type": "store"}}], country="DE")
    snapshot = fetch(loaded, home)  # an empty tenant: one empty page, zero points
    assert parse_source(loaded, loaded.config.sources[0], snapshot).frame.height == 0  # type: ignore[union-attr]


def _headers(payloads: Path, name: str) -> dict[str, str]:
    lines = (payloads / "fiware_ngsi_ld" / name).read_text(encoding="utf-8").splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line
                and line.split(":")[0] in ("Content-Range", "Page-Size", "Next-Page", "Previous-Page",
                                           "NGSILD-Results-Count", "Link"))


def test_ngsi_ld_temporal_api_pages_by_page_anchor(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                    expected: dict[str, Any], home: Path) -> None:
    """Mintaka's recorded pages (206 + Content-Range + Next-Page); the second page's Next-Page is dropped to end."""
    temporal = expected["fiware"]["temporal"]
    anchor_wanted = temporal["next_page"]
    from werkzeug import Request, Response

    first = (payloads / "fiware_ngsi_ld" / "temporal_mintaka_06.json").read_bytes()
    second = (payloads / "fiware_ngsi_ld" / "temporal_mintaka_09.json").read_bytes()
    headers_1 = _headers(payloads, "temporal_mintaka_07.txt")
    headers_2 = {k: v for k, v in _headers(payloads, "temporal_mintaka_08.txt").items() if k != "Next-Page"}

    def handle(request: Request) -> Response:
        assert request.headers.get("NGSILD-Tenant") == "openiot" and request.args["timerel"] == "before"
        anchor = request.args.get("pageAnchor")
        body, headers = (first, headers_1) if anchor is None else (second, headers_2)
        assert anchor in (None, anchor_wanted)
        return Response(body, status=206, headers=headers, content_type="application/ld+json")

    server.expect_request("/temporal/entities").respond_with_handler(handle)
    loaded = make_city(tmp_path / "city", [{
        "id": "heart-rates", "kind": "ngsi_ld", "target": "observations", "http": FAST_HTTP,
        "ngsi_ld": {"base_url": server.url_for("/"), "type": "Animal", "context": "http://context/user-context.jsonld",
                    "tenant": "openiot",
                    "temporal": {"url": server.url_for("/temporal/entities"), "attrs": "sex,heartRate",
                                 "timerel": "before", "time_at": "2021-09-16T11:00:00Z", "last_n": 3,
                                 "time_property": "modifiedAt", "page_size": 2}},
        # The target needs a mapping; only the rows read from the temporal pages are checked here.
        "observations": {"layout": "long", "year_field": "year", "variable_field": "attribute",
                         "value_field": "value", "variables": {"heartRate": {"variable": "population",
                                                                             "unit": "person"}}}}], country="DE")
    snapshot = fetch(loaded, home)
    assert len(snapshot.pages) == 2 and [req.args.get("pageAnchor") for req, _ in server.log] == [
        None, anchor_wanted]
    meta = json.loads((snapshot.path.parent / "meta.json").read_text(encoding="utf-8"))
    assert meta["pages"][0]["status"] == 206
    assert meta["pages"][0]["headers"]["content-range"].startswith("date-time 2021-09-16T11:00-")
    table = read_table(loaded.config.sources[0], snapshot)
    assert table.columns == ["entity", "entity_type", "attribute", "observed_at", "year", "value", "unit_code"]
    heart = [row for row in table.rows if row[2] == "heartRate"]
    assert len(heart) == 12 and heart[0][:6] == temporal["first_heart_row"]
    assert table.row_label(-1).endswith("(page 2 record 8)")
