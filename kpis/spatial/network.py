"""Walking distance along the street network (SDG 11.2.1, 11.7.1 access; U4SSC EC:I:T:2A, EN:EN:PSN:2A).

The UN metadata measure access as walking distance along streets, not as the crow flies. Method
(the one the Global Healthy & Sustainable City Indicators project moved to after dropping pandana):

1. The walkable street graph (`sources/parsers/osm_streets.py`) as a symmetric sparse matrix of
   edge lengths in metres.
2. Targets (stops; the street nodes at a park's edge) enter the graph at their nearest node, with the
   straight-line snap distance as a head start. All targets at once: one extra "virtual" node with
   an edge of that head start to each target node, then one `scipy.sparse.csgraph.dijkstra(...,
   indices=virtual, min_only=True, limit=...)`: every node's distance to its nearest target, with
   the search stopped at the distance limit (nodes beyond it stay at infinity), so one run costs
   what the area within the limit costs, not the whole city.
3. Population points are snapped to their nearest street node (a KD-tree on the projected
   coordinates) and their own snap distance is added: a point is covered when
   snap(point) + network distance(node) <= limit.

Coordinates are metres in the city's local projection (`kpis.spatial.projection`); edge lengths are
geodesic metres from the parser. Everything is vectorised (numpy, scipy); no per-point Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from kpis.spatial.points import as_xy, frozen, point_geometries, polygon_tree, remembered

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
GeometryArray = npt.NDArray[np.object_]

# csgraph may drop a stored 0 (sparse matrices treat it as "no entry"); a millimetre keeps every edge.
_MIN_EDGE_M = 1e-3
_TOLERANCE_M = 1e-6  # float rounding: a target exactly at the limit counts (inclusive, as straight-line)
# A polygon target (a park) is entered from every street node within this distance of it, with that
# distance as the head start: parks are walked into from the streets around them, not one node.
POLYGON_ENTRY_M = 50.0


@dataclass(frozen=True)
class StreetNetwork:
    """An undirected walkable street graph in a local metric projection."""

    xy: FloatArray  # (n, 2) node coordinates in metres
    matrix: csr_matrix  # (n, n) symmetric edge lengths in metres, the shortest of parallel edges
    _tree: cKDTree

    @classmethod
    def from_edges(cls, xy: FloatArray, u: npt.ArrayLike, v: npt.ArrayLike, length_m: npt.ArrayLike) -> StreetNetwork:
        nodes = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if nodes.shape[0] == 0:
            raise ValueError("a street network needs at least one node")
        a, b = np.asarray(u, dtype=np.int64), np.asarray(v, dtype=np.int64)
        length = np.maximum(np.asarray(length_m, dtype=np.float64), _MIN_EDGE_M)
        if a.size and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= nodes.shape[0]):
            raise ValueError("an edge refers to a node that is not in the network")
        loops = a == b
        a, b, length = a[~loops], b[~loops], length[~loops]
        matrix = _min_csr(np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([length, length]),
                          nodes.shape[0])
        nodes = frozen(nodes)  # read-only: the memo of kpis.spatial.points may keep work done on it
        return cls(xy=nodes, matrix=matrix, _tree=cKDTree(nodes))

    @property
    def n_nodes(self) -> int:
        return int(self.xy.shape[0])

    def snap(self, points_xy: FloatArray) -> tuple[IntArray, FloatArray]:
        """Nearest node of each point and the straight-line distance to it (metres)."""
        xy = as_xy(points_xy)
        if xy.shape[0] == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)

        def query() -> tuple[IntArray, FloatArray]:
            distance, node = self._tree.query(xy, k=1)
            return np.asarray(node, dtype=np.int64), np.asarray(distance, dtype=np.float64)

        # The same population points are snapped by every measure: once per (network, points).
        return remembered(xy, "snap", query, owner=self)

    def reach(self, source_nodes: npt.ArrayLike, head_start_m: npt.ArrayLike, limit: float) -> FloatArray:
        """Walking distance from every node to the nearest source (its head start included), or
        infinity beyond `limit`. One Dijkstra from a virtual node joined to every source."""
        nodes = np.asarray(source_nodes, dtype=np.int64)
        start = np.asarray(head_start_m, dtype=np.float64)
        n = self.n_nodes
        if nodes.size == 0:
            return np.full(n, np.inf)
        keep = start <= limit  # a source further than the limit from any street reaches nothing
        nodes, start = nodes[keep], start[keep]
        if nodes.size == 0:
            return np.full(n, np.inf)
        # The virtual node's row: one edge per source node (the smallest head start when several
        # sources share a node), each lengthened by the same millimetre so that no stored weight is 0;
        # every path from the virtual node uses exactly one such edge, so subtracting it is exact.
        order = np.lexsort((start, nodes))
        nodes, start = nodes[order], start[order]
        first = np.ones(nodes.size, dtype=bool)
        first[1:] = nodes[1:] != nodes[:-1]
        nodes, start = nodes[first], start[first] + _MIN_EDGE_M
        base = self.matrix
        matrix = csr_matrix((np.concatenate([base.data, start]), np.concatenate([base.indices, nodes]),
                             np.concatenate([base.indptr, [base.nnz + nodes.size]])), shape=(n + 1, n + 1))
        distance = dijkstra(matrix, directed=True, indices=n, limit=limit + _MIN_EDGE_M, min_only=True)
        return np.asarray(distance, dtype=np.float64)[:n] - _MIN_EDGE_M

    def points_within(self, points_xy: FloatArray, node_distance: FloatArray, limit: float) -> BoolArray:
        """Points whose snap distance plus their node's walking distance is <= limit."""
        node, snap = self.snap(points_xy)
        if node.size == 0:
            return np.zeros(0, dtype=bool)
        return np.asarray(snap + node_distance[node] <= limit + _TOLERANCE_M, dtype=bool)

    def within(self, points_xy: FloatArray, targets_xy: FloatArray, limit: float) -> BoolArray:
        """Mask of the points within `limit` metres' walk of at least one target point."""
        node, snap = self.snap(np.asarray(targets_xy, dtype=np.float64).reshape(-1, 2))
        return self.points_within(points_xy, self.reach(node, snap, limit), limit)

    def within_polygons(self, points_xy: FloatArray, polygons: GeometryArray, limit: float,
                        entry_m: float = POLYGON_ENTRY_M) -> BoolArray:
        """Points within `limit` metres' walk of a polygon (a park): the walk ends at any street node
        within `entry_m` of it (counting that distance); points inside a polygon are covered."""
        xy = as_xy(points_xy)
        array = np.asarray(polygons, dtype=object)
        geometries = array.ravel()
        if xy.shape[0] == 0 or geometries.size == 0:
            return np.zeros(xy.shape[0], dtype=bool)
        tree = polygon_tree(array)

        def entries() -> tuple[IntArray, FloatArray]:
            node_points = point_geometries(self.xy)
            entry_node, entry_polygon = tree.query(node_points, predicate="dwithin", distance=entry_m)
            return entry_node, shapely.distance(node_points[entry_node], geometries[entry_polygon])

        def inside() -> IntArray:
            return np.asarray(tree.query(point_geometries(xy), predicate="intersects")[0], dtype=np.int64)

        # Neither depends on the limit: the 300 m and 400 m measures of the same parks share them.
        entry_node, head = remembered(array, f"entries {entry_m!r}", entries, owner=self)
        covered = self.points_within(xy, self.reach(entry_node, head, limit), limit)
        covered[remembered(xy, "inside", inside, owner=array)] = True
        return covered


def _min_csr(rows: IntArray, cols: IntArray, weights: FloatArray, size: int) -> csr_matrix:
    """A CSR matrix holding, for each (row, col), the smallest of its weights."""
    order = np.lexsort((weights, cols, rows))
    rows, cols, weights = rows[order], cols[order], weights[order]
    first = np.ones(rows.size, dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    return coo_matrix((weights[first], (rows[first], cols[first])), shape=(size, size)).tocsr()
