"""Work done once per read-only coordinate array (its shapely points, its nearest street nodes).

A city's population points are queried by every access measure (transit, green, open space; straight
line and walking): building their shapely points or snapping them to the street network again for each
query was a measurable share of a city's load. Results are remembered for the few most recent arrays,
by identity, and only for arrays that cannot change (`flags.writeable` False: PopulationPoints and
StreetNetwork freeze theirs), so a remembered result can never go stale.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import shapely
from shapely import STRtree

T = TypeVar("T")
FloatArray = npt.NDArray[np.float64]
GeometryArray = npt.NDArray[np.object_]

_KEEP = 8
_recent: list[tuple[weakref.ref[Any], weakref.ref[Any] | None, str, Any]] = []


def frozen(array: npt.ArrayLike) -> FloatArray:
    """A read-only float64 (n, 2) copy (what the memo accepts: nobody holds a writeable alias of it)."""
    xy = np.array(array, dtype=np.float64, copy=True).reshape(-1, 2)
    xy.flags.writeable = False
    return xy


def as_xy(points_xy: npt.ArrayLike) -> FloatArray:
    """An (n, 2) float64 array: `points_xy` itself when it already is one (so its identity, which the
    memo keys on, is kept), else a converted view or copy."""
    if isinstance(points_xy, np.ndarray) and points_xy.dtype == np.float64 and points_xy.ndim == 2 \
            and points_xy.shape[1] == 2:
        return points_xy
    return np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)


def remembered(xy: Any, what: str, compute: Callable[[], T], owner: object | None = None) -> T:
    """compute(), or what it returned before for this very (read-only) array and this very `owner`
    (e.g. the street network the points were snapped to); both held weakly, compared by identity."""
    if not isinstance(xy, np.ndarray) or xy.flags.writeable:
        return compute()
    for ref, owner_ref, kind, value in _recent:
        if kind == what and ref() is xy and (owner_ref() if owner_ref is not None else None) is owner:
            return value
    value = compute()
    _recent.insert(0, (weakref.ref(xy), None if owner is None else weakref.ref(owner), what, value))
    del _recent[_KEEP:]
    return value


def point_geometries(xy: FloatArray) -> GeometryArray:
    """shapely points of an (n, 2) array (`as_xy`), built once per read-only array."""
    return remembered(xy, "points", lambda: np.asarray(shapely.points(xy), dtype=object))


def polygon_tree(polygons: npt.NDArray[Any]) -> STRtree:
    """An STRtree of target polygons, built once per read-only array (the green areas are queried at 300 m
    and 400 m, straight line and walking)."""
    return remembered(polygons, "strtree", lambda: STRtree(np.asarray(polygons, dtype=object).ravel()))
