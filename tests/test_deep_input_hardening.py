"""Deeply nested JSON and YAML (issue #14): every reader ends in one clear error naming the file, never a
RecursionError for the CLI's last-resort handler. Two depths per reader: far beyond what Python's parser
takes (100,000 levels) and just within it (a document that parses but whose walk would recurse too far)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from canonical.errors import ConfigError, SourceDataError
from sources.config import PointsMapping, load_city_config

FAR = 100_000
NEAR = 950  # close to Python's recursion limit (1,000): may parse, then the reader's own walk recurses


def _nested(depth: int, leaf: str = "1") -> str:
    return '{"a": ' * depth + leaf + "}" * depth


def _tabular(path: Path, depth: int) -> Any:
    from sources.parsers.tabular import read_json_records

    path.write_text('{"records": [{"year": 2023, "deep": ' + _nested(depth) + "}]}", encoding="utf-8")
    return read_json_records(path, path.name)


def _tabular_arrays(path: Path, depth: int) -> Any:
    from sources.parsers.tabular import read_json_records

    path.write_text("[" * depth + "]" * depth, encoding="utf-8")
    return read_json_records(path, path.name)


def _geojson(path: Path, depth: int) -> Any:
    from sources.parsers.geo import geojson_features

    path.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": '
                    + _nested(depth) + ', "geometry": {"type": "Point", "coordinates": [8.6, 50.1]}}]}',
                    encoding="utf-8")
    return geojson_features(path, path.name)


def _ngsi_entities(path: Path, depth: int) -> Any:
    from sources.parsers.geo import read_ngsi_ld_points

    path.write_text('[{"id": "urn:x:1", "type": "Station", "location": {"type": "GeoProperty", "value": '
                    '{"type": "Point", "coordinates": [8.6, 50.1]}}, "deep": ' + _nested(depth) + "}]",
                    encoding="utf-8")
    return read_ngsi_ld_points(path, PointsMapping(point_type="station"), path.name, "stations")


def _ngsi_pages(path: Path, depth: int) -> Any:
    from sources.parsers.pages import read_json_pages

    page = path.with_name("page-0001.json")
    page.write_text('[{"id": "urn:x:1", "deep": ' + _nested(depth) + "}]", encoding="utf-8")
    return read_json_pages([page])


def _ngsi_temporal_pages(path: Path, depth: int) -> Any:
    from sources.parsers.pages import read_json_pages

    page = path.with_name("page-0001.json")
    page.write_text('[{"id": "urn:x:1", "type": "AirQualityObserved", "no2": [{"type": "Property", "value": 1, '
                    '"observedAt": "2023-01-01T00:00:00Z", "deep": ' + _nested(depth) + "}]}]", encoding="utf-8")
    return read_json_pages([page], temporal=True)


def _jsonstat(path: Path, depth: int) -> Any:
    from sources.parsers.eurostat import read_jsonstat

    path.write_text('{"version": "2.0", "class": "dataset", "extension": ' + _nested(depth) + "}", encoding="utf-8")
    return read_jsonstat(path, path.name)


def _overpass(path: Path, depth: int) -> Any:
    from sources.config import AreasMapping
    from sources.parsers.overpass import read_overpass_areas

    path.write_text('{"elements": [], "osm3s": ' + _nested(depth) + "}", encoding="utf-8")
    return read_overpass_areas(path, AreasMapping(area_type="green_space", id_field="id"), path.name, "parks")


READERS: dict[str, Callable[[Path, int], Any]] = {
    "tabular-json": _tabular, "tabular-json-arrays": _tabular_arrays, "geojson": _geojson,
    "ngsi-entities": _ngsi_entities, "ngsi-pages": _ngsi_pages, "ngsi-temporal-pages": _ngsi_temporal_pages,
    "jsonstat": _jsonstat, "overpass": _overpass,
}


@pytest.mark.parametrize("depth", [FAR, NEAR], ids=["far", "near"])
@pytest.mark.parametrize("reader", list(READERS))
def test_deep_json_is_one_clear_error_naming_the_file(tmp_path: Path, reader: str, depth: int) -> None:
    path = tmp_path / "deep.json"
    try:
        READERS[reader](path, depth)
    except SourceDataError as exc:
        message = str(exc)
        assert "\n" not in message and len(message) < 700, message
        if depth == FAR or "nested deeper" in message:
            assert "nested deeper than citykpi reads" in message, message
            assert "deep.json" in message or "page-0001.json" in message, message
    except RecursionError as exc:  # the defect this test exists for
        pytest.fail(f"{reader}: RecursionError escaped: {exc}")
    else:
        # A document that parses may also be read (its deep member ignored); far too deep never is.
        assert depth == NEAR, f"{reader}: a {depth}-level document was accepted"


@pytest.mark.parametrize("depth", [FAR, NEAR], ids=["far", "near"])
def test_deep_yaml_config_is_one_clear_error_naming_the_file(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "city.yaml"
    path.write_text("city: {id: deep, name: Deep, country: DE, reporting_years: [2023]}\nsources: []\n"
                    "notes: " + "[" * depth + "]" * depth + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_city_config(path)
    message = str(info.value)
    assert "city.yaml" in message and "\n" not in message, message
    if depth == FAR:
        assert "YAML nested deeper than citykpi reads" in message, message
