"""Walking distance along the street network: hand-computed grids and networkx as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from kpis.spatial.access import covered_share, within_distance
from kpis.spatial.grid import PopulationPoints
from kpis.spatial.network import StreetNetwork
from kpis.spatial.transit import sdg_transit_access


def grid_network(n: int, spacing: float) -> StreetNetwork:
    """An n x n street grid, node i*n + j at (j * spacing, i * spacing), blocks `spacing` wide."""
    ij = np.arange(n * n)
    xy = np.column_stack([(ij % n) * spacing, (ij // n) * spacing]).astype(float)
    right = ij[(ij % n) < n - 1]
    up = ij[ij < n * (n - 1)]
    u = np.concatenate([right, up])
    v = np.concatenate([right + 1, up + n])
    return StreetNetwork.from_edges(xy, u, v, np.full(u.size, spacing))


def test_grid_by_hand_network_differs_from_straight_line() -> None:
    """Acceptance (issue #15): a 100 m street grid, one stop at the corner (0, 0), 500 m limit.

    point      straight line            along the streets (Manhattan)
    (300,300)  424.3 m -> covered        600 m -> not covered
    (200,200)  282.8 m -> covered        400 m -> covered
    (400,  0)  400 m   -> covered        400 m -> covered
    (  0,500)  500 m   -> covered        500 m -> covered (inclusive)
    Equal weights: straight line 4/4 = 100 %, network 3/4 = 75 %."""
    network = grid_network(6, 100.0)
    points = np.array([[300.0, 300.0], [200.0, 200.0], [400.0, 0.0], [0.0, 500.0]])
    stop = np.array([[0.0, 0.0]])
    population = PopulationPoints(xy=points, area_index=np.zeros(4, dtype=np.int64), weight=np.full(4, 0.25),
                                  n_areas=1)
    straight = within_distance(points, stop, 500.0)
    walking = network.within(points, stop, 500.0)
    assert straight.tolist() == [True, True, True, True]
    assert walking.tolist() == [False, True, True, True]
    assert covered_share(population, straight)[0] == pytest.approx(1.0)
    assert covered_share(population, walking)[0] == pytest.approx(0.75)


def test_river_with_one_crossing_by_hand() -> None:
    """Two 1 km streets 100 m apart on either bank of a river, one bridge at x = 1000 m.
    A stop at (0, 0); the house across the river at (0, 100) is 100 m away as the crow flies but
    1000 + 100 + 1000 = 2100 m on foot; a house at (300, 0) on the stop's bank is 300 m either way."""
    xs = np.arange(0.0, 1001.0, 100.0)
    south = np.column_stack([xs, np.zeros_like(xs)])
    north = np.column_stack([xs, np.full_like(xs, 100.0)])
    xy = np.vstack([south, north])
    k = xs.size
    u = np.concatenate([np.arange(k - 1), k + np.arange(k - 1), [k - 1]])
    v = np.concatenate([np.arange(1, k), k + np.arange(1, k), [2 * k - 1]])
    network = StreetNetwork.from_edges(xy, u, v, np.linalg.norm(xy[u] - xy[v], axis=1))
    houses = np.array([[0.0, 100.0], [300.0, 0.0]])
    stop = np.array([[0.0, 0.0]])
    assert within_distance(houses, stop, 500.0).tolist() == [True, True]
    assert network.within(houses, stop, 500.0).tolist() == [False, True]
    node, _ = network.snap(houses)
    distance = network.reach(*network.snap(stop), limit=5000.0)
    assert distance[node[0]] == pytest.approx(2100.0)
    assert network.within(houses, stop, 2100.0).tolist() == [True, True]


def test_snap_distances_are_added_at_both_ends() -> None:
    """Stop 30 m off the street beside node (0, 0); house 40 m off beside node (400, 0): 30 + 400 + 40 = 470."""
    network = grid_network(6, 100.0)
    stop = np.array([[0.0, -30.0]])
    house = np.array([[400.0, -40.0]])
    assert network.within(house, stop, 470.0).tolist() == [True]
    assert network.within(house, stop, 469.9).tolist() == [False]


def test_limit_stops_the_search() -> None:
    network = grid_network(10, 100.0)
    distance = network.reach(np.array([0]), np.array([0.0]), limit=250.0)
    assert np.isfinite(distance).sum() == 6  # (0,0) (1,0) (2,0) (0,1) (1,1) (0,2)
    assert distance[0] == 0.0 and distance[11] == pytest.approx(200.0)


def test_sdg_rule_with_walking_distance() -> None:
    """A frequent bus stop (500 m) and a frequent rail station (1 km) on a 100 m grid, by hand."""
    network = grid_network(12, 100.0)
    stops = np.array([[0.0, 0.0], [1100.0, 1100.0]])
    points = np.array([[300.0, 300.0],    # bus 600 m, rail 1600 m: not covered (straight line: 424 m, covered)
                       [700.0, 700.0],    # rail 800 m: covered
                       [200.0, 200.0]])   # bus 400 m: covered
    covered = sdg_transit_access(points, stops, ["low", "high"], [100, 100], within=network.within)
    assert covered.tolist() == [False, True, True]
    assert sdg_transit_access(points, stops, ["low", "high"], [100, 100]).tolist() == [True, True, True]


def test_polygon_targets_enter_from_nearby_streets() -> None:
    """A park over the block (500..600, 0..100) of a 100 m grid; its corner nodes are at distance 0.
    A house at (0, 0) walks 500 m to node (500, 0); one inside the park is covered at distance 0."""
    network = grid_network(8, 100.0)
    park = np.array([shapely.box(500.0, 0.0, 600.0, 100.0)], dtype=object)
    houses = np.array([[0.0, 0.0], [100.0, 0.0], [550.0, 50.0], [0.0, 300.0]])
    assert network.within_polygons(houses, park, 400.0).tolist() == [False, True, True, False]
    assert network.within_polygons(houses, park, 500.0).tolist() == [True, True, True, False]


def test_against_networkx_oracle() -> None:
    """Random street-like graphs: every node distance and every point's coverage equal networkx's."""
    nx = pytest.importorskip("networkx", reason="networkx (dev dependency) is the test oracle")
    rng = np.random.default_rng(15)
    for _ in range(5):
        n = 400
        xy = rng.uniform(0, 3000, size=(n, 2))
        # Each node joined to its 3 nearest neighbours (a connected-ish street-like mesh), lengths >= straight.
        d = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=2)
        nearest = np.argsort(d, axis=1)[:, 1:4]
        u = np.repeat(np.arange(n), 3)
        v = nearest.ravel()
        length = d[u, v] * rng.uniform(1.0, 1.3, size=u.size)
        network = StreetNetwork.from_edges(xy, u, v, length)
        graph = nx.Graph()
        graph.add_nodes_from(range(n))
        for a, b, w in zip(u.tolist(), v.tolist(), length.tolist(), strict=True):
            if not graph.has_edge(a, b) or graph[a][b]["weight"] > w:
                graph.add_edge(a, b, weight=w)
        stops = rng.uniform(0, 3000, size=(15, 2))
        points = rng.uniform(0, 3000, size=(2000, 2))
        limit = 700.0
        stop_node = np.argmin(np.linalg.norm(xy[None, :, :] - stops[:, None, :], axis=2), axis=1)
        stop_snap = np.linalg.norm(xy[stop_node] - stops, axis=1)
        graph.add_node("virtual")
        for node, snap in zip(stop_node.tolist(), stop_snap.tolist(), strict=True):
            if not graph.has_edge("virtual", node) or graph["virtual"][node]["weight"] > snap:
                graph.add_edge("virtual", node, weight=snap)
        oracle = nx.single_source_dijkstra_path_length(graph, "virtual", cutoff=limit)
        ours = network.reach(*network.snap(stops), limit=limit)
        expected = np.array([oracle.get(i, np.inf) for i in range(n)])
        finite = np.isfinite(expected)
        assert 20 < finite.sum() < n  # the limit cuts the search: some nodes reached, some not
        assert np.array_equal(np.isfinite(ours), finite)
        assert ours[finite] == pytest.approx(expected[finite], abs=1e-6)
        point_node = np.argmin(np.linalg.norm(xy[None, :, :] - points[:, None, :], axis=2), axis=1)
        point_snap = np.linalg.norm(xy[point_node] - points, axis=1)
        assert network.within(points, stops, limit).tolist() == (point_snap + expected[point_node] <= limit).tolist()


