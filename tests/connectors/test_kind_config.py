"""Config of the networked kinds: endpoints built from the kind's block, clear errors for mistakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from canonical.errors import ConfigError
from connectors.replay import make_city

OBS = {"year_field": "year", "variables": {"value": {"variable": "population", "unit": "person"}}}


def source(**fields: Any) -> dict[str, Any]:
    return {"id": "s", "target": "observations", "observations": OBS, **fields}


@pytest.mark.parametrize(("fields", "location", "fmt"), [
    ({"kind": "socrata", "socrata": {"domain": "data.cityofnewyork.us", "dataset": "ia2d-e54m"}},
     "https://data.cityofnewyork.us/resource/ia2d-e54m.json", "json"),
    ({"kind": "ckan", "ckan": {"base_url": "https://ckan.example.org/", "package": "pop", "resource": "r1"}},
     "https://ckan.example.org/api/3/action/package_show?id=pop", "json"),
    ({"kind": "opendatasoft", "opendatasoft": {"base_url": "https://data.opendatasoft.com", "dataset": "d"}},
     "https://data.opendatasoft.com/api/explore/v2.1/catalog/datasets/d", "json"),
    ({"kind": "worldbank", "worldbank": {"indicator": "SP.POP.TOTL", "country": "US"}},
     "https://api.worldbank.org/v2/country/US/indicator/SP.POP.TOTL", "json"),
    ({"kind": "http", "location": "https://example.org/stats.csv"}, "https://example.org/stats.csv", "csv"),
])
def test_endpoints_are_built_from_the_kind_block(tmp_path: Path, fields: dict[str, Any], location: str,
                                                 fmt: str) -> None:
    loaded = make_city(tmp_path / "city", [source(**fields)])
    config = loaded.config.sources[0]
    assert config.location == location
    assert config.resolved_format == fmt


@pytest.mark.parametrize(("fields", "message"), [
    ({"kind": "socrata"}, "kind 'socrata' needs a 'socrata' block"),
    ({"kind": "socrata", "socrata": {"domain": "a.org", "dataset": "abcd-1234"}, "location": "https://a.org/x.json"},
     "builds its URL from the 'socrata' block; remove 'location'"),
    ({"kind": "socrata", "socrata": {"domain": "a.org", "base_url": "https://a.org", "dataset": "abcd-1234"}},
     "give exactly one of 'domain' or 'base_url'"),
    ({"kind": "socrata", "socrata": {"domain": "a.org", "dataset": "not-a-4x4"}}, "should match pattern"),
    ({"kind": "socrata", "socrata": {"domain": "a.org", "dataset": "abcd-1234"}, "format": "csv"},
     "fetches JSON records; 'format' must be json"),
    ({"kind": "file", "location": "x.csv", "socrata": {"domain": "a.org", "dataset": "abcd-1234"}},
     r"block\(s\) \['socrata'\] do not match kind 'file'"),
    ({"kind": "file", "location": "x.csv", "http": {"timeout": 5}}, "'http' settings do not apply to kind 'file'"),
    ({"kind": "file"}, "kind 'file' needs a 'location'"),
    ({"kind": "worldbank", "worldbank": {"indicator": "SP.POP.TOTL", "country": "United States"}},
     "should match pattern"),
    ({"kind": "opendatasoft", "opendatasoft": {"base_url": "https://a.org", "dataset": "d", "page_size": 500}},
     "less than or equal to 100"),
    ({"kind": "ckan", "ckan": {"base_url": "ftp://a.org", "package": "p", "resource": "r"}}, "should match pattern"),
])
def test_mistakes_are_clear_errors(tmp_path: Path, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"city\.yaml at sources\[0\].*" + message):
        make_city(tmp_path / "city", [source(**fields)])


def test_paged_kinds_feed_observations_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pages JSON records, which feed target 'observations' only"):
        make_city(tmp_path / "city", [{"id": "s", "kind": "socrata", "target": "areas",
                                       "socrata": {"domain": "a.org", "dataset": "abcd-1234"},
                                       "areas": {"id_field": "id"}}])


def test_entity_kinds_feed_points_or_observations(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="which feed target 'points' or 'observations' or 'readings' only"):
        make_city(tmp_path / "city", [{"id": "s", "kind": "ngsi_ld", "target": "areas",
                                       "ngsi_ld": {"base_url": "http://broker:1026", "type": "Park"},
                                       "areas": {"id_field": "id"}}])
    with pytest.raises(ConfigError, match="remove 'location'"):
        make_city(tmp_path / "city2", [{"id": "s", "kind": "openaq", "target": "points",
                                        "location": "https://api.openaq.org/v3/locations",
                                        "openaq": {"endpoint": "locations"}, "points": {"point_type": "station"}}])
    with pytest.raises(ConfigError, match="eurostat format 'jsonstat' is read as 'json'"):
        make_city(tmp_path / "city3", [{"id": "s", "kind": "eurostat", "target": "observations", "format": "csv",
                                        "eurostat": {"dataset": "urb_cpop1"},
                                        "observations": {"year_field": "year", "variables": {
                                            "value": {"variable": "population", "unit": "person"}}}}])


def test_opendatasoft_export_can_feed_areas_as_geojson(tmp_path: Path) -> None:
    loaded = make_city(tmp_path / "city", [{
        "id": "parks", "kind": "opendatasoft", "target": "areas", "format": "geojson",
        "opendatasoft": {"base_url": "https://a.org", "dataset": "parks", "mode": "export"},
        "areas": {"area_type": "green_area", "id_field": "id"}}])
    assert loaded.config.sources[0].export_format == "geojson"
