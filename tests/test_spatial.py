"""kpis.spatial on small geometries whose answers can be counted by hand (local metres, no projection
unless the test is about the projection)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer

from kpis.spatial import (
    LocalProjection,
    cells_as_points,
    covered_share,
    sdg_transit_access,
    spread_uniformly,
    stop_capacity,
    union_area_ha,
    within_distance,
)
from kpis.spatial.grid import regular_cells
from kpis.spatial.transit import route_type_capacity

# A 1.5 km square district split into a 3x3 grid of 500 m cells: centres at 250, 750, 1250 m.
SQUARE = shapely.box(0, 0, 1500, 1500)
CENTRES = {(x, y) for x in (250.0, 750.0, 1250.0) for y in (250.0, 750.0, 1250.0)}


def _covered_centres(points_xy: np.ndarray, mask: np.ndarray) -> set[tuple[float, float]]:
    return {(float(x), float(y)) for x, y in points_xy[mask]}


@pytest.fixture
def grid_3x3():  # -> PopulationPoints
    points = spread_uniformly([SQUARE], cell_size=500.0)
    assert _covered_centres(points.xy, np.ones(len(points), dtype=bool)) == CENTRES
    assert np.allclose(points.weight, 1 / 9)
    return points


def test_two_stops_on_a_3x3_grid_cover_seven_cells(grid_3x3) -> None:  # type: ignore[no-untyped-def]
    # Low-capacity (bus) stop at the centre of the SW cell: 500 m reaches its two neighbours exactly
    # (inclusive), not the diagonal (707 m). High-capacity (rail) stop outside the NE corner at
    # (1400, 1400): 1 km reaches (1250,1250) 212 m, (750,1250) and (1250,750) 667 m, (750,750) 919 m,
    # not (250,1250) or (1250,250) at 1160 m. A rail stop with only 10 weekday departures at
    # (250,1250) fails the frequency filter and covers nothing.
    stops = np.array([[250.0, 250.0], [1400.0, 1400.0], [250.0, 1250.0]])
    covered = sdg_transit_access(grid_3x3.xy, stops, ["low", "high", "high"], [120, 80, 10])
    assert _covered_centres(grid_3x3.xy, covered) == CENTRES - {(250.0, 1250.0), (1250.0, 250.0)}
    share = covered_share(grid_3x3, covered)
    assert share.shape == (1,)
    assert share[0] == pytest.approx(7 / 9)
    assert 900 * share[0] == pytest.approx(700.0)  # 900 residents spread evenly: 700 covered


def test_u4ssc_rule_counts_every_served_stop_within_500m(grid_3x3) -> None:  # type: ignore[no-untyped-def]
    # Same stops, 500 m from any of them, no frequency filter: the SW stop covers 3 cells, the NE
    # one (1250,1250) only, the infrequent one (250,1250) and its neighbours (750,1250), (250,750).
    stops = np.array([[250.0, 250.0], [1400.0, 1400.0], [250.0, 1250.0]])
    covered = within_distance(grid_3x3.xy, stops, 500.0)
    assert _covered_centres(grid_3x3.xy, covered) == {
        (250.0, 250.0), (750.0, 250.0), (250.0, 750.0), (1250.0, 1250.0), (250.0, 1250.0), (750.0, 1250.0)}


def test_a_stop_exactly_500m_away_counts_and_one_a_millimetre_further_does_not() -> None:
    points = np.array([[0.0, 0.0], [0.0, 0.0]])
    assert within_distance(points[:1], np.array([[300.0, 400.0]]), 500.0).tolist() == [True]  # 3-4-5: exactly 500
    assert within_distance(points[:1], np.array([[500.001, 0.0]]), 500.0).tolist() == [False]
    assert within_distance(points, np.zeros((0, 2)), 500.0).tolist() == [False, False]


def test_frequency_filter_and_capacity_change_the_reach() -> None:
    home = np.array([[0.0, 0.0]])
    rail_800m = np.array([[800.0, 0.0]])
    assert sdg_transit_access(home, rail_800m, ["high"], [56]).tolist() == [True]  # 56 is enough (4/h x 14 h)
    assert sdg_transit_access(home, rail_800m, ["high"], [55]).tolist() == [False]
    assert sdg_transit_access(home, rail_800m, ["low"], [200]).tolist() == [False]  # a bus stop 800 m away
    assert sdg_transit_access(home, rail_800m, [None], [200]).tolist() == [False]


def test_area_weighted_spread_puts_a_third_of_the_population_in_the_half_cell() -> None:
    # A 150 m x 100 m district on a 100 m grid: one whole cell (1 ha, centre (50, 50)) and half a cell
    # (0.5 ha, centroid (125, 50)): weights 2/3 and 1/3. A stop at (625, 50) is exactly 500 m from the
    # half cell's centroid and 575 m from the whole cell's centre.
    points = spread_uniformly([shapely.box(0, 0, 150, 100)], cell_size=100.0)
    order = np.argsort(points.xy[:, 0])
    assert points.xy[order].tolist() == [[50.0, 50.0], [125.0, 50.0]]
    assert points.weight[order] == pytest.approx([2 / 3, 1 / 3])
    covered = within_distance(points.xy, np.array([[625.0, 50.0]]), 500.0)
    assert covered_share(points, covered)[0] == pytest.approx(1 / 3)


def test_two_districts_each_keep_their_own_population() -> None:
    # West district 0-200 m (2 cells), east district 200-300 m (1 cell); a stop at (50, 50) with a
    # 100 m reach covers the west district's first cell (and its neighbour at exactly 100 m).
    west, east = shapely.box(0, 0, 200, 100), shapely.box(200, 0, 300, 100)
    points = spread_uniformly([west, east], cell_size=100.0)
    assert np.bincount(points.area_index).tolist() == [2, 1]
    covered = within_distance(points.xy, np.array([[50.0, 50.0]]), 100.0)
    assert covered_share(points, covered).tolist() == pytest.approx([1.0, 0.0])
    populations = np.array([1000.0, 600.0])
    assert float((populations * covered_share(points, covered)).sum()) == pytest.approx(1000.0)


def test_cells_on_a_shared_boundary_are_split_not_duplicated() -> None:
    # Districts meeting at x = 150 inside a cell: the cell's two halves go one to each district.
    points = spread_uniformly([shapely.box(0, 0, 150, 100), shapely.box(150, 0, 300, 100)], cell_size=100.0)
    assert len(points) == 4  # 1 + half, half + 1
    assert np.bincount(points.area_index, weights=points.weight).tolist() == pytest.approx([1.0, 1.0])


def test_grid_is_aligned_to_multiples_of_the_cell_size() -> None:
    boxes, centres = regular_cells((30.0, -70.0, 230.0, 20.0), 100.0)
    assert shapely.total_bounds(boxes).tolist() == [0.0, -100.0, 300.0, 100.0]
    assert sorted(map(tuple, centres.tolist()))[0] == (50.0, -50.0)


def test_a_population_grid_is_used_as_is() -> None:
    cells = shapely.box([0.0, 100.0], [0.0, 0.0], [100.0, 200.0], [100.0, 100.0])
    points = cells_as_points(cells)
    assert points.xy.tolist() == [[50.0, 50.0], [150.0, 50.0]]
    covered = within_distance(points.xy, np.array([[0.0, 50.0]]), 60.0)
    assert covered_share(points, covered).tolist() == [1.0, 0.0]


def test_distance_to_a_green_area_is_to_its_edge() -> None:
    park = np.array([shapely.box(0, 0, 100, 100)], dtype=object)
    points = np.array([[50.0, 50.0], [400.0, 50.0], [400.001, 50.0]])  # inside, 300 m from the edge, just beyond
    assert within_distance(points, park, 300.0).tolist() == [True, True, False]


def test_an_invalid_polygon_is_repaired_before_clipping() -> None:
    bow_tie = shapely.Polygon([(0, 0), (200, 200), (200, 0), (0, 200)])  # self-intersecting: two triangles
    points = spread_uniformly([bow_tie], cell_size=100.0)
    assert float(points.weight.sum()) == pytest.approx(1.0)
    assert len(points) == 4  # each 100 m cell holds half a triangle


def test_an_area_without_extent_is_an_error() -> None:
    with pytest.raises(ValueError, match="no extent"):
        spread_uniformly([shapely.box(0, 0, 100, 100), shapely.LineString([(0, 0), (1, 1)])], cell_size=100.0)


@pytest.mark.parametrize(("route_types", "expected"), [
    ("3", "low"), ("0,3", "low"), ("11", "low"), ("2", "high"), ("0,2,3", "high"), ("1", "high"), ("4", "high"),
    ("12", "high"), ("", None), (None, None), ("1500", None), ([700, 900], "low"), ([401], "high"), ([1200], "high"),
])
def test_stop_capacity_from_gtfs_route_types(route_types: object, expected: str | None) -> None:
    assert stop_capacity(route_types) == expected  # type: ignore[arg-type]


def test_extended_route_types() -> None:
    assert route_type_capacity(109) == "high"  # suburban railway
    assert route_type_capacity(715) == "low"  # demand and response bus
    assert route_type_capacity(1100) is None  # air service


def test_local_projection_keeps_distances_and_areas() -> None:
    geod = Geod(ellps="WGS84")
    projection = LocalProjection(lon0=10.0, lat0=51.0)
    lon, lat = np.array([9.9, 10.12]), np.array([50.95, 51.07])
    xy = projection.points(lon, lat)
    _, _, geodesic = geod.inv(lon[0], lat[0], lon[1], lat[1])
    assert math.dist(xy[0], xy[1]) == pytest.approx(geodesic, rel=1e-5)
    polygon = shapely.box(9.95, 50.97, 10.05, 51.03)
    geodesic_area, _ = geod.geometry_area_perimeter(polygon)
    assert union_area_ha(projection.geometries([polygon])) == pytest.approx(abs(geodesic_area) / 1e4, rel=1e-6)


def test_projection_is_centred_on_the_geometries() -> None:
    projection = LocalProjection.around([shapely.box(9.9, 50.9, 10.1, 51.1)])
    assert (projection.lon0, projection.lat0) == pytest.approx((10.0, 51.0))
    assert projection.points([10.0], [51.0]) == pytest.approx(np.zeros((1, 2)), abs=1e-6)


@pytest.mark.parametrize(("lon0", "lat0"), [(13.404954, 52.520008), (-58.381592, -34.603722), (179.9, 64.2),
                                             (0.0, 0.0), (151.2093, -33.8688),
                                             # centres of bounding boxes: all 17 digits of a double
                                             (13.987654321098765, 52.123456789012345), (-0.1 / 3, 2 / 3 + 50)])
def test_projection_pipeline_equals_the_crs_route_bit_for_bit(lon0: float, lat0: float) -> None:
    """The pipeline given to PROJ directly is the operation EPSG:4326 -> the LAEA CRS resolves to."""
    projection = LocalProjection(lon0=lon0, lat0=lat0)
    by_crs = Transformer.from_crs("EPSG:4326", projection.crs(), always_xy=True)
    rng = np.random.default_rng(7)
    lon = lon0 + rng.uniform(-0.4, 0.4, 5_000)
    lat = np.clip(lat0 + rng.uniform(-0.4, 0.4, 5_000), -89.0, 89.0)
    x, y = by_crs.transform(lon, lat)
    assert np.array_equal(projection.points(lon, lat), np.column_stack([x, y]))


def test_union_area_counts_overlaps_once() -> None:
    assert union_area_ha([shapely.box(0, 0, 100, 100), shapely.box(50, 0, 150, 100)]) == pytest.approx(1.5)
    assert union_area_ha([]) == 0.0


def test_within_distance_equals_the_brute_force_distance_for_points_and_polygons(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The KD-tree (point targets) and the chunked dwithin query (polygons) give exactly the points a
    brute-force distance gives, targets at exactly the distance included (integer grids make many)."""
    import kpis.spatial.access as access

    monkeypatch.setattr(access, "POINTS_PER_QUERY", 7)  # several chunks, the last one short
    rng = np.random.default_rng(16)
    points = np.array([[x, y] for x in range(0, 1000, 50) for y in range(0, 1000, 50)], dtype=float)
    stops = rng.integers(0, 20, size=(12, 2)).astype(float) * 50.0
    distance_to_stops = np.hypot(points[:, None, 0] - stops[None, :, 0], points[:, None, 1] - stops[None, :, 1])
    expected = (distance_to_stops <= 150.0).any(axis=1)
    assert within_distance(points, stops, 150.0).tolist() == expected.tolist()
    assert 0 < expected.sum() < len(points)

    parks = np.array([shapely.box(x, y, x + w, y + w) for x, y, w in
                      zip(rng.integers(0, 900, 6), rng.integers(0, 900, 6), rng.integers(20, 120, 6), strict=True)],
                     dtype=object)
    shapely_points = shapely.points(points)
    expected = (shapely.distance(shapely_points[:, None], parks[None, :]) <= 100.0).any(axis=1)
    assert within_distance(points, parks, 100.0).tolist() == expected.tolist()
    assert 0 < expected.sum() < len(points)


