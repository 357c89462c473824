"""World Bank Indicators v2 replay, built from the documented `[meta, data]` shape (no real sample exists)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from canonical.errors import FetchError
from connectors.replay import FAST_HTTP, fetch, json_response, make_city, world_bank_pages
from sources.config import LoadedConfig
from sources.mapping import map_observations
from warehouse.load import read_table

PATH = "/v2/country/US/indicator/SP.DYN.LE00.IN"
VALUES: dict[int, float | None] = {2016: 78.5, 2017: 78.5, 2018: 78.6, 2019: 78.8, 2020: 77.0, 2021: None}


def wb_city(tmp_path: Path, server: HTTPServer, **http: object) -> LoadedConfig:
    return make_city(tmp_path / "city", [{
        "id": "life", "kind": "worldbank", "target": "observations",
        "worldbank": {"indicator": "SP.DYN.LE00.IN", "country": "US", "date": "2016:2021", "per_page": 4,
                      "base_url": server.url_for("/v2")},
        "http": {**FAST_HTTP, **http},
        "observations": {"layout": "long", "year_field": "year", "variable_field": "indicator",
                         "value_field": "value",
                         "variables": {"SP.DYN.LE00.IN": {"variable": "life_expectancy_years", "unit": "year"}}},
    }])


def test_pages_map_to_observations_with_nulls_as_empty_cells(tmp_path: Path, server: HTTPServer, home: Path) -> None:
    server.expect_request(PATH).respond_with_handler(
        world_bank_pages("SP.DYN.LE00.IN", "Life expectancy at birth, total (years)",
                         ("US", "USA", "United States"), VALUES))
    loaded = wb_city(tmp_path, server)
    snapshot = fetch(loaded, home)
    assert len(snapshot.pages) == 2  # 6 values, 4 per page
    assert all(req.args["format"] == "json" and req.args["date"] == "2016:2021" for req, _ in server.log)
    source = loaded.config.sources[0]
    table = read_table(source, snapshot)
    assert table.columns[:4] == ["year", "date", "value", "indicator"]
    assert [row[0] for row in table.rows] == ["2021", "2020", "2019", "2018", "2017", "2016"]
    assert table.rows[0][2] == ""  # null value
    assert table.row_label(5) == "6 (page 2 record 2)"
    frame, report = map_observations(table, source, city_id="replay-city", snapshot_id=snapshot.snapshot_id)
    assert report.empty_cells == 1
    values = dict(zip(frame["year"].to_list(), frame["value"].to_list(), strict=True))
    assert values == {2016: 78.5, 2017: 78.5, 2018: 78.6, 2019: 78.8, 2020: 77.0}
    record = frame.filter(frame["year"] == 2016)["source_record"][0]
    assert record == "page-0001.json..page-0002.json row 6 (page 2 record 2) field 'value'"


def test_an_error_message_served_with_200_is_a_fetch_error(tmp_path: Path, server: HTTPServer, home: Path) -> None:
    body = [{"message": [{"id": "120", "key": "Invalid value", "value": "The provided parameter value is not valid"}]}]
    server.expect_request(PATH).respond_with_response(json_response(body))
    with pytest.raises(FetchError, match=r"source 'life': GET .*SP\.DYN\.LE00\.IN\?format=json.*World Bank API error: "
                                         r"Invalid value: The provided parameter value is not valid"):
        fetch(wb_city(tmp_path, server), home)


def test_xml_instead_of_json_is_a_wrong_content_type(tmp_path: Path, server: HTTPServer, home: Path) -> None:
    server.expect_request(PATH).respond_with_data(b"<?xml version='1.0'?><wb:data/>", content_type="application/xml")
    with pytest.raises(FetchError, match=r"source 'life': GET http://127\.0\.0\.1:\d+/v2/country/US/indicator/"
                                         r"SP\.DYN\.LE00\.IN\?.*unexpected content type 'application/xml' where "
                                         r"JSON was expected"):
        fetch(wb_city(tmp_path, server), home)
    assert len(server.log) == 1  # not retried: it will not change


def test_no_data_is_an_empty_snapshot_not_an_error(tmp_path: Path, server: HTTPServer, home: Path) -> None:
    server.expect_request(PATH).respond_with_handler(
        world_bank_pages("SP.DYN.LE00.IN", "Life expectancy", ("US", "USA", "United States"), {}))
    loaded = wb_city(tmp_path, server)
    snapshot = fetch(loaded, home)
    assert len(read_table(loaded.config.sources[0], snapshot).rows) == 0
