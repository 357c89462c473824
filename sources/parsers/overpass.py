"""Overpass API JSON (OpenStreetMap) as area polygons: parks, gardens, green spaces.

Closed, tagged ways become polygons; multipolygon relations are assembled from their outer and
inner member ways (with `out geom;` each member carries its geometry; with `out body; >; out skel;`
ways and nodes are looked up among the elements). Untagged ways are only relation members. Area
ids are `way/<id>` / `relation/<id>` (or the tag named by `id_field` when it is not `id`); the
name is the `name_field` tag (default `name`). Areas are geodesic hectares, as for GeoJSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import LineString, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import polygonize, unary_union

from canonical.errors import TOO_DEEP, SourceDataError
from sources.config import AreasMapping
from sources.parsers.geo import Area, _lon_lat_ok, geodesic_area_ha

Coords = list[tuple[float, float]]


def read_overpass_areas(path: Path, mapping: AreasMapping, display_name: str, source_id: str) -> list[Area]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceDataError(display_name, f"not valid JSON: {exc}", source_id=source_id) from None
    except RecursionError:
        raise SourceDataError(display_name, TOO_DEEP, source_id=source_id) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("elements"), list):
        raise SourceDataError(display_name, "expected Overpass JSON with an 'elements' list", source_id=source_id)
    remark = payload.get("remark")
    if isinstance(remark, str) and "error" in remark.lower():
        raise SourceDataError(display_name, f"Overpass reported: {remark}", source_id=source_id)
    elements = [e for e in payload["elements"] if isinstance(e, dict)]
    nodes = {e["id"]: (float(e["lon"]), float(e["lat"])) for e in elements
             if e.get("type") == "node" and "lon" in e and "lat" in e}
    ways = {e["id"]: e for e in elements if e.get("type") == "way"}
    areas: list[Area] = []
    seen: set[str] = set()
    for index, element in enumerate(elements, start=1):
        tags = element.get("tags") or {}
        kind = element.get("type")
        if not tags or kind not in ("way", "relation"):
            continue
        osm_id = f"{kind}/{element.get('id')}"
        geometry: BaseGeometry | None
        if kind == "way":
            ring = _way_coords(element, nodes)
            geometry = Polygon(ring) if ring and len(ring) >= 4 and ring[0] == ring[-1] else None
        else:
            geometry = _relation_polygon(element, ways, nodes)
        if geometry is None or geometry.is_empty:
            continue  # an open way (a path, a hedge) or a relation without closed rings
        area_id = osm_id if mapping.id_field == "id" else str(tags.get(mapping.id_field) or osm_id)
        if area_id in seen:
            continue
        seen.add(area_id)
        min_lon, min_lat, max_lon, max_lat = geometry.bounds
        if not (_lon_lat_ok(min_lon, min_lat) and _lon_lat_ok(max_lon, max_lat)):
            raise SourceDataError(display_name, f"element {osm_id}: coordinates out of range", row=index,
                                  source_id=source_id)
        if not geometry.is_valid:
            geometry = shapely.make_valid(geometry)
        name = tags.get(mapping.name_field or "name")
        areas.append(Area(area_id, None if name is None else str(name), geometry, geodesic_area_ha(geometry),
                          f"{display_name} element {index} ({osm_id})"))
    return areas


def _way_coords(way: dict[str, Any], nodes: dict[int, tuple[float, float]]) -> Coords | None:
    geometry = way.get("geometry")
    if isinstance(geometry, list) and geometry:
        return [(float(p["lon"]), float(p["lat"])) for p in geometry if isinstance(p, dict) and "lon" in p]
    refs = way.get("nodes")
    if isinstance(refs, list) and refs and all(r in nodes for r in refs):
        return [nodes[r] for r in refs]
    return None


def _relation_polygon(relation: dict[str, Any], ways: dict[int, dict[str, Any]],
                      nodes: dict[int, tuple[float, float]]) -> BaseGeometry | None:
    outer: list[LineString] = []
    inner: list[LineString] = []
    for member in relation.get("members") or []:
        if not isinstance(member, dict) or member.get("type") != "way":
            continue
        coords = _way_coords(member, nodes) if "geometry" in member else (
            _way_coords(ways[member["ref"]], nodes) if member.get("ref") in ways else None)
        if coords and len(coords) >= 2:
            (inner if member.get("role") == "inner" else outer).append(LineString(coords))
    if not outer:
        return None
    shell = unary_union(list(polygonize(outer)))
    if shell.is_empty:
        return None
    if inner:
        holes = unary_union(list(polygonize(inner)))
        if not holes.is_empty:
            shell = shell.difference(holes)
    return shell
