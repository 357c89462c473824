"""Spatial derivations: population within a distance of stops and green areas, open public space.

Glue between the warehouse and the pure functions of `kpis.spatial`: reads core_areas,
core_transit_stops and observations, returns derived observation rows (the row shape of
`warehouse.derive._obs`). Geometry and the GTFS feed are year-less snapshots, applied to every
reporting year with that year's population; each row's `source_record` says so.

- population_grid@1 -> population_gridded[group]: the population placed on the grid. From a
  population grid (areas of type `population_cell` with `population` observations) when the city
  has one, else district populations spread uniformly over 100 m cells clipped to each district
  (area-weighted). Groups (data points): total, female, male, age 0-14, age 15-64, age 65+, where
  the areas publish them; spreading a district's groups uniformly assumes they live alike.
  A population grid may also be points (points of type `population_cell`, each its own cell).
- transit_access_sdg@1 -> population_transit_access_sdg[group] (SDG 11.2.1): within 500 m of a
  frequent low-capacity or 1 km of a frequent high-capacity stop (`kpis.spatial.transit`). Without
  a GTFS feed, a plain stop list (points of type `transit_stop:<mode>`) is used instead: every
  stop counts, and every record says that no frequency filter could be applied.
- transit_access_500m@1 -> population_within_500m_stop[group] (U4SSC EC:I:T:2A): within 500 m
  of any served stop (at least one weekday departure).
- green_access_300m@1 -> population_within_300m_green[group] (U4SSC EN:EN:PSN:2A): within 300 m
  of a public green area polygon (distance to its edge; 0 inside).
- open_space_access_400m@1 -> population_within_400m_open_space[group] (SDG 11.7.1 secondary
  measure): within 400 m of an open public space (the public green-area polygons).
- open_public_space@2 -> open_public_space_ha (SDG 11.7.1): union area of the green-area polygons,
  open public space WITHOUT streets; the catalogue adds street_area_ha (UN-Habitat's numerator is
  open space plus streets), so 11.7.1 is missing, naming street_area_ha, where the city has no
  street area. street_area_ha comes from the city's own figure or, when the config has areas of
  type `street_area` (road polygons), from their union area (street_area@1); never from street
  length times an assumed width.

- transit_access_sdg_straight_line@1, transit_access_500m_straight_line@1,
  green_access_300m_straight_line@1 -> population_transit_access_sdg_straight_line,
  population_within_500m_stop_straight_line, population_within_300m_green_straight_line[group]: the
  same measures in straight line, always: beside the network values when a street network is loaded
  (both methods side by side in the release: the `total, straight line` data points of 11.2.1,
  EC:I:T:2A and EN:EN:PSN:2A), equal to the headline when not.

What each derivation makes, from what, is declared in `DECLARED` below (kpis/coverage.py reads it).

Distances: when the config has a street network (target street_network, table core_street_edges),
every access measure is the walking distance along it (`kpis.spatial.network`: population points
and targets snapped to the nearest street node, snap distances added); otherwise straight-line
(Euclidean) distance in a local equal-area projection. Every record starts with `method: network`
or `method: straight_line` and says which.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import polars as pl
import shapely

from canonical.derivations import GROUP, POPULATION_BY_AREA, TRANSIT_FEED, Derivation, areas
from canonical.variables import POPULATION_GROUPS, VARIABLES
from kpis.spatial import (
    GREEN_ACCESS_M,
    HIGH_CAPACITY_M,
    LOW_CAPACITY_M,
    MIN_WEEKDAY_DEPARTURES,
    U4SSC_STOP_M,
    LocalProjection,
    PopulationPoints,
    cells_as_points,
    covered_share,
    sdg_transit_access,
    spread_uniformly,
    stop_capacity,
    union_area_ha,
    within_distance,
)
from kpis.spatial.grid import DEFAULT_CELL_M
from kpis.spatial.network import StreetNetwork
from kpis.spatial.transit import MODE_ROUTE_TYPES, OPEN_SPACE_ACCESS_M, Capacity, Within, route_type_capacity
from warehouse.db import migrate
from warehouse.load import insert_frame

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
GeometryArray = npt.NDArray[np.object_]

GRID_AREA_TYPE = "population_cell"
DISTRICT_AREA_TYPE = "district"
GREEN_AREA_TYPE = "green_area"
STREET_AREA_TYPE = "street_area"
# The straight-line twin of each access variable whose indicator publishes both methods side by side.
STRAIGHT_LINE = {"population_transit_access_sdg": "population_transit_access_sdg_straight_line",
                 "population_within_500m_stop": "population_within_500m_stop_straight_line",
                 "population_within_300m_green": "population_within_300m_green_straight_line"}
POPULATION_GRID = "population_grid@1"
TRANSIT_SDG = "transit_access_sdg@1"
TRANSIT_500M = "transit_access_500m@1"
GREEN_300M = "green_access_300m@1"
OPEN_SPACE_400M = "open_space_access_400m@1"
OPEN_PUBLIC_SPACE = "open_public_space@2"
STREET_AREA = "street_area@1"


def straight_line(label: str) -> str:
    """The label of a measure's straight-line twin: transit_access_sdg@1 -> transit_access_sdg_straight_line@1."""
    return label.replace("@", "_straight_line@")