def test_no_targets_and_bad_edges() -> None:
    network = grid_network(3, 100.0)
    assert network.within(np.array([[0.0, 0.0]]), np.zeros((0, 2)), 500.0).tolist() == [False]
    assert network.within(np.zeros((0, 2)), np.array([[0.0, 0.0]]), 500.0).size == 0
    with pytest.raises(ValueError, match="not in the network"):
        StreetNetwork.from_edges(np.zeros((2, 2)), [0], [5], [1.0])


def test_open_space_share_needs_street_area() -> None:
    """SDG 11.7.1 (UN-Habitat): open public space PLUS streets over the built-up area. The catalogue's
    example: (1,021 + 2,180) / 9,998 = 32.0 %; without street area the value is missing and says so."""
    from kpis.catalogue import indicators_by_id
    from kpis.engine import evaluate_indicator, inputs_from_example

    indicator = indicators_by_id()["11.7.1"]
    with_streets = inputs_from_example(indicator, {"open_public_space_ha": 1021, "street_area_ha": 2180,
                                                   "built_up_area_ha": 9998}, {}, None)
    result = evaluate_indicator(indicator, "area share", with_streets)
    assert result.status == "computed" and result.value == pytest.approx(32.016403, abs=1e-6)
    without = inputs_from_example(indicator, {"open_public_space_ha": 1021, "built_up_area_ha": 9998}, {}, None)
    result = evaluate_indicator(indicator, "area share", without)
    assert result.status == "missing" and result.value is None
    assert "street_area_ha" in result.missing and "street_area_ha" in (result.reason or "")
