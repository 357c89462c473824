"""Distance coverage: which population points lie within a distance of any target.

Uses a shapely STRtree nearest-neighbour query bounded by `max_distance` (GEOS, vectorised): it
returns at most one match per point, so memory stays O(points) however dense the targets are,
unlike a `dwithin` query whose output grows with the number of point-target pairs. Distances are
Euclidean in the local projection and inclusive: a target exactly at the distance counts.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import shapely
from shapely import STRtree

from kpis.spatial.grid import PopulationPoints
from kpis.spatial.points import as_xy, point_geometries

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
GeometryArray = npt.NDArray[np.object_]


def _as_geometries(targets: GeometryArray | FloatArray) -> GeometryArray:
    array = np.asarray(targets)
    if array.dtype == object:
        return np.asarray(array.ravel(), dtype=object)
    return np.asarray(shapely.points(array.reshape(-1, 2)), dtype=object)  # from (n, 2) coordinates


def within_distance(points_xy: FloatArray, targets: GeometryArray | FloatArray, distance: float) -> BoolArray:
    """Mask of the points within `distance` (<=) of at least one target (points or polygons)."""
    xy = as_xy(points_xy)
    mask = np.zeros(len(xy), dtype=bool)
    geometries = _as_geometries(targets)
    if len(xy) == 0 or geometries.size == 0:
        return mask
    hits, _ = STRtree(geometries).query_nearest(point_geometries(xy), max_distance=distance, all_matches=False)
    mask[hits] = True
    return mask


def covered_share(population: PopulationPoints, covered: BoolArray) -> FloatArray:
    """Per area, the share of its population on covered points (0..1)."""
    covered_weight = np.bincount(population.area_index, weights=population.weight * covered,
                                 minlength=population.n_areas)
    total = np.bincount(population.area_index, weights=population.weight, minlength=population.n_areas)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, covered_weight / total, np.nan)