_TRANSIT = (POPULATION_BY_AREA, TRANSIT_FEED)
_GREEN = (POPULATION_BY_AREA, areas(GREEN_AREA_TYPE))
# What each spatial derivation makes, from what (canonical.derivations). kpis.coverage reads these;
# tests/test_derivation_declarations.py holds them against the rows derive_spatial writes for the demo.
DECLARED: tuple[Derivation, ...] = (
    Derivation(POPULATION_GRID, needs=(POPULATION_BY_AREA,), gives=(f"population_gridded[{GROUP}]",)),
    Derivation(TRANSIT_SDG, needs=_TRANSIT, gives=(f"population_transit_access_sdg[{GROUP}]",)),
    Derivation(TRANSIT_500M, needs=_TRANSIT, gives=(f"population_within_500m_stop[{GROUP}]",)),
    Derivation(GREEN_300M, needs=_GREEN, gives=(f"population_within_300m_green[{GROUP}]",)),
    Derivation(straight_line(TRANSIT_SDG), needs=_TRANSIT,
               gives=(f"{STRAIGHT_LINE['population_transit_access_sdg']}[{GROUP}]",)),
    Derivation(straight_line(TRANSIT_500M), needs=_TRANSIT,
               gives=(f"{STRAIGHT_LINE['population_within_500m_stop']}[{GROUP}]",)),
    Derivation(straight_line(GREEN_300M), needs=_GREEN,
               gives=(f"{STRAIGHT_LINE['population_within_300m_green']}[{GROUP}]",)),
    Derivation(OPEN_SPACE_400M, needs=_GREEN, gives=(f"population_within_400m_open_space[{GROUP}]",)),
    Derivation(OPEN_PUBLIC_SPACE, needs=(areas(GREEN_AREA_TYPE),), gives=("open_public_space_ha",)),
    Derivation(STREET_AREA, needs=(areas(STREET_AREA_TYPE),), gives=("street_area_ha",)),
)
DERIVED_VARIABLES = ("population_gridded", "population_transit_access_sdg", "population_within_500m_stop",
                     "population_within_300m_green", "population_within_400m_open_space", "open_public_space_ha",
                     "street_area_ha", *STRAIGHT_LINE.values())
EUCLIDEAN = ("method: straight_line; straight-line (Euclidean) distance in a local equal-area projection, not the "
             "walking distance along the street network of the UN method (no street network configured)")


def _obs(city_id: str, year: int, variable: str, value: float, *, source_record: str, derivation: str,
         data_point: str | None = None) -> dict[str, Any]:
    """Same row shape as warehouse.derive._obs (city-level, multi-source: no single snapshot)."""
    return {"city_id": city_id, "year": year, "variable": variable, "data_point": data_point,
            "area_type": "city", "area_id": city_id, "value": value, "unit": VARIABLES[variable].unit,
            "source_id": "derived", "snapshot_id": None, "source_record": source_record,
            "derivation": derivation}


@dataclass(frozen=True)
class Polygons:
    ids: list[str]
    wgs84: GeometryArray
    snapshots: list[str]
    sources: list[str]

    def label(self) -> str:
        return f"{', '.join(sorted(set(self.sources)))} (snapshot {', '.join(sorted(set(self.snapshots)))})"


