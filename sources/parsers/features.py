"""Features from any geometry file, before they become areas or points: one shape for all formats.

A `FeatureSet` is what a reader (GeoJSON, shapefile, GeoPackage, a table with coordinate columns)
found: each feature's number, its properties and its geometry in the file's own coordinates, and
the CRS the file declares. `to_wgs84` then applies the mapping's `crs` / `coordinate_order`,
reprojects to WGS84 lon/lat with pyproj, checks every feature against the city's country and
repairs or skips what cannot be used, listing each skipped feature with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry

from canonical.errors import SourceDataError
from sources.parsers.country_bounds import country_boxes, in_country_array
from sources.parsers.numbers import NumberFormat

WGS84 = CRS.from_epsg(4326)
MAX_LISTED = 50  # skipped / repaired features listed by number in the load report (all are counted)


@dataclass
class RawFeature:
    number: int                         # 1-based feature number (or file row of a table)
    label: str                          # "feature 3", "row 14"
    properties: dict[str, Any]
    geometry: BaseGeometry | None       # in the file's coordinates; None when unreadable
    problem: str | None = None          # why there is no geometry


@dataclass
class FeatureSet:
    display_name: str
    features: list[RawFeature]
    crs: CRS | None = None              # declared by the file
    crs_origin: str = ""                # where it was declared (.prj, GeoPackage srs, GeoJSON crs member)
    fields: list[str] = field(default_factory=list)
    number_format: NumberFormat | None = None  # how a table writes numbers (its properties are text)
    swap_hint: str | None = None  # what fixes swapped axes when coordinate_order does not apply (tables)


@dataclass
class Placed:
    """A feature in WGS84, ready to be an area or a point."""

    feature: RawFeature
    geometry: BaseGeometry


@dataclass
class GeometryReport:
    features: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (label, reason)
    repaired: list[str] = field(default_factory=list)
    crs: str = ""

    def skip(self, feature: RawFeature, reason: str) -> None:
        self.skipped.append((feature.label, reason))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"features": self.features, "skipped": len(self.skipped),
                               "repaired": len(self.repaired), "crs": self.crs}
        if self.skipped:
            out["skipped_features"] = [{"feature": label, "reason": reason}
                                       for label, reason in self.skipped[:MAX_LISTED]]
        if self.repaired:
            out["repaired_features"] = self.repaired[:MAX_LISTED]
        return out


def parse_crs(text: str, display_name: str, origin: str) -> CRS:
    try:
        return CRS.from_user_input(text)
    except CRSError as exc:
        raise SourceDataError(display_name, f"cannot read the CRS of the {origin}: {exc}") from None


def _crs_name(crs: CRS) -> str:
    epsg = crs.to_epsg(min_confidence=70)
    return f"EPSG:{epsg}" if epsg else crs.name


def source_crs(features: FeatureSet, configured: str | None, source_id: str) -> CRS:
    """The CRS of the coordinates: the file's own, else the config's `crs`, else WGS84."""
    if features.crs is not None:
        if configured is not None:
            wanted = CRS.from_user_input(configured)
            codes = features.crs.to_epsg(min_confidence=70), wanted.to_epsg(min_confidence=70)
            if not features.crs.equals(wanted, ignore_axis_order=True) and (None in codes or codes[0] != codes[1]):
                raise SourceDataError(features.display_name, f"the file declares CRS {_crs_name(features.crs)} "
                                      f"({features.crs_origin}) but the config says crs: {configured}; remove "
                                      "`crs` from the config (it is only for files that declare none)",
                                      source_id=source_id)
        return features.crs
    return CRS.from_user_input(configured) if configured is not None else WGS84


def _swap(geometry: Any) -> Any:
    """x and y exchanged (one geometry or an array of them)."""
    return shapely.transform(geometry, lambda xy: xy[:, ::-1])


def _transformer(crs: CRS) -> Callable[[Any], Any] | None:
    """Reprojection to WGS84 lon/lat of one geometry or an array of them (None: already WGS84)."""
    if crs.equals(WGS84, ignore_axis_order=True) or crs == CRS.from_user_input("OGC:CRS84"):
        return None
    if crs.is_geographic and crs.to_epsg() == 4326:
        return None
    transformer = Transformer.from_crs(crs, WGS84, always_xy=True)

    def forward(xy: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(xy[:, 0], xy[:, 1], errcheck=False)
        return np.column_stack([x, y])
    return lambda g: shapely.transform(g, forward)


def _lon_lat_ok(geometry: BaseGeometry) -> bool:
    bounds = geometry.bounds
    return all(math.isfinite(v) for v in bounds) and -180 <= bounds[0] <= bounds[2] <= 180 \
        and -90 <= bounds[1] <= bounds[3] <= 90


def _inside_mask(bounds: npt.NDArray[np.float64], country: str) -> npt.NDArray[np.bool_]:
    """Per row of (min_lon, min_lat, max_lon, max_lat): valid lon/lat with both corners in the country."""
    x0, y0, x1, y1 = bounds.T
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(bounds).all(axis=1) & (x0 >= -180) & (x1 <= 180) & (y0 >= -90) & (y1 <= 90)
    return ok & in_country_array(x0, y0, country) & in_country_array(x1, y1, country)


def to_wgs84(features: FeatureSet, *, kind: str, configured_crs: str | None, coordinate_order: str,
             country: str, source_id: str) -> tuple[list[Placed], GeometryReport]:
    """Every usable feature in WGS84 lon/lat; `kind` is 'areas' (polygons) or 'points'.

    Features without geometry, of the wrong type or outside the country are skipped and listed;
    invalid polygons are repaired with make_valid and counted. When nothing is usable, or most
    features are outside the country, the whole source fails with the reason."""
    name = features.display_name
    crs = source_crs(features, configured_crs, source_id)
    project = _transformer(crs)
    report = GeometryReport(features=len(features.features), crs=_crs_name(crs))
    wanted = ("Polygon", "MultiPolygon") if kind == "areas" else ("Point",)
    candidates: list[tuple[RawFeature, BaseGeometry]] = []
    for feature in features.features:
        geometry = feature.geometry
        if geometry is None or geometry.is_empty:
            report.skip(feature, feature.problem or "empty geometry")
            continue
        if kind == "points" and geometry.geom_type == "MultiPoint" and len(geometry.geoms) == 1:
            geometry = geometry.geoms[0]
        if geometry.geom_type not in wanted:
            report.skip(feature, f"expected {' or '.join(wanted)}, got {geometry.geom_type}")
            continue
        candidates.append((feature, geometry))
    # One vectorised pass (pyproj and GEOS over arrays): a 100 m population grid has ~100,000 cells.
    raw = np.empty(len(candidates), dtype=object)
    raw[:] = [g for _, g in candidates]
    given = _swap(raw) if coordinate_order == "lat_lon" else raw
    wgs = project(given) if project else given
    bounds = shapely.bounds(wgs).reshape(-1, 4)
    inside = _inside_mask(bounds, country)
    valid = shapely.is_valid(wgs) if kind == "areas" else np.ones(len(candidates), dtype=bool)
    stray = np.flatnonzero(~inside)
    swapped = _swap(given[stray])
    swap_fits = int(_inside_mask(shapely.bounds(project(swapped) if project else swapped).reshape(-1, 4),
                                 country).sum())
    placed: list[Placed] = []
    outside: list[RawFeature] = []
    for index, (feature, _) in enumerate(candidates):
        geometry = wgs[index]
        if not inside[index]:
            outside.append(feature)
            x0, y0 = bounds[index, 0], bounds[index, 1]
            report.skip(feature, f"coordinates ({x0:.6g}, {y0:.6g} in WGS84 lon/lat) are outside the bounding box "
                                 f"of {country}")
            continue
        if not valid[index]:
            reason = shapely.is_valid_reason(geometry)
            repaired = shapely.make_valid(geometry)
            polygons = [p for p in shapely.get_parts(repaired) if p.geom_type in ("Polygon", "MultiPolygon")]
            if not polygons or shapely.union_all(polygons).area == 0:
                report.skip(feature, f"invalid polygon ({reason}) with no area left after repair")
                continue
            geometry = shapely.union_all(polygons)
            report.repaired.append(f"{feature.label}: {reason}")
        placed.append(Placed(feature, geometry))
    with_geometry = len(outside) + len(placed)
    if outside and len(outside) * 2 >= with_geometry:
        example = outside[0]
        where = f"{len(outside)} of {with_geometry} features (e.g. {example.label})"
        if swap_fits * 2 >= len(outside):
            order = "lon_lat" if coordinate_order == "lat_lon" else "lat_lon"
            first = "longitude" if coordinate_order == "lat_lon" else "latitude"
            fix = features.swap_hint or f"set `coordinate_order: {order}`"
            raise SourceDataError(name, f"{where} are outside {country} as read, but inside with the axes "
                                  f"swapped: coordinates look {first}-first; {fix}", source_id=source_id)
        degrees = all(_lon_lat_ok(f.geometry) for f in outside if f.geometry is not None)
        hint = ("the file declares no CRS: set `crs:` in the config (e.g. EPSG:25830 for UTM 30N metres)"
                if features.crs is None and configured_crs is None and not degrees else
                f"check the CRS ({_crs_name(crs)}) and the city's country ({country})")
        boxes = country_boxes(country)
        raise SourceDataError(name, f"{where} lie outside the bounding box of {country} "
                              f"{boxes[0] if boxes else ''} after reading them as {_crs_name(crs)}: {hint}",
                              source_id=source_id)
    if not placed:
        reasons = "; ".join(f"{label}: {reason}" for label, reason in report.skipped[:3])
        raise SourceDataError(name, f"no usable {kind[:-1]} geometry in {len(features.features)} features"
                              + (f" ({reasons})" if reasons else ""), source_id=source_id)
    return placed, report
