"""OpenDataSoft Explore v2.1 replay: records pages (100 a page, offset + limit <= 10,000) and exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from canonical.errors import FetchError
from connectors.replay import FAST_HTTP, fetch, json_response, make_city, ods_records, read_csv_rows
from sources.config import LoadedConfig
from warehouse.load import read_table

DATASET = "geonames-all-cities-with-a-population-1000"
BASE = f"/api/explore/v2.1/catalog/datasets/{DATASET}"


def ods_city(tmp_path: Path, server: HTTPServer, *, fmt: str | None = None, **ods: Any) -> LoadedConfig:
    return make_city(tmp_path / "city", [{
        "id": "ods", "kind": "opendatasoft", "target": "observations", **({"format": fmt} if fmt else {}),
        "opendatasoft": {"base_url": server.url_for("/").rstrip("/"), "dataset": DATASET, **ods},
        "http": FAST_HTTP,
        "observations": {"year_field": "year", "variables": {"population": {"variable": "population",
                                                                            "unit": "person"}}},
    }])


def test_records_pages_of_a_neighbourhood_table(tmp_path: Path, server: HTTPServer, new_york: Path,
                                                expected: dict[str, Any], home: Path) -> None:
    table_facts = expected["opendatasoft"]["neighbourhoods"]
    size = table_facts["page_size"]
    rows = read_csv_rows(new_york / "Internet_Master_Plan__Adoption_and_Infrastructure_Data_by_Neighborhood.csv")
    assert len(rows) == table_facts["rows"]
    server.expect_request(f"{BASE}/records").respond_with_handler(ods_records(rows))
    loaded = ods_city(tmp_path, server, **({} if size == 100 else {"page_size": size}))  # 100: the default
    snapshot = fetch(loaded, home)
    assert len(snapshot.pages) == table_facts["pages"]  # shared 100 + 95, bundled 5 + 5 + 2: offset reaches total
    limits = {req.args.get("limit") for req, _ in server.log}
    assert limits == {str(size)}
    table = read_table(loaded.config.sources[0], snapshot)
    assert len(table.rows) == table_facts["rows"]
    assert table.row_label(size) == f"{size + 1} (page 2 record 1)"


def test_the_records_sample_is_read_with_nested_fields_flattened(tmp_path: Path, server: HTTPServer,
                                                                 payloads: Path, expected: dict[str, Any],
                                                                 home: Path) -> None:
    facts = expected["opendatasoft"]["sample"]
    sample = (payloads / "opendatasoft" / "ods-openapi-v2.1_example_records-v2.1.json").read_bytes()
    records = json.loads(sample)["results"]
    body = json.dumps({"total_count": len(records), "results": records}).encode()
    server.expect_request(f"{BASE}/records").respond_with_response(json_response(body))
    loaded = ods_city(tmp_path, server, mode="records")
    snapshot = fetch(loaded, home)
    table = read_table(loaded.config.sources[0], snapshot)
    assert len(table.rows) == facts["records"]
    assert "coordinates.lat" in table.columns and "coordinates.lon" in table.columns
    assert table.rows[0][table.columns.index("population")] == facts["first_population"]
    assert table.rows[1][table.columns.index("alternate_names")].startswith(facts["second_alternate_names_start"])


def test_auto_switches_to_the_export_when_total_count_exceeds_the_window(tmp_path: Path, server: HTTPServer,
                                                                         payloads: Path, expected: dict[str, Any],
                                                                         home: Path) -> None:
    facts = expected["opendatasoft"]["sample"]
    sample = (payloads / "opendatasoft" / "ods-openapi-v2.1_example_records-v2.1.json").read_bytes()
    assert json.loads(sample)["total_count"] == facts["total_count"]  # too many for /records
    export = json.dumps(json.loads(sample)["results"]).encode()
    server.expect_request(f"{BASE}/records").respond_with_response(json_response(sample))
    server.expect_request(f"{BASE}/exports/json").respond_with_response(json_response(export))
    loaded = ods_city(tmp_path, server)
    snapshot = fetch(loaded, home)
    assert snapshot.paged is False
    assert [p.name for p in snapshot.pages] == ["export.json"]
    assert snapshot.path.read_bytes() == export
    meta = json.loads((snapshot.path.parent / "meta.json").read_text(encoding="utf-8"))
    assert meta["request"]["mode"] == "export" and len(meta["pages"]) == 1
    assert len(read_table(loaded.config.sources[0], snapshot).rows) == facts["records"]


def test_records_mode_refuses_more_than_the_window(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                   expected: dict[str, Any], home: Path) -> None:
    total = expected["opendatasoft"]["sample"]["total_count"]
    sample = (payloads / "opendatasoft" / "ods-openapi-v2.1_example_records-v2.1.json").read_bytes()
    server.expect_request(f"{BASE}/records").respond_with_response(json_response(sample))
    with pytest.raises(FetchError, match=rf"source 'ods': GET .*/records\?.*{total:,} records exceed .*mode: export"):
        fetch(ods_city(tmp_path, server, mode="records"), home)


def test_export_mode_lands_a_geojson_export_for_areas(tmp_path: Path, server: HTTPServer, new_york: Path,
                                                      home: Path) -> None:
    body = (new_york / "community-districts.geojson").read_bytes()
    server.expect_request(f"{BASE}/exports/geojson").respond_with_data(body, content_type="application/geo+json")
    loaded = make_city(tmp_path / "city", [{
        "id": "districts", "kind": "opendatasoft", "target": "areas", "format": "geojson",
        "opendatasoft": {"base_url": server.url_for("/").rstrip("/"), "dataset": DATASET, "mode": "export"},
        "http": FAST_HTTP, "areas": {"area_type": "district", "id_field": "boro_cd"},
    }])
    snapshot = fetch(loaded, home)
    assert snapshot.path.name == "export.geojson" and snapshot.path.read_bytes() == body


def test_the_quota_error_is_retried_then_reported(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                  home: Path) -> None:
    quota = (payloads / "opendatasoft" / "ods-openapi-v2.1_example_429_quota.json").read_bytes()
    server.expect_request(f"{BASE}/records").respond_with_response(json_response(quota, status=429))
    with pytest.raises(FetchError, match=r"source 'ods': GET .*/records.*HTTP 429 .*gave up after 3 attempt"):
        fetch(ods_city(tmp_path, server), home)
    assert len(server.log) == 3
