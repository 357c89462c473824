"""Population as weighted points, the input of every distance-based share.

Two sources: a population grid (each cell is its own area, represented by its centroid), or
areas such as districts whose population is spread uniformly over a regular grid of square
cells clipped to the area (area-weighted: a cell half inside a district carries half the
population of a full cell, at the centroid of the part inside). Coordinates are metres in a
local projection (`kpis.spatial.projection`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from shapely import STRtree

from kpis.spatial.points import frozen

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
GeometryArray = npt.NDArray[np.object_]

DEFAULT_CELL_M = 100.0  # the resolution of GHS-POP, the gridded population UN-Habitat works with


@dataclass(frozen=True)
class PopulationPoints:
    """Point i carries the share `weight[i]` of area `area_index[i]`'s population (weights of an area sum to 1)."""

    xy: FloatArray
    area_index: IntArray
    weight: FloatArray
    n_areas: int
    cell_size_m: float | None = None

    def __post_init__(self) -> None:
        # Read-only, so that kpis.spatial.points may remember the shapely points and snaps built on it.
        object.__setattr__(self, "xy", frozen(self.xy))

    def __len__(self) -> int:
        return int(self.area_index.size)


def regular_cells(bounds: Sequence[float], cell_size: float) -> tuple[GeometryArray, FloatArray]:
    """Square cells covering `bounds`, aligned to multiples of `cell_size` (so the grid does not
    shift with the bounds); returns the boxes and their centres."""
    minx, miny, maxx, maxy = bounds
    x0, y0 = np.floor(minx / cell_size) * cell_size, np.floor(miny / cell_size) * cell_size
    nx = max(1, int(np.ceil((maxx - x0) / cell_size)))
    ny = max(1, int(np.ceil((maxy - y0) / cell_size)))
    xs, ys = np.meshgrid(x0 + cell_size * np.arange(nx), y0 + cell_size * np.arange(ny), indexing="xy")
    x, y = xs.ravel(), ys.ravel()
    boxes = shapely.box(x, y, x + cell_size, y + cell_size)
    return boxes, np.column_stack([x + cell_size / 2, y + cell_size / 2])


def spread_uniformly(areas: Sequence[shapely.Geometry] | GeometryArray,
                     cell_size: float = DEFAULT_CELL_M) -> PopulationPoints:
    """Spread each area's population uniformly over the parts of grid cells inside it.

    A cell the area's boundary does not touch lies wholly inside or wholly outside it, which its centre
    tells; only the cells the boundary touches are clipped (by rectangle: the cells are axis-aligned)."""
    polygons = np.asarray(areas, dtype=object)
    if polygons.size == 0:
        raise ValueError("no areas to spread population over")
    invalid = ~shapely.is_valid(polygons)
    if invalid.any():  # e.g. a self-touching ring: GEOS would refuse to clip it
        polygons = polygons.copy()
        polygons[invalid] = shapely.make_valid(polygons[invalid])
    cells, centres = regular_cells(shapely.total_bounds(polygons), cell_size)
    tree = STRtree(cells)
    area_idx, cell_idx = tree.query(polygons)  # cells whose extent meets an area's extent
    edge = _pairs(*_touched_by_boundary(tree, polygons), cells.size)
    on_edge = np.isin(_pairs(area_idx, cell_idx, cells.size), edge)
    shapely.prepare(polygons)
    x, y = centres[cell_idx, 0], centres[cell_idx, 1]
    keep = on_edge | shapely.contains_xy(polygons[area_idx], x, y)
    area_idx, cell_idx, on_edge = area_idx[keep], cell_idx[keep], on_edge[keep]
    piece_area = np.full(area_idx.size, cell_size * cell_size)
    xy = centres[cell_idx].copy()
    clip = np.flatnonzero(on_edge)
    if clip.size:
        low = centres[cell_idx[clip]] - cell_size / 2
        pieces = _clip_by_rects(polygons[area_idx[clip]], low[:, 0], low[:, 1], low[:, 0] + cell_size,
                                low[:, 1] + cell_size)
        piece_area[clip] = shapely.area(pieces)
        solid = piece_area[clip] > 0  # a cell the boundary only touches from outside clips to nothing
        centroids = shapely.centroid(pieces[solid])
        xy[clip[solid]] = np.column_stack([shapely.get_x(centroids), shapely.get_y(centroids)])
    keep = piece_area > 0  # cells that only touch an area's boundary
    area_idx, piece_area, xy = area_idx[keep], piece_area[keep], xy[keep]
    totals = np.bincount(area_idx, weights=piece_area, minlength=polygons.size)
    empty = np.flatnonzero(totals <= 0)
    if empty.size:
        raise ValueError(f"area(s) at index {empty.tolist()} have no extent to place population on")
    return PopulationPoints(xy=xy, area_index=area_idx.astype(np.int64), weight=piece_area / totals[area_idx],
                            n_areas=int(polygons.size), cell_size_m=cell_size)


def _pairs(area_idx: IntArray, cell_idx: IntArray, n_cells: int) -> IntArray:
    """(area, cell) pairs as one number each, to compare sets of pairs."""
    return np.asarray(area_idx, dtype=np.int64) * n_cells + np.asarray(cell_idx, dtype=np.int64)


def _touched_by_boundary(tree: STRtree, polygons: GeometryArray) -> tuple[IntArray, IntArray]:
    """(area, cell) for every cell an area's boundary (its rings, holes included) touches. Lines and
    points that make_valid may leave beside the polygons hold no area and are left out."""
    parts, part_of = shapely.get_parts(polygons, return_index=True)
    polygonal = shapely.get_type_id(parts) == 3  # Polygon (collections and multi-polygons are exploded)
    rings, ring_of = shapely.get_rings(parts[polygonal], return_index=True)
    ring_idx, cell_idx = tree.query(rings, predicate="intersects")
    return part_of[polygonal][ring_of[ring_idx]], cell_idx


def _clip_by_rects(geometries: GeometryArray, xmin: FloatArray, ymin: FloatArray, xmax: FloatArray,
                   ymax: FloatArray) -> GeometryArray:
    """Each geometry clipped to its own rectangle. shapely.clip_by_rect takes one rectangle per call; the
    ufunc behind it takes arrays (a tenth of the time of a Python loop over 2,000 cells)."""
    try:
        clipped: GeometryArray = shapely.lib.clip_by_rect(geometries, xmin, ymin, xmax, ymax)
    except TypeError:  # a shapely whose ufunc takes scalars only
        clipped = np.array([shapely.clip_by_rect(g, *r) for g, r in
                            zip(geometries, np.column_stack([xmin, ymin, xmax, ymax]).tolist(), strict=True)],
                           dtype=object)
    return clipped


def cells_as_points(cells: Sequence[shapely.Geometry] | GeometryArray) -> PopulationPoints:
    """A population grid as it is: every cell is its own area, at its centroid."""
    polygons = np.asarray(cells, dtype=object)
    centroids = shapely.centroid(polygons)
    n = int(polygons.size)
    return PopulationPoints(xy=np.column_stack([shapely.get_x(centroids), shapely.get_y(centroids)]).reshape(n, 2),
                            area_index=np.arange(n, dtype=np.int64), weight=np.ones(n), n_areas=n)
