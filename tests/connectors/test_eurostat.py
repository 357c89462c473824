"""kind `eurostat`: JSON-stat (2.0 and the old 1.x), SDMX-CSV and SDMX-ML, replayed from recorded payloads
(shared: the real files; bundled: invented files of the same shapes).

No real JSON-stat 2.0 `urb_*` response was found; the urban-audit test builds one in the documented
shape (dimensions freq, indic_ur, cities, time; sparse `value`), the other tests use the layer's files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from canonical.errors import FetchError, SourceDataError
from connectors.replay import FAST_HTTP, fetch, make_city
from sources.config import LoadedConfig
from sources.mapping import map_observations
from warehouse.load import read_table

URB = "/statistics/1.0/data/urb_cpop1"


def urb_cpop1() -> dict[str, Any]:
    cities = {"DE001C": "Berlin", "FI001C": "Helsinki"}
    years = ["2018", "2019", "2020"]
    values = {"0": 3613495, "1": 3644826, "2": 3664088, "3": 643272, "5": 656920}  # FI 2019 missing
    return {"version": "2.0", "class": "dataset", "label": "Population on 1 January by age groups and sex - cities",
            "source": "ESTAT", "updated": "2025-03-20T23:00:00+0100", "value": values, "status": {"4": ":"},
            "id": ["freq", "indic_ur", "cities", "time"], "size": [1, 1, 2, 3],
            "dimension": {
                "freq": {"label": "Time frequency", "category": {"index": {"A": 0}, "label": {"A": "Annual"}}},
                "indic_ur": {"label": "Urban audit indicator", "category": {
                    "index": {"DE1001V": 0}, "label": {"DE1001V": "Population on the 1st of January, total"}}},
                "cities": {"label": "Geopolitical entity", "category": {
                    "index": {code: i for i, code in enumerate(cities)}, "label": cities}},
                "time": {"label": "Time", "category": {"index": {y: i for i, y in enumerate(years)},
                                                       "label": {y: y for y in years}}}},
            "extension": {"datasetId": "urb_cpop1", "lang": "EN"}}


def eurostat_city(tmp_path: Path, server: HTTPServer, fmt: str, **extra: Any) -> LoadedConfig:
    return make_city(tmp_path / "city", [{
        "id": "urban-audit", "kind": "eurostat", "target": "observations", "http": FAST_HTTP,
        "eurostat": {"base_url": server.url_for("/"), "dataset": "urb_cpop1", "format": fmt,
                     "filters": {"cities": ["DE001C", "FI001C"], "indic_ur": "DE1001V"}, "since": "2018"},
        "observations": {"layout": "long", "year_field": "year", "area_field": "cities", "area_type": "city",
                         "variable_field": "indic_ur", "value_field": extra.pop("value_field", "value"),
                         "variables": {"DE1001V": {"variable": "population", "unit": "person"}}}}],
        country="DE", years=[2018, 2019, 2020])


def test_urban_audit_json_stat_becomes_observations_by_city_and_year(tmp_path: Path, server: HTTPServer,
                                                                      home: Path) -> None:
    def handle(request: Request) -> Response:
        assert request.args.getlist("cities") == ["DE001C", "FI001C"] and request.args["format"] == "JSON"
        assert request.args["sinceTimePeriod"] == "2018"
        return Response(json.dumps(urb_cpop1()), content_type="application/json")

    server.expect_request(URB).respond_with_handler(handle)
    loaded = eurostat_city(tmp_path, server, "jsonstat")
    snapshot = fetch(loaded, home)
    assert snapshot.path.name == "urb_cpop1.json"
    source = loaded.config.sources[0]
    table = read_table(source, snapshot)
    assert table.columns == ["freq", "indic_ur", "cities", "time", "year", "value", "status"]
    assert len(table.rows) == 5 and table.rows[3][2:6] == ["FI001C", "2018", "2018", "643272"]
    frame, _ = map_observations(table, source, city_id="replay-city", snapshot_id=snapshot.snapshot_id)
    got = {(r["area_id"], r["year"]): r["value"] for r in frame.iter_rows(named=True)}
    assert got == {("DE001C", 2018): 3613495, ("DE001C", 2019): 3644826, ("DE001C", 2020): 3664088,
                   ("FI001C", 2018): 643272, ("FI001C", 2020): 656920}


def test_json_stat_files_old_and_2_0(tmp_path: Path, server: HTTPServer, payloads: Path, expected: dict[str, Any],
                                    home: Path) -> None:
    facts = expected["eurostat"]
    old = (payloads / "eurostat" / "jsonstatpy_old-wdds-jsonstat1_eurostat-name_gpd_c-geo_IT.json").read_bytes()
    server.expect_request(URB).respond_with_data(old, content_type="application/json")
    loaded = eurostat_city(tmp_path, server, "jsonstat")
    snapshot = fetch(loaded, home)
    table = read_table(loaded.config.sources[0], snapshot)
    assert table.columns[:4] == ["unit", "indic_na", "geo", "time"] and len(table.rows) > 0
    assert len(table.rows) == facts["jsonstat_1_rows"]
    assert all(row[2] == facts["jsonstat_1_geo"] and row[4] == row[3][:4] for row in table.rows)
    from sources.parsers.eurostat import read_jsonstat

    galicia = read_jsonstat(payloads / "jsonstat" / "pyjstat_galicia-2.0.json", "galicia.json")
    assert len(galicia.columns) == 6 + 3 and len(galicia.rows) == facts["jsonstat_2_rows"]


def test_sdmx_csv_and_sdmx_ml(tmp_path: Path, server: HTTPServer, payloads: Path, expected: dict[str, Any],
                              home: Path) -> None:
    facts = expected["eurostat"]
    csv_body = (payloads / "eurostat" / "sdmx-csv-v2-spec_example-01.csv").read_bytes()
    server.expect_request("/sdmx/2.1/data/urb_cpop1/DE001C+FI001C.DE1001V").respond_with_data(
        csv_body, content_type="application/vnd.sdmx.data+csv")
    loaded = make_city(tmp_path / "csv", [{
        "id": "urban-audit", "kind": "eurostat", "target": "observations",
        "http": {**FAST_HTTP, "content_types": ["application/vnd.sdmx.data+csv"]},
        "eurostat": {"base_url": server.url_for("/"), "dataset": "urb_cpop1", "format": "sdmx-csv",
                     "filters": {"cities": ["DE001C", "FI001C"], "indic_ur": "DE1001V"}},
        "observations": {"year_field": "DIM_3", "variables": {"OBS_VALUE": {"variable": "population",
                                                                             "unit": "person"}}}}])
    snapshot = fetch(loaded, home)
    assert server.log[0][0].args["format"] == "SDMX-CSV"
    table = read_table(loaded.config.sources[0], snapshot)
    assert table.columns[:7] == ["STRUCTURE", "STRUCTURE_ID", "ACTION", "DIM_1", "DIM_2", "DIM_3", "OBS_VALUE"]
    xml = (payloads / "eurostat" / "sdmx-test-data_NAMA_10_GDP-ss.xml").read_bytes()
    server.expect_request("/sdmx/2.1/data/urb_cpop1/DE001C+FI001C.DE1001V").respond_with_data(
        xml, content_type="application/vnd.sdmx.structurespecificdata+xml;version=2.1")
    server.clear()
    server.expect_request("/sdmx/2.1/data/urb_cpop1/DE001C+FI001C.DE1001V").respond_with_data(
        xml, content_type="application/vnd.sdmx.structurespecificdata+xml;version=2.1")
    loaded = eurostat_city(tmp_path / "ml", server, "sdmx-ml", value_field="OBS_VALUE")
    snapshot = fetch(loaded, home)
    table = read_table(loaded.config.sources[0], snapshot)
    assert table.columns == ["geo", "na_item", "unit", "freq", "TIME_PERIOD", "OBS_VALUE", "year"]
    assert [row[-1] for row in table.rows] == facts["sdmx_ml_years"]
    assert table.rows[0][5] == facts["sdmx_ml_first_value"]


def test_sdmx_ml_variants_parse(payloads: Path, expected: dict[str, Any]) -> None:
    from sources.parsers.eurostat import read_sdmx_ml

    name = "sdmx-test-data_demography-xs.xml"  # cross-sectional: observations carry their own attributes
    table = read_sdmx_ml(payloads / "eurostat" / name, name)
    assert len(table.rows) == expected["eurostat"]["sdmx_xs_rows"] and "OBS_VALUE" in table.columns
    structure = "sdmx-test-data_GOV_10Q_GGNFA.xml"  # a structure message, not data
    with pytest.raises(SourceDataError, match=r"sdmx-test-data_GOV_10Q_GGNFA\.xml: no SDMX DataSet element"):
        read_sdmx_ml(payloads / "eurostat" / structure, structure)


def test_an_html_page_instead_of_data_is_a_fetch_error(tmp_path: Path, server: HTTPServer, home: Path) -> None:
    server.expect_request(URB).respond_with_data(b"<!DOCTYPE html><html><body>Service unavailable</body></html>",
                                                 content_type="text/html")
    with pytest.raises(FetchError, match=r"source 'urban-audit': GET http://127\.0\.0\.1:\d+/statistics/1\.0/data/"
                                         r"urb_cpop1\?format=JSON.*served an HTML page"):
        fetch(eurostat_city(tmp_path, server, "jsonstat"), home)
