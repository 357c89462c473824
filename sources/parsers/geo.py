"""Geometries: GeoJSON polygons (districts, green areas) and NGSI-LD / GeoJSON points.

Areas are geodesic (WGS84 ellipsoid, pyproj.Geod), so no projection has to be chosen per city.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from pyproj import Geod
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from sources.config import AreasMapping, PointsMapping
from sources.errors import SourceDataError

_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class Area:
    area_id: str
    name: str | None
    geometry: BaseGeometry
    area_ha: float
    record: str


@dataclass(frozen=True)
class Point:
    point_id: str
    name: str | None
    lon: float
    lat: float
    record: str


def geodesic_area_ha(geometry: BaseGeometry) -> float:
    """Area on the WGS84 ellipsoid; holes are subtracted whatever the ring orientation in the file."""
    total_m2 = 0.0
    for part in shapely.get_parts(geometry):
        if part.geom_type == "Polygon":
            # pyproj signs ring areas by orientation; orient() makes the shell CCW and the holes CW.
            area_m2, _ = _GEOD.geometry_area_perimeter(orient(part, sign=1.0))
            total_m2 += abs(area_m2)
        elif part.geom_type in ("MultiPolygon", "GeometryCollection"):
            total_m2 += geodesic_area_ha(part) * 10_000.0
    return total_m2 / 10_000.0


def _lon_lat_ok(lon: float, lat: float) -> bool:
    return math.isfinite(lon) and math.isfinite(lat) and -180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0


def _load_json(path: Path, display_name: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceDataError(display_name, f"not valid JSON: {exc}") from None


def _features(path: Path, display_name: str) -> list[dict[str, Any]]:
    payload = _load_json(path, display_name)
    if not isinstance(payload, dict) or payload.get("type") != "FeatureCollection":
        raise SourceDataError(display_name, "expected a GeoJSON FeatureCollection")
    features = payload.get("features")
    if not isinstance(features, list):
        raise SourceDataError(display_name, "FeatureCollection has no 'features' list")
    return features


def read_geojson_areas(path: Path, mapping: AreasMapping, display_name: str, source_id: str) -> list[Area]:
    areas: list[Area] = []
    seen: dict[str, int] = {}
    for index, feature in enumerate(_features(path, display_name), start=1):
        where = f"feature {index}"
        props = feature.get("properties") or {}
        raw_id = props.get(mapping.id_field)
        if raw_id is None or str(raw_id).strip() == "":
            raise SourceDataError(display_name, f"{where} has no {mapping.id_field!r}", row=index,
                                  field=mapping.id_field, source_id=source_id)
        area_id = str(raw_id).strip()
        if area_id in seen:
            raise SourceDataError(display_name, f"{where} repeats id {area_id!r} of feature {seen[area_id]}",
                                  row=index, field=mapping.id_field, source_id=source_id)
        seen[area_id] = index
        try:
            geometry = shape(feature["geometry"])
        except Exception as exc:  # shapely raises several types for malformed geometry
            raise SourceDataError(display_name, f"{where}: bad geometry ({exc})", row=index, field="geometry",
                                  source_id=source_id) from None
        if geometry.geom_type not in ("Polygon", "MultiPolygon"):
            raise SourceDataError(display_name, f"{where}: expected a polygon, got {geometry.geom_type}",
                                  row=index, field="geometry", source_id=source_id)
        min_lon, min_lat, max_lon, max_lat = geometry.bounds
        if not (_lon_lat_ok(min_lon, min_lat) and _lon_lat_ok(max_lon, max_lat)):
            raise SourceDataError(display_name, f"{where}: coordinates are not WGS84 longitude/latitude "
                                  f"(bounds {geometry.bounds}); GeoJSON must use EPSG:4326",
                                  row=index, field="geometry", source_id=source_id)
        if not geometry.is_valid:
            geometry = shapely.make_valid(geometry)
        name = props.get(mapping.name_field) if mapping.name_field else None
        areas.append(Area(area_id, None if name is None else str(name), geometry, geodesic_area_ha(geometry),
                          f"{display_name} feature {index} ({mapping.id_field}={area_id})"))
    return areas


def _ngsi_value(entity: dict[str, Any], key: str) -> Any:
    value = entity.get(key)
    if isinstance(value, dict) and "value" in value:
        return value["value"]
    return value


def read_ngsi_ld_points(path: Path, mapping: PointsMapping, display_name: str, source_id: str) -> list[Point]:
    """Entities (normalised or key-values) with a GeoProperty `location` of type Point."""
    payload = _load_json(path, display_name)
    entities = payload if isinstance(payload, list) else [payload]
    return [entity_point(entity, index, mapping, display_name, source_id, f"{display_name} entity {index}")
            for index, entity in enumerate(entities, start=1)]


def read_page_points(pages: Sequence[Path], mapping: PointsMapping, display_name: str,
                     source_id: str) -> list[Point]:
    """Points from every page of a paged snapshot (NGSI-LD / NGSI v2 entities, OpenAQ locations)."""
    from sources.parsers.pages import page_records

    points: list[Point] = []
    for page_number, page in enumerate(pages, start=1):
        where = f"{display_name} page {page_number} ({page.name})"
        for index, record in enumerate(page_records(page, where), start=1):
            points.append(entity_point(record, len(points) + 1, mapping, display_name, source_id,
                                       f"{page.name} record {index}"))
    return points


def _name_of(entity: dict[str, Any]) -> Any:
    if "name" in entity:
        return _ngsi_value(entity, "name")
    key = next((k for k in entity if k.endswith(("/name", "#name"))), None)  # expanded NGSI-LD terms
    return _ngsi_value(entity, key) if key else None


def entity_point(entity: Any, index: int, mapping: PointsMapping, display_name: str, source_id: str,
                 record: str) -> Point:
    """One point from an NGSI entity (`location` GeoProperty / geo:json / key-values) or an OpenAQ
    location (`coordinates: {latitude, longitude}`)."""
    if not isinstance(entity, dict):
        raise SourceDataError(display_name, f"entity {index} is not an object", row=index, source_id=source_id)
    point_id = _ngsi_value(entity, mapping.id_field)
    if point_id is None or str(point_id) == "":
        raise SourceDataError(display_name, f"entity {index} has no {mapping.id_field!r}", row=index,
                              field=mapping.id_field, source_id=source_id)
    location = _ngsi_value(entity, "location")
    openaq = entity.get("coordinates") if location is None else None
    if isinstance(openaq, dict) and "latitude" in openaq:
        coords: Any = [openaq.get("longitude"), openaq.get("latitude")]
    else:
        coords = location.get("coordinates") if isinstance(location, dict) else None
        if not (isinstance(location, dict) and location.get("type") == "Point" and isinstance(coords, list)
                and len(coords) >= 2):
            raise SourceDataError(display_name, f"entity {point_id}: location is not a GeoJSON Point",
                                  row=index, field="location", source_id=source_id)
    try:
        lon, lat = float(coords[0]), float(coords[1])
    except (TypeError, ValueError):
        lon = lat = math.nan
    if not _lon_lat_ok(lon, lat):
        raise SourceDataError(display_name, f"entity {point_id}: coordinates {coords[:2]} are not a WGS84 "
                              "longitude/latitude", row=index, field="location", source_id=source_id)
    name = _name_of(entity)
    return Point(str(point_id), None if name is None else str(name), lon, lat, f"{record} ({point_id})")
