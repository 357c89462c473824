"""One geometry source (target `areas` or `points`) read from whatever format it is published in.

Picks the reader by format (GeoJSON, shapefile / zipped shapefile, GeoPackage, CSV, Excel), turns
the features into areas or points in WGS84 (`sources.parsers.geo.load_areas` / `load_points`) and,
where the mapping asks for it, the rows for a second table:
- `population`: one `population` observation per feature (a population grid from one source);
- `transit`: points of a plain stop list get point_type `transit_stop:<mode>` so the transit-access
  derivations can tell high- from low-capacity stops without a GTFS feed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from canonical.errors import SourceDataError
from sources.config import AreasMapping, PointsMapping, PopulationOption, SourceConfig
from sources.parsers.features import FeatureSet, Placed
from sources.parsers.geo import Area, Point, geojson_features, load_areas, load_points

OBSERVATION_COLUMNS: dict[str, Any] = {
    "city_id": pl.String, "year": pl.Int32, "variable": pl.String, "data_point": pl.String,
    "area_type": pl.String, "area_id": pl.String, "value": pl.Float64, "unit": pl.String,
    "source_value": pl.Float64, "source_unit": pl.String, "source_id": pl.String,
    "snapshot_id": pl.String, "source_record": pl.String, "derivation": pl.String,
}
TRANSIT_POINT_TYPE = "transit_stop"


def is_entity_json(source: SourceConfig, path: Path) -> bool:
    """Points from NGSI-LD / NGSI v2 entity JSON (read by sources.parsers.geo.read_ngsi_ld_points) rather
    than from a GeoJSON FeatureCollection: `ngsi-ld`, or `json` that is not a FeatureCollection."""
    fmt = source.resolved_format
    if fmt == "ngsi-ld":
        return True
    if fmt != "json":
        return False
    with path.open("rb") as handle:  # the type member is near the start of every FeatureCollection seen
        head = handle.read(4096).decode("utf-8", errors="replace")
    return '"FeatureCollection"' not in head


def read_features(source: SourceConfig, path: Path, display_name: str) -> FeatureSet:
    fmt = source.resolved_format
    mapping = source.areas or source.points
    assert mapping is not None
    if fmt in ("geojson", "json"):
        return geojson_features(path, display_name)
    if fmt in ("shapefile", "geopackage"):
        from sources.parsers.vector import read_vector

        return read_vector(path, mapping.layer, display_name)
    if fmt in ("csv", "excel") and isinstance(mapping, PointsMapping):
        from sources.parsers.coordinates import table_features
        from sources.parsers.tabular import read_csv, read_excel

        table = read_csv(path, source.csv, display_name) if fmt == "csv" else \
            read_excel(path, source.excel, display_name)
        return table_features(table, mapping, source.id)
    raise SourceDataError(display_name, f"format {fmt!r} cannot feed target {source.target!r} (areas come from "
                          "GeoJSON, shapefiles and GeoPackages; points also from CSV and Excel)", source_id=source.id)


@dataclass
class GeometryRows:
    areas: list[Area]
    points: list[Point]
    observations: pl.DataFrame
    report: dict[str, Any]


def _population(features: FeatureSet, placed: list[Placed], ids: list[str], option: PopulationOption,
                area_type: str, *,
                city_id: str, source_id: str, snapshot_id: str, display_name: str,
                report: dict[str, Any]) -> pl.DataFrame:
    """One `population` observation per feature; empty values are counted, a non-number is an error."""
    from canonical.units import conversion_factor
    from canonical.variables import VARIABLES
    from sources.parsers.coordinates import parse_number
    from sources.parsers.numbers import NumberFormat

    factor = conversion_factor(option.unit, VARIABLES["population"].unit, variable="population")
    number_format = features.number_format or NumberFormat()
    rows, empty = [], 0
    for item, area_id in zip(placed, ids, strict=True):
        feature = item.feature
        raw = feature.properties.get(option.field)
        text = "" if raw is None else str(raw).strip()
        if not text:
            empty += 1
            continue
        try:
            value = float(raw) if isinstance(raw, int | float) else parse_number(text, number_format)
            year = option.year if option.year is not None else \
                int(float(str(feature.properties.get(option.year_field or "")).strip()))
        except ValueError as exc:
            raise SourceDataError(display_name, f"{feature.label}: {exc}", row=feature.number,
                                  field=option.field, source_id=source_id) from None
        rows.append((city_id, year, "population", None, area_type, area_id, value * factor,
                     VARIABLES["population"].unit, value, option.unit, source_id, snapshot_id,
                     f"{display_name} {feature.label}, field '{option.field}'", None))
    report["population_values"] = len(rows)
    report["population_empty"] = empty
    return pl.DataFrame(rows, schema=OBSERVATION_COLUMNS, orient="row")


def _transit_types(points: list[Point], placed: list[Placed], mapping: PointsMapping,
                   report: dict[str, Any]) -> tuple[list[Point], list[Placed], list[str]]:
    """The point type of each stop of a stop list (`transit_stop:<mode>`); unmapped codes skipped, counted."""
    transit = mapping.transit
    assert transit is not None
    kept_points, kept_placed, types = [], [], []
    unmapped: dict[str, int] = {}
    for point, item in zip(points, placed, strict=True):
        if transit.mode is not None:
            mode: str | None = transit.mode
        else:
            code = str(item.feature.properties.get(transit.mode_field or "", "") or "").strip()
            mode = (transit.modes or {}).get(code)
            if mode is None:
                unmapped[code] = unmapped.get(code, 0) + 1
                continue
        kept_points.append(point)
        kept_placed.append(item)
        types.append(f"{TRANSIT_POINT_TYPE}:{'subway' if mode == 'metro' else mode}")
    if unmapped:
        report["unmapped_modes"] = dict(sorted(unmapped.items()))
    return kept_points, kept_placed, types


def station_types(ids: list[str], raw: list[Any] | None, mapping: PointsMapping, *, display_name: str,
                  rows: list[int] | None = None, source_id: str) -> list[str | None]:
    """Each point's station type (background / traffic / industrial; None = unknown): the explicit
    per-station list first, else the published value (`raw`, read from `station_type_field`) by its
    code or name; an unrecognised non-empty value is an error naming the row and field."""
    from sources.config import STATION_TYPES

    explicit = mapping.station_types or {}
    codes = {k.strip().casefold(): v for k, v in (mapping.station_type_codes or {}).items()}
    out: list[str | None] = []
    for index, point_id in enumerate(ids):
        if point_id in explicit:
            out.append(explicit[point_id])
            continue
        text = "" if raw is None or raw[index] is None else str(raw[index]).strip()
        if not text:
            out.append(None)
            continue
        key = text.casefold()
        kind = codes.get(key) or (key if key in STATION_TYPES else None)
        if kind is None:
            raise SourceDataError(display_name, f"station {point_id!r}: station type {text!r} is not background, "
                                  "traffic or industrial; map the code with station_type_codes",
                                  row=rows[index] if rows else None, field=mapping.station_type_field,
                                  source_id=source_id)
        out.append(kind)
    return out


def parse_geometry(source: SourceConfig, path: Path, display_name: str, *, city_id: str, country: str,
                   snapshot_id: str) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    """Rows for core_areas / core_points, the population observations (maybe none) and the load report."""
    features = read_features(source, path, display_name)
    option = (source.areas or source.points).population  # type: ignore[union-attr]
    for name in (option.field, option.year_field) if option is not None else ():
        if name is not None and features.fields and name not in features.fields:
            raise SourceDataError(display_name, f"population field {name!r} not found; fields are {features.fields}",
                                  field=name, source_id=source.id)
    common = {"city_id": city_id, "source_id": source.id, "snapshot_id": snapshot_id}
    mapping: AreasMapping | PointsMapping
    if source.areas is not None:
        mapping = source.areas
        areas, placed, report = load_areas(features, mapping, country, source.id)
        ids = [a.area_id for a in areas]
        frame = pl.DataFrame({
            "city_id": [city_id] * len(areas), "area_type": [mapping.area_type] * len(areas),
            "area_id": ids, "name": [a.name for a in areas],
            "area_ha": [a.area_ha for a in areas], "geometry_wkb": [a.geometry.wkb for a in areas],
            "source_id": [source.id] * len(areas), "snapshot_id": [snapshot_id] * len(areas),
            "source_record": [a.record for a in areas],
        }, schema_overrides={"geometry_wkb": pl.Binary, "name": pl.String})
        report["areas"] = len(areas)
        feature_type = mapping.area_type
    else:
        assert source.points is not None
        mapping = source.points
        points, placed, report = load_points(features, mapping, country, source.id)
        types = [mapping.point_type] * len(points)
        if mapping.transit is not None:
            points, placed, types = _transit_types(points, placed, mapping, report)
        ids = [p.point_id for p in points]
        field = mapping.station_type_field
        if field is not None and features.fields and field not in features.fields:
            raise SourceDataError(display_name, f"station type field {field!r} not found; fields are "
                                  f"{features.fields}", field=field, source_id=source.id)
        kinds = station_types(ids, [item.feature.properties.get(field) for item in placed] if field else None,
                              mapping, display_name=display_name, rows=[item.feature.number for item in placed],
                              source_id=source.id)
        frame = pl.DataFrame({
            "city_id": [city_id] * len(points), "point_type": types,
            "point_id": ids, "name": [p.name for p in points],
            "lon": [p.lon for p in points], "lat": [p.lat for p in points],
            "district_id": [None] * len(points), "source_id": [source.id] * len(points),
            "snapshot_id": [snapshot_id] * len(points), "source_record": [p.record for p in points],
            "station_type": kinds,
        }, schema_overrides={"district_id": pl.String, "name": pl.String, "lon": pl.Float64, "lat": pl.Float64,
                             "station_type": pl.String})
        report["points"] = len(points)
        feature_type = mapping.point_type
    observations = pl.DataFrame(schema=OBSERVATION_COLUMNS)
    if mapping.population is not None:
        observations = _population(features, placed, ids, mapping.population, feature_type,
                                   display_name=display_name,
                                   report=report, **common)
    return frame, observations, report