def _polygons(con: duckdb.DuckDBPyConnection, city_id: str, area_type: str) -> Polygons:
    rows = con.execute("""SELECT area_id, geometry_wkb, snapshot_id, source_id FROM core_areas
                          WHERE city_id = ? AND area_type = ? ORDER BY area_id""", [city_id, area_type]).fetchall()
    if not rows and area_type == GRID_AREA_TYPE:  # a population grid published as cell centres
        points = con.execute("""SELECT point_id, lon, lat, snapshot_id, source_id FROM core_points
                                WHERE city_id = ? AND point_type = ? ORDER BY point_id""",
                             [city_id, area_type]).fetchall()
        rows = [(r[0], shapely.Point(r[1], r[2]).wkb, r[3], r[4]) for r in points]
    return Polygons(ids=[r[0] for r in rows],
                    wgs84=np.asarray(shapely.from_wkb([r[1] for r in rows]), dtype=object).reshape(len(rows)),
                    snapshots=[r[2] for r in rows], sources=[r[3] for r in rows])


@dataclass(frozen=True)
class AreaValues:
    """Population variables per area: (year, variable) -> {area_id: value}, and the sources they came from."""

    values: dict[tuple[int, str], dict[str, float]]
    sources: dict[tuple[int, str], set[str]]


def _area_values(con: duckdb.DuckDBPyConnection, city_id: str, area_type: str) -> AreaValues:
    rows = con.execute("""SELECT year, variable, area_id, value, source_id FROM observations
                          WHERE city_id = ? AND area_type = ? AND data_point IS NULL AND list_contains(?, variable)
                          ORDER BY ALL""", [city_id, area_type, list(POPULATION_GROUPS.values())]).fetchall()
    out = AreaValues({}, {})
    for year, variable, area_id, value, source_id in rows:
        out.values.setdefault((int(year), variable), {})[area_id] = float(value)
        out.sources.setdefault((int(year), variable), set()).add(source_id)
    return out


@dataclass(frozen=True)
class PopulationLayer:
    """Where the population lives: polygons, their population per year and group, as grid points."""

    polygons: Polygons
    area_type: str
    values: AreaValues
    points: PopulationPoints

    def placed(self, variable: str, year: int) -> str:
        sources = ", ".join(sorted(self.values.sources[year, variable]))
        given = f"{variable} {year} of {len(self.polygons.ids)} {self.area_type}(s) from {sources}"
        if self.area_type == GRID_AREA_TYPE:
            return f"{given}, each cell at its centroid (cells: {self.polygons.label()})"
        return (f"{given}, spread uniformly by area over the {len(self.points):,} parts of "
                f"{self.points.cell_size_m:g} m grid cells inside the polygons ({self.polygons.label()})")


def _population_layer(con: duckdb.DuckDBPyConnection, city_id: str, projection: LocalProjection,
                      candidates: dict[str, Polygons]) -> PopulationLayer | None:
    """The first of `candidates` (area type -> polygons: a population grid, then districts) with a population."""
    for area_type, polygons in candidates.items():
        values = _area_values(con, city_id, area_type)
        if polygons.ids and any(variable == "population" for _, variable in values.values):
            local = projection.geometries(polygons.wgs84)
            try:
                points = (cells_as_points(local) if area_type == GRID_AREA_TYPE
                          else spread_uniformly(local, DEFAULT_CELL_M))
            except ValueError as exc:  # a degenerate polygon: the access indicators come out missing
                log.warning("%s: cannot place population on %s polygons: %s", city_id, area_type, exc)
                return None
            return PopulationLayer(polygons, area_type, values, points)
    return None


@dataclass(frozen=True)
class Stops:
    xy: FloatArray
    capacity: list[Capacity | None]
    departures: npt.NDArray[np.int64]
    label: str
    timetable: bool = True  # False: a plain stop list, no departures to filter on


NO_FREQUENCY = "no frequency filter could be applied: the stop list has no timetable (no GTFS feed)"


def _stops(con: duckdb.DuckDBPyConnection, city_id: str, projection: LocalProjection) -> Stops:
    """Served stops (GTFS location_type 0 with weekday departures) of a public transport mode; without
    any, the stops of a plain stop list."""
    rows = con.execute("""SELECT lon, lat, route_types, coalesce(departures_06_20, departures), snapshot_id,
                                 service_date FROM core_transit_stops
                          WHERE city_id = ? AND location_type = 0 AND departures > 0 ORDER BY stop_id""",
                       [city_id]).fetchall()
    if not rows:
        return _stop_list(con, city_id, projection)
    capacity = [stop_capacity(r[2]) for r in rows]
    keep = [i for i, c in enumerate(capacity) if c is not None]
    snapshots = sorted({rows[i][4] for i in keep})
    xy = projection.points([rows[i][0] for i in keep], [rows[i][1] for i in keep]) if keep else np.zeros((0, 2))
    return Stops(xy=xy, capacity=[capacity[i] for i in keep],
                 departures=np.array([rows[i][3] for i in keep], dtype=np.int64),
                 label=f"GTFS snapshot {', '.join(snapshots) or '-'}{_service_days(rows)}")


