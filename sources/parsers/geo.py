"""Geometries: polygons (districts, green areas) and points from GeoJSON, shapefiles, GeoPackages,
tables and NGSI-LD entities.

`load_areas` / `load_points` turn a `FeatureSet` (sources/parsers/features.py) of any format into
areas and points in WGS84; `read_geojson_areas` is the older strict GeoJSON-only reader.

Areas are geodesic (WGS84 ellipsoid, pyproj.Geod), so no projection has to be chosen per city.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import shapely
from pyproj import Geod
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from canonical.errors import TOO_DEEP, SourceDataError
from sources.config import AreasMapping, PointsMapping

if TYPE_CHECKING:
    from sources.parsers.features import FeatureSet, GeometryReport, Placed

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
    except RecursionError:
        raise SourceDataError(display_name, TOO_DEEP) from None


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


# ---- every geometry format: GeoJSON, shapefile, GeoPackage, tables ------------------------------


def geojson_features(path: Path, display_name: str) -> FeatureSet:
    """The features of a GeoJSON FeatureCollection, in the CRS its (2008-style) `crs` member names."""
    from sources.parsers.features import FeatureSet, RawFeature, parse_crs

    payload = _load_json(path, display_name)
    features = _features(path, display_name)
    crs = None
    member = payload.get("crs")
    if member is not None:
        name = (member.get("properties") or {}).get("name") if isinstance(member, dict) else None
        if not isinstance(name, str):
            raise SourceDataError(display_name, f"cannot read the GeoJSON crs member {member!r} (expected "
                                  "{'type': 'name', 'properties': {'name': 'EPSG:...'}})")
        crs = parse_crs(name, display_name, "GeoJSON crs member")
    out: list[RawFeature] = []
    fields: list[str] = []
    for index, item in enumerate(features, start=1):
        item = item if isinstance(item, dict) else {}
        raw_props = item.get("properties")
        props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
        if "id" in item and "id" not in props:  # RFC 7946 puts a feature's identifier beside its properties
            props = {**props, "id": item["id"]}
        for key in props:
            if key not in fields:
                fields.append(key)
        geometry, problem = None, None
        raw = item.get("geometry")
        if raw is None:
            problem = "no geometry (null)"
        else:
            try:
                geometry = shape(raw)
            except Exception as exc:  # shapely raises several types for malformed geometry
                problem = f"bad geometry ({exc})"
        out.append(RawFeature(index, f"feature {index}", props, geometry, problem))
    return FeatureSet(display_name, out, crs, "GeoJSON crs member", fields)


def _text(value: Any) -> str | None:
    """A key or name as published: text stays text ('01'); 7.0 from a numeric column reads '7'."""
    if value is None:
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            return str(int(value))
    text = str(value).strip()
    return text or None


def _check_fields(features: FeatureSet, names: Sequence[str | None], source_id: str) -> None:
    if not features.features:
        raise SourceDataError(features.display_name, "the file holds no features", source_id=source_id)
    for name in names:
        if name is not None and features.fields and name not in features.fields:
            raise SourceDataError(features.display_name, f"field {name!r} not found; fields are {features.fields}",
                                  field=name, source_id=source_id)


def _ids(placed: list[Placed], id_field: str, display_name: str, source_id: str,
         report: GeometryReport) -> list[tuple[Placed, str]]:
    """Each feature with its id; a feature without one is skipped and listed, a repeated id is an error."""
    out: list[tuple[Placed, str]] = []
    seen: dict[str, str] = {}
    for item in placed:
        feature = item.feature
        key = _text(feature.properties.get(id_field))
        if key is None:
            report.skip(feature, f"no {id_field!r}")
            continue
        if key in seen:
            raise SourceDataError(display_name, f"{feature.label} repeats id {key!r} of {seen[key]}",
                                  row=feature.number, field=id_field, source_id=source_id)
        seen[key] = feature.label
        out.append((item, key))
    if not out:
        raise SourceDataError(display_name, f"no feature has an {id_field!r}", field=id_field, source_id=source_id)
    return out


def load_areas(features: FeatureSet, mapping: AreasMapping, country: str,
               source_id: str) -> tuple[list[Area], list[Placed], dict[str, Any]]:
    """Areas in WGS84 with their geodesic area, the placed features (for a population field) and the report."""
    from sources.parsers.features import to_wgs84

    _check_fields(features, (mapping.id_field, mapping.name_field), source_id)
    placed, report = to_wgs84(features, kind="areas", configured_crs=mapping.crs,
                              coordinate_order=mapping.coordinate_order, country=country, source_id=source_id)
    areas, kept = [], []
    for item, area_id in _ids(placed, mapping.id_field, features.display_name, source_id, report):
        name = _text(item.feature.properties.get(mapping.name_field)) if mapping.name_field else None
        areas.append(Area(area_id, name, item.geometry, geodesic_area_ha(item.geometry),
                          f"{features.display_name} {item.feature.label} ({mapping.id_field}={area_id})"))
        kept.append(item)
    return areas, kept, report.as_dict()


def load_points(features: FeatureSet, mapping: PointsMapping, country: str,
                source_id: str) -> tuple[list[Point], list[Placed], dict[str, Any]]:
    """Points in WGS84 lon/lat, the placed features and the report."""
    from sources.parsers.features import to_wgs84

    _check_fields(features, (mapping.id_field, mapping.name_field), source_id)
    placed, report = to_wgs84(features, kind="points", configured_crs=mapping.crs,
                              coordinate_order=mapping.coordinate_order, country=country, source_id=source_id)
    points, kept = [], []
    for item, point_id in _ids(placed, mapping.id_field, features.display_name, source_id, report):
        name = _text(item.feature.properties.get(mapping.name_field)) if mapping.name_field else None
        points.append(Point(point_id, name, float(item.geometry.x), float(item.geometry.y),
                            f"{features.display_name} {item.feature.label} ({mapping.id_field}={point_id})"))
        kept.append(item)
    return points, kept, report.as_dict()


def points_in_country(points: list[Point], country: str, display_name: str,
                      source_id: str) -> tuple[list[Point], dict[str, Any]]:
    """Entity / API points (NGSI, OpenAQ) through the same country check as file features: strays are
    skipped and listed, a source mostly outside the country (or latitude-first) is an error."""
    from sources.parsers.features import FeatureSet, RawFeature, to_wgs84

    features = FeatureSet(display_name, [RawFeature(i, p.record, {}, shapely.Point(p.lon, p.lat))
                                         for i, p in enumerate(points, start=1)])
    if not points:
        return [], {"points": 0}
    placed, report = to_wgs84(features, kind="points", configured_crs=None, coordinate_order="lon_lat",
                              country=country, source_id=source_id)
    kept = {item.feature.number for item in placed}
    return [p for i, p in enumerate(points, start=1) if i in kept], {**report.as_dict(), "points": len(kept)}
