"""End to end over four loopback platforms: a New York config whose sources sit behind a Socrata, a
CKAN, an OpenDataSoft and a World Bank replay runs through `run_plain` into KPIs; `offline=True`
then reproduces exactly the same KPI values with the server answering nothing.

Data: NYC water-consumption table (Socrata `ia2d-e54m`: population), NYS LAUS unemployment (CKAN
DataStore, December rows as the year's figure), NYC parks polygons (OpenDataSoft GeoJSON export:
green area) — the real files from ../shared (shared layer) or tiny invented ones of the same shape
(bundled layer) — and US life expectancy from the World Bank's documented response shape (values
illustrative; no real sample exists).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pytest_httpserver import HTTPServer

from connectors.replay import (
    FAST_HTTP,
    ckan_datastore,
    ckan_package_show,
    make_city,
    read_csv_rows,
    socrata_rows,
    world_bank_pages,
)
from pipelines.steps import run_plain
from sources.config import LoadedConfig
from warehouse.home import Home

PARKS = "/api/explore/v2.1/catalog/datasets/nyc-parks-properties/exports/geojson"
LIFE_EXPECTANCY = {2017: 78.54, 2018: 78.64, 2019: 78.79, 2020: 76.98, 2021: None}
EXPECTED_COMPUTED = {"EC:P:EM:1C", "EN:EN:PSN:1C", "SC:EH:H:1C"}  # unemployment, green area, life expectancy


def serve_city(server: HTTPServer, payloads: Path, new_york: Path, resource: str) -> None:
    water = read_csv_rows(new_york / "Water_Consumption_in_the_City_of_New_York.csv")
    socrata = [{"year": r["Year"], "new_york_city_population": r["New York City Population"].replace(",", ""),
                "nyc_consumption_million_gallons_per_day": r["NYC Consumption(Million gallons per day)"]
                .replace(",", "")} for r in water]
    server.expect_request("/resource/ia2d-e54m.json").respond_with_handler(socrata_rows(socrata))

    server.expect_request("/api/3/action/package_show").respond_with_json(ckan_package_show(payloads, server))
    laus = [{"_id": i, **row} for i, row in enumerate(read_csv_rows(new_york / "LAUS_NYC_subset.csv"), start=1)]
    server.expect_request("/api/3/action/datastore_search").respond_with_handler(ckan_datastore(resource, laus))

    parks = (new_york / "nyc_parks.geojson").read_bytes()
    server.expect_request(PARKS).respond_with_data(parks, content_type="application/geo+json")

    server.expect_request("/v2/country/US/indicator/SP.DYN.LE00.IN").respond_with_handler(world_bank_pages(
        "SP.DYN.LE00.IN", "Life expectancy at birth, total (years)", ("US", "USA", "United States"),
        LIFE_EXPECTANCY))


def city(tmp_path: Path, server: HTTPServer, package: str, resource: str) -> LoadedConfig:
    root = server.url_for("/").rstrip("/")
    sources: list[dict[str, Any]] = [
        {"id": "water", "kind": "socrata", "target": "observations", "http": FAST_HTTP,
         "socrata": {"base_url": root, "dataset": "ia2d-e54m", "page_size": 20},
         "observations": {"year_field": "year", "variables": {
             "new_york_city_population": {"variable": "population", "unit": "person"}}}},
        {"id": "laus", "kind": "ckan", "target": "observations", "http": FAST_HTTP,
         "ckan": {"base_url": root, "package": package, "resource": resource, "page_size": 25,
                  "filters": {"Area": "New York City", "Month": "12"}},
         "observations": {"year_field": "Year", "variables": {
             "Labor Force": {"variable": "labour_force", "unit": "person"},
             "Unemployed": {"variable": "unemployed_persons", "unit": "person"}}}},
        {"id": "parks", "kind": "opendatasoft", "target": "areas", "format": "geojson", "http": FAST_HTTP,
         "opendatasoft": {"base_url": root, "dataset": "nyc-parks-properties", "mode": "export"},
         "areas": {"area_type": "green_area", "id_field": "GISPROPNUM", "name_field": "PARK_NAME"}},
        {"id": "life", "kind": "worldbank", "target": "observations", "http": FAST_HTTP,
         "worldbank": {"indicator": "SP.DYN.LE00.IN", "country": "US", "date": "2017:2021", "per_page": 3,
                       "base_url": f"{root}/v2"},
         "observations": {"layout": "long", "year_field": "year", "variable_field": "indicator",
                          "value_field": "value", "variables": {
                              "SP.DYN.LE00.IN": {"variable": "life_expectancy_years", "unit": "year"}}}},
    ]
    return make_city(tmp_path / "city", sources, years=[2019, 2020], city_id="replay-nyc")


def kpi_rows(home: Home) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        return con.execute("""SELECT indicator_id, year, data_point, status, value, numerator, denominator
                              FROM kpi_values WHERE city_id = 'replay-nyc'
                              ORDER BY indicator_id, year, data_point""").fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_four_platforms_to_kpis_and_offline_reproduces_them(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                            new_york: Path, expected: dict[str, Any]) -> None:
    package, resource = expected["ckan"]["package"], expected["ckan"]["resource_id"]
    serve_city(server, payloads, new_york, resource)
    loaded = city(tmp_path, server, package, resource)
    home = Home((tmp_path / "home").resolve()).ensure()

    online = run_plain(home, [loaded], "run-online")
    kinds = {s.kind for s in loaded.config.sources}
    assert kinds == {"socrata", "ckan", "opendatasoft", "worldbank"}
    assert online.kpi_status["replay-nyc"].get("computed", 0) >= 6
    rows = kpi_rows(home)
    computed = {(r[0], r[1]): r[4] for r in rows if r[3] == "computed"}
    for indicator in EXPECTED_COMPUTED:
        assert {(indicator, 2019), (indicator, 2020)} <= set(computed), (indicator, sorted(computed))
    # Spot checks against the published figures the replays serve.
    assert computed[("SC:EH:H:1C", 2019)] == pytest.approx(78.79)
    dec_2019 = next(r for r in read_csv_rows(new_york / "LAUS_NYC_subset.csv")
                    if r["Area"] == "New York City" and r["Year"] == "2019" and r["Month"] == "12")
    assert computed[("EC:P:EM:1C", 2019)] == pytest.approx(
        100 * int(dec_2019["Unemployed"]) / int(dec_2019["Labor Force"]))
    loads = online.loads["replay-nyc"]["sources"]
    assert loads["parks"]["features"] == expected["end_to_end"]["park_features"]
    assert loads["water"]["rows_read"] == expected["end_to_end"]["water_rows"] and loads["life"]["empty_cells"] == 1
    manifest = json.loads((online.release.path / "manifest.json").read_text(encoding="utf-8"))
    assert {s["source_id"] for s in manifest["input_snapshots"]} == {"water", "laus", "parks", "life"}
    requests_online = len(server.log)

    server.clear()  # from here on any request would be answered 500 and logged
    offline = run_plain(home, [loaded], "run-offline", offline=True)
    assert server.log == [] and requests_online > 0
    assert kpi_rows(home) == rows
    assert offline.kpi_status == online.kpi_status
    assert offline.release.path != online.release.path