def _service_days(rows: list[tuple[Any, ...]]) -> str:
    """The resolved GTFS service date(s) the departures were counted on (sources/parsers/gtfs.py)."""
    days = sorted({str(r[5]) for r in rows if r[5] is not None})
    return f"; departures 06:00-20:00 on {', '.join(days)}" if days else ""


def _stop_list(con: duckdb.DuckDBPyConnection, city_id: str, projection: LocalProjection) -> Stops:
    """Stops of a plain stop list (points of type transit_stop:<mode>), used when there is no GTFS feed."""
    rows = con.execute("""SELECT lon, lat, point_type, source_id, snapshot_id FROM core_points
                          WHERE city_id = ? AND starts_with(point_type, 'transit_stop:') ORDER BY point_id""",
                       [city_id]).fetchall()
    capacity = [route_type_capacity(MODE_ROUTE_TYPES.get(r[2].split(":", 1)[1], -1)) for r in rows]
    keep = [i for i, c in enumerate(capacity) if c is not None]
    sources = sorted({f"{rows[i][3]} (snapshot {rows[i][4]})" for i in keep})
    xy = projection.points([rows[i][0] for i in keep], [rows[i][1] for i in keep]) if keep else np.zeros((0, 2))
    return Stops(xy=xy, capacity=[capacity[i] for i in keep], departures=np.zeros(len(keep), dtype=np.int64),
                 label=f"stop list {', '.join(sources) or '-'}; {NO_FREQUENCY}", timetable=False)


@dataclass(frozen=True)
class Streets:
    """The walkable street graph of the city (core_street_edges) in the local projection."""

    network: StreetNetwork
    label: str

    @property
    def method(self) -> str:
        return (f"method: network; walking distance along the street network ({self.label}): population points "
                "and stops snapped to the nearest street node, snap distances added")


def _streets(con: duckdb.DuckDBPyConnection, city_id: str, projection: LocalProjection) -> Streets | None:
    edges = con.execute("""SELECT u_node, v_node, u_lon, u_lat, v_lon, v_lat, length_m FROM core_street_edges
                           WHERE city_id = ?""", [city_id]).fetchnumpy()
    if len(edges["u_node"]) == 0:
        return None
    u_id, v_id = np.asarray(edges["u_node"], dtype=np.int64), np.asarray(edges["v_node"], dtype=np.int64)
    ids, first, inverse = np.unique(np.concatenate([u_id, v_id]), return_index=True, return_inverse=True)
    lon = np.concatenate([np.asarray(edges["u_lon"]), np.asarray(edges["v_lon"])])[first]
    lat = np.concatenate([np.asarray(edges["u_lat"]), np.asarray(edges["v_lat"])])[first]
    network = StreetNetwork.from_edges(projection.points(lon, lat), inverse[: u_id.size], inverse[u_id.size:],
                                       np.asarray(edges["length_m"], dtype=np.float64))
    sources = con.execute("""SELECT source_id, snapshot_id, count(*), sum(length_m) FROM core_street_edges
                             WHERE city_id = ? GROUP BY ALL ORDER BY ALL""", [city_id]).fetchall()
    label = "; ".join(f"{src} (snapshot {snap}): {n:,} edges, {km / 1000:,.1f} km" for src, snap, n, km in sources)
    return Streets(network, f"{ids.size:,} nodes; {label}")


@dataclass(frozen=True)
class Measure:
    variable: str
    derivation: str
    share: FloatArray  # per layer area: share of its population covered
    rule: str  # completes "share of each area's population ..."
    method: str = EUCLIDEAN  # the record's first words: method: network or method: straight_line


def _measures(layer: PopulationLayer, stops: Stops, green: GeometryArray, green_label: str,
              streets: Streets | None) -> list[Measure]:
    """The access measures by the best method the city allows (walking distance along its street
    network, else straight line), and the straight-line twins of 11.2.1, EC:I:T:2A and EN:EN:PSN:2A:
    computed again in straight line when a network is loaded, the same shares relabelled when not."""
    best = _measures_by(layer, stops, green, green_label, streets)
    straight = best if streets is None else _measures_by(layer, stops, green, green_label, None)
    twins = [Measure(STRAIGHT_LINE[m.variable], straight_line(m.derivation), m.share, m.rule,
                     EUCLIDEAN_TWIN if streets is not None else EUCLIDEAN)
             for m in straight if m.variable in STRAIGHT_LINE]
    return best + twins