def _brute_force_spread(polygons: list[shapely.Geometry], cell_size: float) -> dict[tuple[int, float, float], float]:
    """The definition, cell by cell: every cell intersected with every area; (area, centroid) -> weight."""
    repaired = [p if p.is_valid else shapely.make_valid(p) for p in polygons]
    boxes, _ = regular_cells(shapely.total_bounds(np.asarray(repaired, dtype=object)), cell_size)
    pieces: dict[tuple[int, float, float], float] = {}
    for index, polygon in enumerate(repaired):
        parts = [(piece.area, piece.centroid) for piece in (box.intersection(polygon) for box in boxes)
                 if piece.area > 0]
        total = sum(area for area, _ in parts)
        for area, centroid in parts:
            pieces[(index, round(centroid.x, 6), round(centroid.y, 6))] = area / total
    return pieces


@pytest.mark.parametrize("polygons", [
    [shapely.Polygon([(10, 10), (730, 40), (520, 610), (60, 380)])],  # slanted edges through many cells
    [shapely.box(0, 0, 400, 300).difference(shapely.box(100, 100, 300, 200))],  # a hole on grid lines
    [shapely.box(0, 0, 400, 300).difference(shapely.Point(210, 140).buffer(90))],  # a round hole
    [shapely.MultiPolygon([shapely.box(0, 0, 150, 150), shapely.box(350, 320, 520, 480)])],  # two parts
    [shapely.Polygon([(0, 0), (300, 300), (300, 0), (0, 300)])],  # a bow tie: repaired by make_valid
    [shapely.box(0, 0, 150, 100), shapely.box(150, 0, 300, 100), shapely.box(0, 100, 300, 420)],  # shared edges
    [shapely.Polygon([(5, 5), (395, 5), (395, 95), (205, 95), (205, 305), (5, 305)])],  # concave, L-shaped
])
def test_spreading_equals_intersecting_every_cell_with_every_area(polygons: list[shapely.Geometry]) -> None:
    """spread_uniformly clips only the cells an area's boundary touches and tells the others by their
    centre; the result must be what intersecting every cell with every area gives."""
    points = spread_uniformly(polygons, cell_size=100.0)
    got = {(int(a), round(float(x), 6), round(float(y), 6)): float(w)
           for a, (x, y), w in zip(points.area_index, points.xy, points.weight, strict=True)}
    expected = _brute_force_spread(polygons, 100.0)
    assert got.keys() == expected.keys()
    assert [got[k] for k in expected] == pytest.approx(list(expected.values()), rel=1e-9)
