"""Pure, vectorised spatial computations behind the distance- and area-based indicators.

No database access in these modules: inputs are numpy arrays and shapely geometries in a local
metric projection, outputs are arrays. The one exception is `derive.py` (imported on its own, not
from here): it reads the warehouse, calls these and returns derived observation rows, which
warehouse.derive stores (the pipeline passes it in); the catalogue then divides them (SDG 11.2.1,
11.7.1, U4SSC EC:I:T:2A, EN:EN:PSN:2A).

- `projection`: a local Lambert azimuthal equal-area projection around the city (metres).
- `grid`: population as weighted points: district populations spread over regular cells, or a
  population grid as is.
- `access`: which points lie within a distance of any target (STRtree nearest-within query), and
  the share of each area's population that does.
- `transit`: GTFS stop capacity classes and the service-frequency filter of SDG 11.2.1.
- `network`: walking distance along the street network (multi-source Dijkstra with a distance
  limit, population points and targets snapped to street nodes); straight line is the fallback.
"""

from kpis.spatial.access import covered_share, within_distance
from kpis.spatial.grid import PopulationPoints, cells_as_points, spread_uniformly
from kpis.spatial.network import StreetNetwork
from kpis.spatial.projection import LocalProjection, union_area_ha
from kpis.spatial.transit import (
    GREEN_ACCESS_M,
    HIGH_CAPACITY_M,
    LOW_CAPACITY_M,
    MIN_WEEKDAY_DEPARTURES,
    U4SSC_STOP_M,
    sdg_transit_access,
    stop_capacity,
)

__all__ = [
    "GREEN_ACCESS_M",
    "HIGH_CAPACITY_M",
    "LOW_CAPACITY_M",
    "MIN_WEEKDAY_DEPARTURES",
    "U4SSC_STOP_M",
    "LocalProjection",
    "PopulationPoints",
    "StreetNetwork",
    "cells_as_points",
    "covered_share",
    "sdg_transit_access",
    "spread_uniformly",
    "stop_capacity",
    "union_area_ha",
    "within_distance",
]