EUCLIDEAN_TWIN = ("method: straight_line; straight-line (Euclidean) distance in a local equal-area projection, "
                  "beside the walking distance along the street network of the headline value (for comparison)")


def _measures_by(layer: PopulationLayer, stops: Stops, green: GeometryArray, green_label: str,
                 streets: Streets | None) -> list[Measure]:
    xy = layer.points.xy
    measures = []
    within: Within = streets.network.within if streets is not None else within_distance
    method = streets.method if streets is not None else EUCLIDEAN

    def near_green(limit: float) -> npt.NDArray[np.bool_]:
        if streets is not None:
            return streets.network.within_polygons(xy, green, limit)
        return within_distance(xy, green, limit)

    if len(stops.xy):
        high_low = (f"within {LOW_CAPACITY_M:g} m of a low-capacity or {HIGH_CAPACITY_M:g} m of a high-capacity "
                    "stop, counting ")
        if stops.timetable:
            frequent = int((stops.departures >= MIN_WEEKDAY_DEPARTURES).sum())
            sdg = sdg_transit_access(xy, stops.xy, stops.capacity, stops.departures, within=within)
            counted = (f"the {frequent} of {len(stops.xy)} served stops with >= {MIN_WEEKDAY_DEPARTURES} weekday "
                       f"departures ({stops.label})")
        else:
            sdg = sdg_transit_access(xy, stops.xy, stops.capacity, stops.departures, min_departures=0,
                                     within=within)
            counted = f"all {len(stops.xy)} stops ({stops.label})"
        measures.append(Measure(
            "population_transit_access_sdg", TRANSIT_SDG, covered_share(layer.points, sdg),
            high_low + counted, method))
        any_stop = within(xy, stops.xy, U4SSC_STOP_M)
        served = "served stops" if stops.timetable else "stops"
        measures.append(Measure(
            "population_within_500m_stop", TRANSIT_500M, covered_share(layer.points, any_stop),
            f"within {U4SSC_STOP_M:g} m of any of {len(stops.xy)} {served} ({stops.label})", method))
    if green.size:
        measures.append(Measure(
            "population_within_300m_green", GREEN_300M,
            covered_share(layer.points, near_green(GREEN_ACCESS_M)),
            f"within {GREEN_ACCESS_M:g} m of one of {green.size} public green areas ({green_label})", method))
        measures.append(Measure(
            "population_within_400m_open_space", OPEN_SPACE_400M,
            covered_share(layer.points, near_green(OPEN_SPACE_ACCESS_M)),
            f"within {OPEN_SPACE_ACCESS_M:g} m of one of {green.size} open public spaces (the public green "
            f"areas; squares not mapped as green areas are missed) ({green_label})", method))
    return measures


def _population_rows(city_id: str, years: Sequence[int], layer: PopulationLayer, measures: Sequence[Measure]
                     ) -> list[dict[str, Any]]:
    rows = []
    ids = layer.polygons.ids
    for year in years:
        for group, variable in POPULATION_GROUPS.items():
            values = layer.values.values.get((year, variable), {})
            if set(values) != set(ids):
                if values:
                    log.warning("%s %s: %s is given for %d of %d %s polygons (or for areas without one): not "
                                "placed on the grid", city_id, year, variable, len(set(values) & set(ids)),
                                len(ids), layer.area_type)
                continue
            population = np.array([values[a] for a in ids])
            rows.append(_obs(city_id, year, "population_gridded", float(population.sum()), data_point=group,
                             derivation=POPULATION_GRID,
                             source_record=layer.placed(variable, year)))
            for m in measures:
                rows.append(_obs(
                    city_id, year, m.variable, float((population * m.share).sum()), data_point=group,
                    derivation=m.derivation,
                    source_record=(f"{m.method}; sum over {layer.area_type}s of their population x the share of "
                                   f"it {m.rule}; {layer.placed(variable, year)}; geometry and feed assumed valid "
                                   f"for {year}")))
    return rows


