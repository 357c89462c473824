"""kpis.spatial.points remembers work per read-only array only, by identity, and never goes stale."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from kpis.spatial.grid import PopulationPoints
from kpis.spatial.network import StreetNetwork
from kpis.spatial.points import frozen, point_geometries, remembered


def test_read_only_arrays_are_remembered_by_identity() -> None:
    xy = frozen([[0.0, 0.0], [1.0, 2.0]])
    first = point_geometries(xy)
    assert point_geometries(xy) is first
    assert shapely.equals(first, shapely.points([[0.0, 0.0], [1.0, 2.0]])).all()
    assert point_geometries(frozen(xy)) is not first  # an equal copy is another array: computed again


def test_writeable_arrays_are_never_remembered() -> None:
    xy = np.array([[0.0, 0.0], [1.0, 2.0]])
    calls: list[int] = []
    for _ in range(2):
        remembered(xy, "count", lambda: calls.append(1))
    assert len(calls) == 2
    xy[0, 0] = 5.0  # what a memo would have made stale
    assert shapely.get_x(point_geometries(xy))[0] == 5.0


def test_the_owner_is_part_of_the_key() -> None:
    xy = frozen([[0.0, 0.0]])
    assert remembered(xy, "k", lambda: "a", owner=StreetNetwork) == "a"
    assert remembered(xy, "k", lambda: "b", owner=PopulationPoints) == "b"
    assert remembered(xy, "k", lambda: "c", owner=StreetNetwork) == "a"


def test_population_points_and_networks_hold_read_only_copies() -> None:
    source = np.array([[0.0, 0.0], [10.0, 0.0]])
    points = PopulationPoints(xy=source, area_index=np.array([0, 0]), weight=np.array([0.5, 0.5]), n_areas=1)
    network = StreetNetwork.from_edges(source, [0], [1], [10.0])
    source[0, 0] = 99.0  # the caller's array stays theirs
    assert points.xy[0, 0] == 0.0 and network.xy[0, 0] == 0.0
    with pytest.raises(ValueError):
        points.xy[0, 0] = 1.0
    node, distance = network.snap(points.xy)
    again = network.snap(points.xy)
    assert again[0] is node and again[1] is distance
    assert node.tolist() == [0, 1] and distance.tolist() == [0.0, 0.0]


def test_park_work_is_shared_only_by_the_same_parks_points_and_network() -> None:
    """within_polygons keeps its park entries and inside-park points per (parks, network) and (points, parks):
    another limit reuses them, other points, parks or networks never do."""
    line = StreetNetwork.from_edges([[0.0, 0.0], [100.0, 0.0], [200.0, 0.0], [300.0, 0.0]], [0, 1, 2], [1, 2, 3],
                                    [100.0, 100.0, 100.0])
    parks = np.array([shapely.box(-10, -10, 10, 10)], dtype=object)
    parks.flags.writeable = False
    far_parks = np.array([shapely.box(290, -10, 310, 10)], dtype=object)
    far_parks.flags.writeable = False
    people = frozen([[0.0, 5.0], [120.0, 0.0], [300.0, 0.0]])
    others = frozen([[0.0, 0.0], [300.0, 5.0]])
    assert line.within_polygons(people, parks, 160.0).tolist() == [True, True, False]
    assert line.within_polygons(people, parks, 100.0).tolist() == [True, False, False]  # same work, other limit
    assert line.within_polygons(people, far_parks, 160.0).tolist() == [False, False, True]
    assert line.within_polygons(others, parks, 160.0).tolist() == [True, False]
    shifted = StreetNetwork.from_edges([[1000.0, 0.0], [1100.0, 0.0]], [0], [1], [100.0])
    assert shifted.within_polygons(people, parks, 160.0).tolist() == [True, False, False]  # inside the park only
