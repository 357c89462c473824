"""Public transport access rules (SDG 11.2.1, U4SSC EC:I:T:2A) and the green-space distance.

Capacity classes follow the UN SDG 11.2.1 metadata (UN-Habitat, 2021): low-capacity systems (bus,
BRT, tram) count within 500 m, high-capacity systems (rail, metro, ferry) within 1 km. GTFS
route_type codes map to them as below (basic codes and the extended "Hierarchical Vehicle Type"
ranges); a stop served by any high-capacity route is a high-capacity stop.

Frequency filter: the metadata asks for "frequent service during peak travel times" without a
number. citykpi keeps a stop when it has at least 56 departures on a typical weekday, i.e. 4 per
hour averaged over the 14 hours 06:00-20:00: the lower bound of the "medium" service level
(4-9 departures per hour, 06:00-20:00 on a working day) that Statistics Denmark uses for 11.2.1
(https://www.dst.dk/en/Statistik/temaer/SDG/globale-verdensmaal/11-baeredygtige-byer-og-lokalsamfund/delmaal-02/indikator-1),
following the European Commission (DG REGIO) access-to-public-transport method. The filter reads
`core_transit_stops.departures_06_20`: the departures between 06:00 and 20:00 on one resolved service
date (a typical Wednesday, see sources/parsers/gtfs.py), not the whole day's count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from kpis.spatial.access import within_distance
from kpis.spatial.points import as_xy

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Capacity = Literal["high", "low"]
# (points, targets, distance) -> mask of the points within the distance of a target: straight-line
# (`kpis.spatial.access.within_distance`) or walking (`kpis.spatial.network.StreetNetwork.within`).
Within = Callable[[FloatArray, FloatArray, float], BoolArray]

LOW_CAPACITY_M = 500.0
HIGH_CAPACITY_M = 1000.0
U4SSC_STOP_M = 500.0  # EC:I:T:2A: "within 0.5 km of a public transport stop"
OPEN_SPACE_ACCESS_M = 400.0  # SDG 11.7.1 secondary measure: 400 m walking distance to an open public space
GREEN_ACCESS_M = 300.0  # EN:EN:PSN:2A: WHO Europe's 300 m (about 5 minutes' walk) to public green space
MIN_WEEKDAY_DEPARTURES = 56  # 4 departures per hour x 14 hours (06:00-20:00)

_HIGH_BASIC = {1, 2, 4, 12}  # subway/metro, rail, ferry, monorail
_LOW_BASIC = {0, 3, 5, 6, 7, 11}  # tram, bus, cable tram, aerial lift, funicular, trolleybus
# Extended ranges: rail, urban rail/metro, water transport, ferry (high); coach, bus/trolleybus/tram, lifts (low).
_HIGH_EXTENDED = (range(100, 200), range(400, 500), range(1000, 1100), range(1200, 1300))
_LOW_EXTENDED = (range(200, 300), range(700, 1000), range(1300, 1500))
# Not public transport stops for this indicator: air (1100-1199), taxi (1500-1599), misc (1700+).


# Modes of a plain stop list (config `points.transit`) as the GTFS basic route type they stand for.
MODE_ROUTE_TYPES = {"tram": 0, "subway": 1, "metro": 1, "rail": 2, "bus": 3, "ferry": 4, "cable_tram": 5,
                    "aerial_lift": 6, "funicular": 7, "trolleybus": 11, "monorail": 12}


def route_type_capacity(code: int) -> Capacity | None:
    if code in _HIGH_BASIC or any(code in r for r in _HIGH_EXTENDED):
        return "high"
    if code in _LOW_BASIC or any(code in r for r in _LOW_EXTENDED):
        return "low"
    return None


def stop_capacity(route_types: str | Iterable[int] | None) -> Capacity | None:
    """Capacity class of a stop from the route types serving it ("0,3" or [0, 3])."""
    if route_types is None:
        return None
    codes = ([int(c) for c in route_types.split(",") if c.strip()] if isinstance(route_types, str)
             else [int(c) for c in route_types])
    classes = {route_type_capacity(c) for c in codes}
    return "high" if "high" in classes else "low" if "low" in classes else None


def frequent(departures: npt.ArrayLike, min_departures: int = MIN_WEEKDAY_DEPARTURES) -> BoolArray:
    return np.asarray(departures) >= min_departures


def sdg_transit_access(points_xy: FloatArray, stops_xy: FloatArray, capacity: Sequence[Capacity | None],
                       departures: npt.ArrayLike, *, min_departures: int = MIN_WEEKDAY_DEPARTURES,
                       low_m: float = LOW_CAPACITY_M, high_m: float = HIGH_CAPACITY_M,
                       within: Within = within_distance) -> BoolArray:
    """SDG 11.2.1 coverage: points within `low_m` of a frequent low-capacity stop or `high_m` of a
    frequent high-capacity stop, by `within` (straight line by default, or along the streets)."""
    stops = np.asarray(stops_xy, dtype=np.float64).reshape(-1, 2)
    classes = np.asarray(list(capacity), dtype=object)
    keep = frequent(departures, min_departures)
    xy = as_xy(points_xy)
    covered = within(xy, stops[keep & (classes == "low")], low_m)
    rest = np.flatnonzero(~covered)  # only points the buses and trams missed need the rail query
    covered[rest] = within(xy[rest], stops[keep & (classes == "high")], high_m)
    return covered