def _open_space_rows(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int], green_local: GeometryArray,
                     green_label: str, streets_local: GeometryArray, streets_label: str) -> list[dict[str, Any]]:
    """Open public space without streets (the catalogue adds street_area_ha) and, from road polygons,
    street_area_ha where the city does not publish it."""
    rows = []
    if green_local.size:
        green_ha = union_area_ha(green_local)
        for year in years:
            rows.append(_obs(city_id, year, "open_public_space_ha", green_ha, derivation=OPEN_PUBLIC_SPACE,
                             source_record=(f"{green_ha:.2f} ha union of {green_local.size} public green-area "
                                            f"polygons ({green_label}; assumed valid for {year}); streets not "
                                            "included: 11.7.1 adds street_area_ha")))
    if streets_local.size:
        # Road polygons overlapping a park are counted once: streets minus the green union.
        street_union = shapely.union_all(streets_local)
        if green_local.size:
            street_union = shapely.difference(street_union, shapely.union_all(green_local))
        street_ha = float(shapely.area(street_union)) / 10_000.0
        for year in years:
            rows.append(_obs(city_id, year, "street_area_ha", street_ha, derivation=STREET_AREA,
                             source_record=(f"{street_ha:.2f} ha union of {streets_local.size} street-area polygons "
                                            f"({streets_label}; assumed valid for {year}), less their overlap with "
                                            "public green areas")))
    return rows


def derive_spatial(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int]) -> list[dict[str, Any]]:
    """Derived observation rows of the spatial indicators for one city and its reporting years.

    Skips any (year, variable, data point) the city publishes itself at city level."""
    population_areas = {t: _polygons(con, city_id, t) for t in (GRID_AREA_TYPE, DISTRICT_AREA_TYPE)}
    green = _polygons(con, city_id, GREEN_AREA_TYPE)
    anchor = next((p.wgs84 for p in (population_areas[DISTRICT_AREA_TYPE], population_areas[GRID_AREA_TYPE], green)
                   if p.ids), None)
    if anchor is None:
        return []
    projection = LocalProjection.around(anchor)
    green_local = projection.geometries(green.wgs84) if green.ids else np.empty(0, dtype=object)
    green_local.flags.writeable = False  # read-only: the tree and park entries built on it are remembered
    street_areas = _polygons(con, city_id, STREET_AREA_TYPE)
    streets_local = projection.geometries(street_areas.wgs84) if street_areas.ids else np.empty(0, dtype=object)
    rows = _open_space_rows(con, city_id, years, green_local, green.label(), streets_local, street_areas.label())
    layer = _population_layer(con, city_id, projection, population_areas)
    if layer is not None:
        streets = _streets(con, city_id, projection)
        measures = _measures(layer, _stops(con, city_id, projection), green_local, green.label(), streets)
        rows += _population_rows(city_id, years, layer, measures)
    published = {(y, v, dp) for y, v, dp in con.execute(
        """SELECT year, variable, data_point FROM observations WHERE city_id = ? AND area_type = 'city'
           AND derivation IS NULL AND list_contains(?, variable)""", [city_id, list(DERIVED_VARIABLES)]).fetchall()}
    return [r for r in rows if (r["year"], r["variable"], r["data_point"]) not in published]


# ---- the same derivation before the rows are in the warehouse (a load's worker process) -------------

# What derive_spatial reads. At that point of a load every row it reads in them is a source's row (the
# derivations before it write city-level roll-ups, air means and polygon areas, none of which it reads).
SPATIAL_INPUT_TABLES = ("core_areas", "core_points", "core_transit_stops", "core_street_edges", "observations")
_scratch: duckdb.DuckDBPyConnection | None = None


def _scratch_warehouse() -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse with the real schema, one per process (each city's rows rolled back)."""
    global _scratch
    if _scratch is None:
        con = duckdb.connect(":memory:", config={"threads": 1})  # the loading process has the other core
        migrate(con)
        _scratch = con
    return _scratch


def derive_spatial_from_rows(city_id: str, years: Sequence[int], rows: dict[str, list[pl.DataFrame]]
                             ) -> list[dict[str, Any]]:
    """derive_spatial over a city's source rows (table -> frames, as parsed) that are all of its rows: a
    city loaded for the first time. `pipelines/steps.py` runs it in the worker process that parsed the
    city, so the writing process does not (tests/test_load_parallel.py holds the rows equal)."""
    con = _scratch_warehouse()
    con.execute("BEGIN TRANSACTION")
    try:
        for table in SPATIAL_INPUT_TABLES:
            for frame in rows.get(table, []):
                if frame.height:
                    insert_frame(con, table, frame)
        return derive_spatial(con, city_id, years)
    finally:
        con.execute("ROLLBACK")
