"""Derived observations: what KPIs need but sources do not publish directly.

Each derivation is a named, versioned function of core tables; its rows carry
`derivation = '<name>@<version>'` and a `source_record` describing the inputs. `derive_city` replaces
all derived rows of a city together; `refresh_derived` (what a load calls) re-derives only what the
load touched: after appended readings, the annual means of the (year, variable, data point) keys that
got rows (`derive_air`); after any other change, everything. Readings enter through the loader's
exact aggregates (core_readings_groups), so no derivation rescans the hourly table. Call inside a
transaction.

- district_rollup@1: city totals of additive variables from complete district values
- station_annual_mean@2: annual mean per station and pollutant from its readings: >= 75 % of the
  year's hours for hourly monitors, of its days for daily samplers (`sampling: daily`, e.g.
  gravimetric PM: one value a day), the usual validity rule for annual means; a city config may ask
  for another share (`air_quality.min_coverage_pct`, e.g. the EU's 90 %: `AirRules`)
- city_annual_mean@2: city mean of the valid station annual means of the exposure stations
  (`select_exposure_stations`: inside the city boundary; background stations when types are known);
  when no station of a year, variable and data point is valid, or all valid ones lie outside the
  city, the key is recorded in `core_withheld` (migration 0006) with the rule, the stations and their
  coverage, and the KPI engine names that reason in the missing row
- city_annual_mean_all_stations@1: beside it, the mean of every station inside the city whatever its
  type (traffic and industrial too), variable air_concentration_all_stations_ugm3: a labelled data
  point of EN:EN:AQ:1C, never the headline
- district_annual_mean@2: per district, mean of its exposure stations; else the nearest exposure
  station's value, nearest by geodesic metres from the district's centroid
- district_annual_mean_all_stations@1: the same from every station inside the city whatever its type,
  variable air_concentration_all_stations_ugm3: the labelled `<pollutant>, all stations` data points
  of SDG 11.6.2, never the headline
- polygon_area@1: district areas from polygons (year-less, applied to every reporting year; the
  record says which snapshot); polygon_area@2: total green area as the geodesic area of the union of
  the green-area polygons (overlaps counted once)
- validity (`apply_validity`): a year-less spatial value (polygon areas, stop totals, the spatial
  derivation's rows) of a reporting year outside the validity of a source it reads (declared valid_from /
  valid_to, or a GTFS feed's dates; migration 0010) is withheld in core_withheld (rule `validity`),
  or kept with `assumed_valid` in its record when the source sets assume_valid
- transit_stops@2: served public-transport stops and stations (GTFS location_type 0 with departures,
  the platforms of one parent_station counted once)
- the spatial derivations (access to stops and green space, open public space): the UN methods in
  kpis/spatial/derive.py, a layer above; `derive_city` and `refresh_derived` take them as a callable
  (`spatial`), so the warehouse never imports kpis (docs/architecture.md, "Layers")

Each derivation also declares what it makes from what (`DECLARED`, canonical.derivations.Derivation),
beside the code and under the labels its rows carry; kpis/coverage.py reads the declarations.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import polars as pl
import shapely
from shapely import STRtree

from canonical.derivations import (
    DISTRICT_SUMS,
    READING_REFS,
    READINGS,
    TRANSIT_FEED,
    Derivation,
    areas,
    readings_of,
    readings_points,
)
from canonical.variables import VARIABLES
from sources.mapping import OBSERVATION_SCHEMA
from warehouse.db import one_row, scalar
from warehouse.load import MEAN_AGGREGATES, LoadChange, frame_of, insert_frame, rebuild_readings_groups

# The spatial derivation (access to stops and green space, open public space): (connection, city,
# reporting years) -> derived observation rows. It applies the UN methods of kpis/spatial/, a layer
# above the warehouse, so the caller passes it in (pipelines.steps: kpis.spatial.derive.derive_spatial).
SpatialDerivation = Callable[[duckdb.DuckDBPyConnection, str, Sequence[int]], list[dict[str, Any]]]

MIN_COVERAGE = 0.75  # the default; a city config may ask for the EU's 90 % (`air_quality.min_coverage_pct`)
_AIR = "air_concentration_ugm3"
_AIR_ALL = "air_concentration_all_stations_ugm3"
# 2: daily samplers judged by days; city and district means from background stations inside the city,
# nearest station in metres (issue #15)
STATION_MEAN = "station_annual_mean@2"
CITY_MEAN = "city_annual_mean@2"
CITY_MEAN_ALL = "city_annual_mean_all_stations@1"  # beside CITY_MEAN: every station type (issue #15)
DISTRICT_MEAN = "district_annual_mean@2"
DISTRICT_MEAN_ALL = "district_annual_mean_all_stations@1"  # beside DISTRICT_MEAN: every station type (11.6.2)
DISTRICT_ROLLUP = "district_rollup@1"
DISTRICT_AREA = "polygon_area@1"
GREEN_AREA = "polygon_area@2"  # 2: green area as the union of the polygons (overlaps once)
TRANSIT_STOPS = "transit_stops@2"  # 2: platforms of one parent station counted once

# What each derivation of this module makes, from what (canonical.derivations). kpis.coverage reads
# these; tests/test_derivation_declarations.py holds them against the rows derive_city writes for
# the demo city. A new or changed derivation changes its declaration here.
DECLARED: tuple[Derivation, ...] = (
    Derivation(DISTRICT_ROLLUP, needs=(), gives=(DISTRICT_SUMS,)),
    Derivation(STATION_MEAN, needs=(READINGS,), gives=(READING_REFS,), area_types=("station",)),
    Derivation(CITY_MEAN, needs=(READINGS,), gives=(READING_REFS,)),
    Derivation(CITY_MEAN_ALL, needs=(readings_of(_AIR),), gives=(f"{_AIR_ALL}[{readings_points(_AIR)}]",)),
    Derivation(DISTRICT_MEAN, needs=(READINGS, areas("district")), gives=(READING_REFS,),
               area_types=("district",)),
    Derivation(DISTRICT_MEAN_ALL, needs=(readings_of(_AIR), areas("district")),
               gives=(f"{_AIR_ALL}[{readings_points(_AIR)}]",), area_types=("district",)),
    # the city's area is its districts' (used only where no source publishes it)
    Derivation(DISTRICT_AREA, needs=(areas("district"),), gives=("area_ha",), area_types=("district", "city")),
    Derivation(GREEN_AREA, needs=(areas("green_area"),), gives=("green_area_ha",)),
    Derivation(TRANSIT_STOPS, needs=(TRANSIT_FEED,), gives=("transit_stops_total",)),
)


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    full = [{**{k: None for k in OBSERVATION_SCHEMA}, **row} for row in rows]
    return pl.DataFrame(full, schema=OBSERVATION_SCHEMA, orient="row") if full else pl.DataFrame(
        schema=OBSERVATION_SCHEMA)


def _obs(city_id: str, year: int, variable: str, value: float, *, area_type: str, area_id: str,
         source_record: str, derivation: str, data_point: str | None = None, snapshot_id: str | None = None,
         source_id: str = "derived") -> dict[str, Any]:
    return {"city_id": city_id, "year": year, "variable": variable, "data_point": data_point,
            "area_type": area_type, "area_id": area_id, "value": value, "unit": VARIABLES[variable].unit,
            "source_id": source_id, "snapshot_id": snapshot_id, "source_record": source_record,
            "derivation": derivation}


@dataclass(frozen=True)
class AirRules:
    """A city's rules for annual means: the share of the year's hours (days for daily samplers) a
    station-year needs (75 % by default, the usual rule; 90 % as the EU air-quality directive 2008/50/EC
    Annex I asks of fixed measurements)."""

    min_coverage: float = MIN_COVERAGE

    def text(self) -> str:
        return f"{100 * self.min_coverage:g} %"


def assign_points_to_districts(con: duckdb.DuckDBPyConnection, city_id: str) -> None:
    districts = con.execute("SELECT area_id, geometry_wkb FROM core_areas WHERE city_id = ? AND area_type = "
                            "'district' ORDER BY area_id", [city_id]).fetchall()
    points = con.execute("SELECT point_type, point_id, lon, lat FROM core_points WHERE city_id = ?",
                         [city_id]).fetchall()
    if not districts or not points:
        return
    geoms = [shapely.from_wkb(wkb) for _, wkb in districts]
    tree = STRtree(geoms)
    for point_type, point_id, lon, lat in points:
        hits = tree.query(shapely.Point(lon, lat), predicate="intersects")
        district = districts[int(min(hits))][0] if len(hits) else None
        con.execute("UPDATE core_points SET district_id = ? WHERE city_id = ? AND point_type = ? AND point_id = ?",
                    [district, city_id, point_type, point_id])


def district_rollup(con: duckdb.DuckDBPyConnection, city_id: str) -> list[dict[str, Any]]:
    """Sum district values to the city where every district has a value and the city has none."""
    additive = [name for name, v in VARIABLES.items() if v.aggregation == "sum"]
    rows = con.execute("""
        WITH districts AS (
            SELECT count(*) AS n FROM core_areas WHERE city_id = $city AND area_type = 'district'),
        d AS (
            SELECT year, variable, data_point, sum(value ORDER BY area_id) AS total, count(*) AS n,
                   string_agg(DISTINCT source_id, ', ' ORDER BY source_id) AS sources
            FROM observations
            WHERE city_id = $city AND area_type = 'district' AND derivation IS NULL
              AND list_contains($additive, variable)
            GROUP BY ALL)
        SELECT d.year, d.variable, d.data_point, d.total, d.n, d.sources, districts.n AS expected
        FROM d, districts
        WHERE NOT EXISTS (SELECT 1 FROM observations o WHERE o.city_id = $city AND o.area_type = 'city'
                          AND o.year = d.year AND o.variable = d.variable
                          AND o.data_point IS NOT DISTINCT FROM d.data_point)
        ORDER BY ALL""", {"city": city_id, "additive": additive}).fetchall()
    out = []
    for year, variable, data_point, total, n, sources, expected in rows:
        if expected and n < expected:
            continue  # incomplete: a partial sum would understate the city total
        out.append(_obs(city_id, year, variable, total, data_point=data_point, area_type="city",
                        area_id=city_id, derivation=DISTRICT_ROLLUP,
                        source_record=f"sum of {n} district values from {sources}"))
    return out


def _group_means(con: duckdb.DuckDBPyConnection, city_id: str, groups_sql: str, params: dict[str, Any],
                 rules: AirRules = AirRules()) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Station annual means from readings group aggregates (`groups_sql`: rows with city_id, source_id,
    station_id, variable, data_point, year, n, exact_sum, inexact, hours).

    Determinism without a sort: a parallel avg() over DOUBLE adds in thread order and differs in the
    last bits from run to run. The values are summed as DECIMAL(38, 12), exact integer arithmetic
    (HUGEINT underneath), so the sum is the same in any order and in any split into parts (a full scan,
    or stored aggregates plus appended rows), and the mean is the same bytes every run. 12 decimals are
    far below any published precision; sums up to 1e26 fit. A group with a NaN, an infinity or an absurd
    |value| >= 1e18 (which the DECIMAL cast would reject) falls back to avg() over its rows: NaN/inf
    means do not depend on the order. The distinct hours of a group are a bitmap over the hour of the
    year (OR-ed across parts), not a hash set per group. Provenance: the source's current snapshot."""
    rows = con.execute(f"""
        WITH g AS ({groups_sql})
        SELECT g.year, g.station_id, g.variable, g.data_point,
               CASE WHEN sum(g.inexact) = 0 THEN CAST(sum(g.exact_sum) AS DOUBLE) / sum(g.n) END AS mean,
               bit_count(bit_or(g.hours)) AS hours, min(g.source_id) AS source_id,
               coalesce(max(s.readings_sampling), 'hourly') AS sampling,
               CASE WHEN max(s.readings_sampling) = 'daily' THEN CAST(bit_or(g.hours) AS VARCHAR) END AS bitmap
        FROM g LEFT JOIN core_source_state s ON s.city_id = $city AND s.source_id = g.source_id
        GROUP BY ALL ORDER BY ALL""", params).fetchall()
    snapshots = dict(con.execute("SELECT source_id, snapshot_id FROM core_source_state WHERE city_id = ?",
                                 [city_id]).fetchall())
    valid, rejected = [], []
    for year, station, variable, data_point, mean, hours, source_id, sampling, bitmap in rows:
        hours_in_year = 8784 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 8760
        if sampling == "daily":  # one sample a day: count the days with a sample (EU: 75 % of days)
            covered, expected, unit = days_with_readings(bitmap), hours_in_year // 24, "days"
            record = (f"mean of samples on {covered} days ({covered / expected:.1%} of the year, >= "
                      f"{rules.text()} needed) from {source_id}")
        else:
            covered, expected, unit = int(hours), hours_in_year, "hours"
            record = (f"mean of {hours} hourly readings ({covered / expected:.1%} of the year, >= "
                      f"{rules.text()} needed) from {source_id}")
        coverage = covered / expected
        if coverage < rules.min_coverage:
            rejected.append({"station_id": station, "year": year, "variable": variable, "data_point": data_point,
                             "hours": covered, "hours_in_year": expected, "unit": unit,
                             "coverage": round(coverage, 4)})
            continue
        if mean is None:
            mean = _inexact_mean(con, city_id, year, station, variable, data_point)
        valid.append(_obs(city_id, year, variable, mean, data_point=data_point, area_type="station",
                          area_id=station, derivation=STATION_MEAN, source_record=record,
                          snapshot_id=snapshots.get(source_id), source_id=source_id))
    return valid, rejected


def days_with_readings(bitmap: str | None) -> int:
    """Days of the year with at least one reading, from the hour-of-year bitmap ('0'/'1' text, bit i =
    hour i of the UTC year)."""
    if not bitmap:
        return 0
    return sum(1 for start in range(0, len(bitmap), 24) if "1" in bitmap[start:start + 24])


def _inexact_mean(con: duckdb.DuckDBPyConnection, city_id: str, year: int, station: str, variable: str,
                  data_point: str | None) -> float:
    row = one_row(con, """SELECT avg(value) FROM core_readings WHERE city_id = ? AND station_id = ? AND variable = ?
                          AND data_point IS NOT DISTINCT FROM ? AND year(make_timestamp(epoch_us(observed_at))) = ?""",
                  [city_id, station, variable, data_point, year])
    return float(row[0]) if row and row[0] is not None else float("nan")  # type: ignore[arg-type]


def station_annual_means(con: duckdb.DuckDBPyConnection, city_id: str, rules: AirRules = AirRules()
                         ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(valid station-year means, rejected station-years with their coverage), computed from the hourly
    rows themselves (one scan). The pipeline reads the same aggregates maintained by the loader in
    core_readings_groups (`station_means_from_groups`); both give the same bytes."""
    # Year and hour come from the UTC epoch as a plain TIMESTAMP (`AT TIME ZONE` and date_trunc on
    # TIMESTAMPTZ go through ICU per row).
    groups = f"""WITH r AS (SELECT *, make_timestamp(epoch_us(observed_at)) AS ts FROM core_readings
                            WHERE city_id = $city)
                 SELECT source_id, station_id, variable, data_point, CAST(year(ts) AS INTEGER) AS year,
                        {MEAN_AGGREGATES}
                 FROM r GROUP BY ALL"""
    return _group_means(con, city_id, groups, {"city": city_id}, rules)


def station_means_from_groups(con: duckdb.DuckDBPyConnection, city_id: str,
                              keys: Iterable[tuple[int, str, str | None]] | None = None,
                              rules: AirRules = AirRules()) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Station annual means from core_readings_groups, of every (year, variable, data point) or of `keys`."""
    if keys is None:
        return _group_means(con, city_id, "SELECT * FROM core_readings_groups WHERE city_id = $city",
                            {"city": city_id}, rules)
    wanted = sorted(set(keys), key=str)
    return _group_means(con, city_id, """
        SELECT g.* FROM core_readings_groups g JOIN (SELECT unnest($years) AS year, unnest($variables) AS variable,
                                                            unnest($points) AS data_point) k
          ON g.year = k.year AND g.variable = k.variable AND g.data_point IS NOT DISTINCT FROM k.data_point
        WHERE g.city_id = $city""", {"city": city_id, "years": [k[0] for k in wanted],
                                     "variables": [k[1] for k in wanted], "points": [k[2] for k in wanted]},
                        rules)


@dataclass(frozen=True)
class StationMeta:
    """What the exposure rule needs to know of a station: its type (None = unknown), whether it lies
    inside the city (None = unknown: no location or no district polygons) and where it is."""

    station_type: str | None
    inside: bool | None
    lon: float | None = None
    lat: float | None = None
    district_id: str | None = None


def station_metadata(con: duckdb.DuckDBPyConnection, city_id: str) -> dict[str, StationMeta]:
    """Every located point by id (a point with a station type wins over one without)."""
    has_districts = bool(scalar(con, "SELECT count(*) FROM core_areas WHERE city_id = ? AND area_type = 'district'",
                                [city_id]))
    out: dict[str, StationMeta] = {}
    for point_id, kind, lon, lat, district in con.execute(
            """SELECT point_id, station_type, lon, lat, district_id FROM core_points WHERE city_id = ?
               ORDER BY point_id, station_type NULLS LAST, point_type""", [city_id]).fetchall():
        if point_id not in out:
            out[point_id] = StationMeta(kind, (district is not None) if has_districts else None, lon, lat, district)
    return out


@dataclass
class Selection:
    """The stations an exposure mean uses, and why the others are left out."""

    used: list[dict[str, Any]]
    excluded: dict[str, str]       # station -> reason
    unknown_type: list[str]        # used although their type is unknown (flagged)
    note: str                      # the rule applied, one phrase


def select_exposure_stations(members: list[dict[str, Any]], meta: dict[str, StationMeta]) -> Selection:
    """The stations whose annual means make a city's (or a district's) exposure value.

    Stations outside the city boundary are left out. When any remaining station's type is known, the
    mean uses background stations (and those of unknown type, flagged), as the EU air-quality directive
    (2008/50/EC, Annex III B) and the WHO's exposure practice take urban background stations as
    representative of the population's exposure: traffic and industrial stations measure hot spots. A
    city with typed stations but none background falls back to all of them, and says so."""
    unknown = StationMeta(None, None)
    excluded = {r["area_id"]: "outside the city boundary" for r in members
                if meta.get(r["area_id"], unknown).inside is False}
    inside = [r for r in members if r["area_id"] not in excluded]
    types = {r["area_id"]: meta.get(r["area_id"], unknown).station_type for r in inside}
    untyped = sorted(k for k, v in types.items() if v is None)
    if not any(types.values()):
        note = "station types unknown: all stations in the city" if inside else "no station in the city"
        return Selection(inside, excluded, untyped, note)
    background = [r for r in inside if types[r["area_id"]] in ("background", None)]
    if not background:
        return Selection(inside, excluded, untyped, "no background station: traffic/industrial stations, "
                                                    "overstating the population's exposure")
    for r in inside:
        if types[r["area_id"]] not in ("background", None):
            excluded[r["area_id"]] = f"{types[r['area_id']]} station"
    return Selection(background, excluded, untyped, "background stations")


def _selection_text(selection: Selection) -> str:
    parts = []
    if selection.excluded:
        parts.append("excluded: " + ", ".join(f"{k} ({v})" for k, v in sorted(selection.excluded.items())))
    if selection.unknown_type:
        parts.append("type unknown, counted: " + ", ".join(selection.unknown_type))
    return "".join(f"; {p}" for p in parts)


def city_annual_means(city_id: str, stations: list[dict[str, Any]], observed: set[tuple[int, str, str | None]],
                      meta: dict[str, StationMeta] | None = None) -> list[dict[str, Any]]:
    """City mean of the valid station annual means of each (year, variable, data point), from the
    stations `select_exposure_stations` keeps (`meta`: station types and locations)."""
    groups: dict[tuple[int, str, str | None], list[dict[str, Any]]] = {}
    for row in stations:
        groups.setdefault((row["year"], row["variable"], row["data_point"]), []).append(row)
    out = []
    for (year, variable, data_point), members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if (year, variable, data_point) in observed:
            continue
        selection = select_exposure_stations(members, meta or {})
        if variable == _AIR:
            out += _all_station_mean(city_id, year, data_point, members, selection, observed)
        if not selection.used:
            continue  # recorded in core_withheld by withheld_city_means
        mean = sum(r["value"] for r in selection.used) / len(selection.used)
        names = ", ".join(sorted(r["area_id"] for r in selection.used))
        out.append(_obs(city_id, year, variable, mean, data_point=data_point, area_type="city", area_id=city_id,
                        derivation=CITY_MEAN,
                        source_record=f"mean of {len(selection.used)} station annual means ({names}); "
                                      f"{selection.note}{_selection_text(selection)}"))
    return out


def _all_station_mean(city_id: str, year: int, data_point: str | None, members: list[dict[str, Any]],
                      selection: Selection, observed: set[tuple[int, str, str | None]]) -> list[dict[str, Any]]:
    """The mean of every station inside the city whatever its type (traffic and industrial hot spots
    too), labelled as such beside the exposure mean: what a city that averages all its monitors reports."""
    if (year, _AIR_ALL, data_point) in observed:
        return []
    outside = {k for k, v in selection.excluded.items() if v == "outside the city boundary"}
    inside = [r for r in members if r["area_id"] not in outside]
    if not inside:
        return []
    names = ", ".join(sorted(str(r["area_id"]) for r in inside))
    left_out = ("; excluded: " + ", ".join(f"{k} (outside the city boundary)" for k in sorted(outside))
                if outside else "")
    return [_obs(city_id, year, _AIR_ALL, sum(r["value"] for r in inside) / len(inside), data_point=data_point,
                 area_type="city", area_id=city_id, derivation=CITY_MEAN_ALL,
                 source_record=(f"mean of {len(inside)} station annual means of every station type ({names}), "
                                f"not only the exposure stations of {_AIR}{left_out}"))]


WITHHELD_COLUMNS = ("city_id", "year", "variable", "data_point", "area_type", "area_id", "derivation", "rule",
                    "reason", "details")


def _percent(share: float) -> str:
    return f"{100 * share:.1f}"


def withheld_city_means(city_id: str, stations: list[dict[str, Any]], rejected: list[dict[str, Any]],
                        observed: set[tuple[int, str, str | None]], years: Sequence[int],
                        meta: dict[str, StationMeta] | None = None, rules: AirRules = AirRules()
                        ) -> list[dict[str, Any]]:
    """City annual means of the reporting `years` withheld because no station of the (year, variable,
    data point) has enough hours: one row per key naming the rule, the stations and their coverage
    (core_withheld, migration 0006)."""
    valid = {(r["year"], r["variable"], r["data_point"]) for r in stations}
    out = _withheld_outside(city_id, stations, observed, years, meta or {})
    groups: dict[tuple[int, str, str | None], list[dict[str, Any]]] = {}
    for row in rejected:
        if row["year"] in years:
            groups.setdefault((row["year"], row["variable"], row["data_point"]), []).append(row)
    for (year, variable, data_point), members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if (year, variable, data_point) in valid or (year, variable, data_point) in observed:
            continue
        members.sort(key=lambda r: (r["coverage"], str(r["station_id"])))
        shares = [r["hours"] / r["hours_in_year"] for r in members]
        low, high = _percent(min(shares)), _percent(max(shares))
        span = f"{low} %" if low == high else f"{low}–{high} %"
        names = ", ".join(sorted((str(r["station_id"]) for r in members), key=lambda s: (len(s), s)))
        label = data_point or variable
        units = " / ".join(sorted({r.get("unit", "hours") for r in members}))
        reason = (f"{label} {year}: {len(members)} station(s) below {rules.text()} of the year's "
                  f"{units} ({span}), the least an annual mean needs: {names}")
        details = [{"station_id": r["station_id"], "hours": r["hours"], "hours_in_year": r["hours_in_year"]}
                   for r in members]
        out.append({"city_id": city_id, "year": year, "variable": variable, "data_point": data_point,
                    "area_type": "city", "area_id": city_id, "derivation": CITY_MEAN,
                    "rule": "min_coverage", "reason": reason, "details": json.dumps(details, sort_keys=True)})
    return out


def _withheld_outside(city_id: str, stations: list[dict[str, Any]], observed: set[tuple[int, str, str | None]],
                      years: Sequence[int], meta: dict[str, StationMeta]) -> list[dict[str, Any]]:
    """City means withheld because every valid station lies outside the city boundary."""
    groups: dict[tuple[int, str, str | None], list[dict[str, Any]]] = {}
    for row in stations:
        if row["year"] in years:
            groups.setdefault((row["year"], row["variable"], row["data_point"]), []).append(row)
    out = []
    for (year, variable, data_point), members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if (year, variable, data_point) in observed or select_exposure_stations(members, meta).used:
            continue
        names = ", ".join(sorted(str(r["area_id"]) for r in members))
        out.append({"city_id": city_id, "year": year, "variable": variable, "data_point": data_point,
                    "area_type": "city", "area_id": city_id, "derivation": CITY_MEAN, "rule": "outside_boundary",
                    "reason": f"{data_point or variable} {year}: every station with a valid annual mean lies "
                              f"outside the city boundary: {names}",
                    "details": json.dumps([{"station_id": r["area_id"]} for r in members], sort_keys=True)})
    return out


def _store_withheld(con: duckdb.DuckDBPyConnection, city_id: str, rows: list[dict[str, Any]],
                    keys: Sequence[tuple[int, str, str | None]] | None = None) -> None:
    """Replace the city's withheld rows (all, or those of `keys`) with `rows`."""
    if keys is None:
        con.execute("DELETE FROM core_withheld WHERE city_id = ?", [city_id])
    else:
        for year, variable, data_point in keys:
            con.execute("""DELETE FROM core_withheld WHERE city_id = ? AND year = ? AND variable = ?
                           AND data_point IS NOT DISTINCT FROM ?""", [city_id, year, variable, data_point])
    if rows:
        frame = pl.DataFrame(rows, schema={"city_id": pl.String, "year": pl.Int32, "variable": pl.String,
                                           "data_point": pl.String, "area_type": pl.String, "area_id": pl.String,
                                           "derivation": pl.String, "rule": pl.String, "reason": pl.String,
                                           "details": pl.String}, orient="row")
        insert_frame(con, "core_withheld", frame)


def district_annual_means(con: duckdb.DuckDBPyConnection, city_id: str, stations: list[dict[str, Any]],
                          meta: dict[str, StationMeta] | None = None) -> list[dict[str, Any]]:
    """Per district, the mean of the exposure stations (`select_exposure_stations`) inside it; a district
    without one takes the nearest exposure station, measured in metres on the WGS84 ellipsoid (geodesic
    distance from the district's centroid), not in degrees (a degree of longitude is shorter than one of
    latitude away from the equator, so degrees pick the wrong station)."""
    from pyproj import Geod

    districts = con.execute("SELECT area_id, geometry_wkb FROM core_areas WHERE city_id = ? AND area_type = "
                            "'district' ORDER BY area_id", [city_id]).fetchall()
    meta = station_metadata(con, city_id) if meta is None else meta
    if not districts:
        return []
    geod = Geod(ellps="WGS84")
    centroids = {aid: shapely.from_wkb(wkb).centroid for aid, wkb in districts}
    groups: dict[tuple[int, str, str | None], list[dict[str, Any]]] = {}
    for row in stations:
        if row["area_id"] in meta and meta[row["area_id"]].lon is not None:
            groups.setdefault((row["year"], row["variable"], row["data_point"]), []).append(row)

    def metres(row: dict[str, Any], c: shapely.Point) -> float:
        m = meta[row["area_id"]]
        return float(geod.inv(c.x, c.y, m.lon, m.lat)[2])

    def per_district(used: list[dict[str, Any]], variable: str, derivation: str, rule: str, suffix: str,
                     year: int, data_point: str | None) -> list[dict[str, Any]]:
        rows = []
        for district_id, centroid in centroids.items():
            inside = [r for r in used if meta[r["area_id"]].district_id == district_id]
            if inside:
                value = sum(r["value"] for r in inside) / len(inside)
                record = (f"mean of station(s) {', '.join(sorted(r['area_id'] for r in inside))} in the district "
                          f"({rule}){suffix}")
            else:
                nearest = min(used, key=lambda r: (metres(r, centroid), str(r["area_id"])))
                value = nearest["value"]
                record = (f"no station in the district; nearest station {nearest['area_id']}, "
                          f"{metres(nearest, centroid):.0f} m (geodesic) from its centroid ({rule}){suffix}")
            rows.append(_obs(city_id, year, variable, value, data_point=data_point, area_type="district",
                             area_id=district_id, derivation=derivation, source_record=record))
        return rows

    out = []
    for (year, variable, data_point), members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        selection = select_exposure_stations(members, meta)
        if variable == _AIR:  # beside the exposure value: every station inside the city (11.6.2's labelled variant)
            every = [r for r in members if meta[r["area_id"]].inside is not False]
            if every:
                outside = sorted(k for k, v in selection.excluded.items() if v == "outside the city boundary")
                left_out = "; excluded: " + ", ".join(f"{k} (outside the city boundary)" for k in outside)
                out += per_district(every, _AIR_ALL, DISTRICT_MEAN_ALL, "every station type inside the city, "
                                    f"not only the exposure stations of {_AIR}", left_out if outside else "",
                                    year, data_point)
        if selection.used:
            out += per_district(selection.used, variable, DISTRICT_MEAN, selection.note, _selection_text(selection),
                                year, data_point)
    return out


def polygon_areas(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int]) -> list[dict[str, Any]]:
    out = []
    rows = con.execute("""SELECT area_type, area_id, area_ha, snapshot_id, source_id FROM core_areas
                          WHERE city_id = ? ORDER BY area_type, area_id""", [city_id]).fetchall()
    districts = [r for r in rows if r[0] == "district"]
    green = [r for r in rows if r[0] == "green_area"]
    green_ha, overlap_ha = green_union_ha(con, city_id) if green else (0.0, 0.0)
    for year in years:
        for _, area_id, area_ha, snapshot_id, source_id in districts:
            out.append(_obs(city_id, year, "area_ha", area_ha, area_type="district", area_id=area_id,
                            derivation=DISTRICT_AREA, snapshot_id=snapshot_id, source_id=source_id,
                            source_record=f"geodesic area of polygon {area_id} (snapshot {snapshot_id}; "
                                          f"geometry assumed valid for {year})"))
        if districts:  # the districts partition the city: its area is theirs (used only when none is published)
            snapshots = ", ".join(sorted({r[3] for r in districts}))
            out.append(_obs(city_id, year, "area_ha", sum(r[2] for r in districts), area_type="city",
                            area_id=city_id, derivation=DISTRICT_AREA, source_id=districts[0][4],
                            source_record=f"sum of geodesic areas of {len(districts)} district polygons "
                                          f"(snapshot {snapshots}; assumed valid for {year})"))
        if green:
            snapshots = ", ".join(sorted({r[3] for r in green}))
            overlap = f", overlaps of {overlap_ha:.2f} ha counted once" if overlap_ha > 0.005 else ""
            out.append(_obs(city_id, year, "green_area_ha", green_ha, area_type="city",
                            area_id=city_id, derivation=GREEN_AREA, source_id=green[0][4],
                            source_record=f"geodesic area of the union of {len(green)} green-area polygons"
                                          f"{overlap} (snapshot {snapshots}; assumed valid for {year})"))
    return out


def green_union_ha(con: duckdb.DuckDBPyConnection, city_id: str) -> tuple[float, float]:
    """(geodesic area of the union of the city's green-area polygons, the overlap it removed), in ha: a
    park mapped twice (or a garden inside a park) is green once, as 11.7.1 already counts it."""
    from sources.parsers.geo import geodesic_area_ha

    rows = con.execute("SELECT geometry_wkb, area_ha FROM core_areas WHERE city_id = ? AND area_type = 'green_area' "
                       "ORDER BY area_id", [city_id]).fetchall()
    union = shapely.union_all([shapely.make_valid(shapely.from_wkb(wkb)) for wkb, _ in rows])
    area = geodesic_area_ha(union)
    return area, max(0.0, sum(r[1] for r in rows) - area)


def transit_stop_counts(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int]) -> list[dict[str, Any]]:
    """Served stops and stations as travellers see them (EC:ICT:T:1C's denominator, CM p34: "stops and
    stations"): the platform-level GTFS stops (location_type 0) with weekday departures, each counted
    once per station: stops sharing a `parent_station` are one station, a stop without one is itself."""
    row = one_row(con, """SELECT count(DISTINCT coalesce(parent_station, 'stop:' || stop_id)), count(*),
                                 count(DISTINCT parent_station), any_value(snapshot_id), any_value(source_id),
                                 max(service_date)
                          FROM core_transit_stops WHERE city_id = ? AND location_type = 0 AND departures > 0""",
                  [city_id])
    if row is None or not row[1]:
        return []
    count, platforms, stations = int(row[0]), int(row[1]), int(row[2])  # type: ignore[call-overload]
    snapshot_id, source_id = str(row[3]), str(row[4])
    day = f" on {row[5]}" if row[5] is not None else ""
    grouped = (f" ({platforms} platform-level stops, those of {stations} parent stations counted once each)"
               if stations else "")
    return [_obs(city_id, year, "transit_stops_total", float(count), area_type="city", area_id=city_id,
                 derivation=TRANSIT_STOPS, snapshot_id=snapshot_id, source_id=source_id,
                 source_record=f"{count} GTFS stops and stations with weekday departures{day}{grouped} "
                               f"(snapshot {snapshot_id}; feed assumed valid for {year})")
            for year in years]


@dataclass(frozen=True)
class Validity:
    """The days a spatial source's data describe (None = open end) and whether it may be used outside."""

    source_id: str
    valid_from: date | None
    valid_to: date | None
    basis: str
    assume_valid: bool

    def covers(self, year: int) -> bool:
        return ((self.valid_from is None or self.valid_from <= date(year, 12, 31))
                and (self.valid_to is None or self.valid_to >= date(year, 1, 1)))

    def span(self) -> str:
        return f"{self.valid_from or '…'} to {self.valid_to or '…'} ({self.basis})"


def source_validities(con: duckdb.DuckDBPyConnection, city_id: str) -> dict[str, Validity]:
    """Spatial sources whose validity is known (declared, or from a GTFS feed's dates)."""
    return {sid: Validity(sid, start, end, basis or "", bool(assume)) for sid, start, end, basis, assume in con.execute(
        """SELECT source_id, valid_from, valid_to, validity_basis, assume_valid FROM core_source_state
           WHERE city_id = ? AND (valid_from IS NOT NULL OR valid_to IS NOT NULL) ORDER BY source_id""",
        [city_id]).fetchall()}


def _spatial_inputs(con: duckdb.DuckDBPyConnection, city_id: str) -> dict[str, set[str]]:
    """Which sources a spatial derivation reads, by the kind of layer: transit stops, green areas."""
    transit = {r[0] for r in con.execute(
        """SELECT DISTINCT source_id FROM core_transit_stops WHERE city_id = $city
           UNION SELECT DISTINCT source_id FROM core_points WHERE city_id = $city
                 AND starts_with(point_type, 'transit_stop:')""", {"city": city_id}).fetchall()}
    green = {r[0] for r in con.execute("SELECT DISTINCT source_id FROM core_areas WHERE city_id = ? AND "
                                       "area_type = 'green_area'", [city_id]).fetchall()}
    return {"transit": transit, "green": green}


def _row_sources(row: dict[str, Any], layers: dict[str, set[str]]) -> set[str]:
    name = str(row["derivation"]).split("@", 1)[0]
    found = {row["source_id"]} if row["source_id"] != "derived" else set()
    if "transit" in name:
        found |= layers["transit"]
    if "green" in name or "open_public_space" in name or row["variable"] == "green_area_ha":
        found |= layers["green"]
    return found


def apply_validity(con: duckdb.DuckDBPyConnection, city_id: str, rows: list[dict[str, Any]]
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows kept, core_withheld rows) of year-less spatial derivations: a value of a reporting year
    outside the validity of a source it reads is withheld (rule `validity`, the KPI row names it), or
    kept with `assumed_valid` in its record when the source opts in (`assume_valid: true`). Sources of
    unknown validity are used for every year, as their records say."""
    validities = source_validities(con, city_id)
    if not validities:
        return rows, []
    layers = _spatial_inputs(con, city_id)
    kept, withheld = [], []
    for row in rows:
        outside = [validities[s] for s in sorted(_row_sources(row, layers))
                   if s in validities and not validities[s].covers(row["year"])]
        if not outside:
            kept.append(row)
        elif all(v.assume_valid for v in outside):
            notes = "; ".join(f"assumed_valid: {v.source_id} describes {v.span()}, not {row['year']}" for v in outside)
            kept.append({**row, "source_record": f"{row['source_record']}; {notes}"})
        else:
            label = row["variable"] + (f"[{row['data_point']}]" if row["data_point"] else "")
            reason = (f"{label} {row['year']}: " + "; ".join(
                f"source {v.source_id} describes {v.span()}, not {row['year']}" for v in outside if not v.assume_valid)
                + " (set assume_valid: true on the source to use it for other years)")
            withheld.append({"city_id": city_id, "year": row["year"], "variable": row["variable"],
                             "data_point": row["data_point"], "area_type": row["area_type"],
                             "area_id": row["area_id"], "derivation": row["derivation"], "rule": "validity",
                             "reason": reason, "details": json.dumps(
                                 [{"source_id": v.source_id, "valid_from": str(v.valid_from),
                                   "valid_to": str(v.valid_to), "basis": v.basis} for v in outside],
                                 sort_keys=True)})
    return kept, withheld


AIR_DERIVATIONS = (STATION_MEAN, CITY_MEAN, CITY_MEAN_ALL, DISTRICT_MEAN, DISTRICT_MEAN_ALL)
# Bump with any derivation's version (or when derive_city's composition changes): every city is then
# derived again on its next load.
DERIVE_VERSION = 7  # 2: withheld city annual means recorded in core_withheld; 3: city area from districts;
# 4: exposure stations (types, boundary, metres), daily samplers, green area as a union (issue #15);
# 5: walking distance along a street network, 11.7.1 open space plus street area (issue #15);
# 6: straight-line access beside the network's, all-station city means, the city's coverage rule (issue #15)
# 7: all-station district means (11.6.2's labelled variant)


def derive_fingerprint(years: Sequence[int], rules: AirRules = AirRules()) -> str:
    return hashlib.sha256(json.dumps({"version": DERIVE_VERSION, "years": sorted(years),
                                      "air": AIR_DERIVATIONS, "min_coverage": rules.min_coverage}).encode()
                          ).hexdigest()


def derive_is_current(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int],
                      rules: AirRules = AirRules()) -> bool:
    """The city's derived observations were computed for these reporting years and rules by this code version."""
    stored = scalar(con, "SELECT fingerprint FROM core_derive_state WHERE city_id = ?", [city_id])
    return stored == derive_fingerprint(years, rules)


def _observed_city_values(con: duckdb.DuckDBPyConnection, city_id: str) -> set[tuple[int, str, str | None]]:
    """City values published by a source: a derivation never overrides them."""
    return {(y, v, dp) for y, v, dp in con.execute(
        "SELECT year, variable, data_point FROM observations WHERE city_id = ? AND area_type = 'city' "
        "AND derivation IS NULL", [city_id]).fetchall()}


def derive_city(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int], *,
                spatial: SpatialDerivation, rebuild_readings: bool = False,
                rules: AirRules = AirRules(), groups_verified: bool = False) -> dict[str, Any]:
    """Recompute every derived observation of a city (inside the caller's transaction).

    Readings enter through their group aggregates (core_readings_groups), which the loader keeps
    exact; `rebuild_readings` recomputes them from the hourly rows first (one scan: a full rebuild
    from the core tables). Aggregates that do not match the rows (written around the loader) are
    rebuilt either way, unless the caller has just made sure they match (`groups_verified`)."""
    if rebuild_readings or (not groups_verified and not readings_groups_current(con, city_id)):
        rebuild_readings_groups(con, city_id)
    con.execute("DELETE FROM observations WHERE city_id = ? AND derivation IS NOT NULL", [city_id])
    assign_points_to_districts(con, city_id)
    observed = _observed_city_values(con, city_id)
    areas = polygon_areas(con, city_id, years)
    transit = [r for r in transit_stop_counts(con, city_id, years)
               if (r["year"], r["variable"], None) not in observed]
    areas = [r for r in areas if r["area_type"] != "city" or (r["year"], r["variable"], None) not in observed]
    areas, invalid_areas = apply_validity(con, city_id, areas + transit)
    insert_frame(con, "observations", _frame(areas))
    rollup = district_rollup(con, city_id)
    stations, rejected = station_means_from_groups(con, city_id, rules=rules)
    meta = station_metadata(con, city_id)
    city_air = city_annual_means(city_id, stations, observed, meta)
    withheld = withheld_city_means(city_id, stations, rejected, observed, years, meta, rules)
    district_air = district_annual_means(con, city_id, stations, meta)
    insert_frame(con, "observations", _frame(rollup + stations + city_air + district_air))
    spatial_rows, invalid_spatial = apply_validity(con, city_id, spatial(con, city_id, years))
    _store_withheld(con, city_id, withheld + invalid_areas + invalid_spatial)
    insert_frame(con, "observations", _frame(spatial_rows))
    _record_derived(con, city_id, years, rules)
    return {
        "mode": "full", "min_coverage": rules.min_coverage, "district_rollup": len(rollup),
        "station_annual_means": len(stations),
        "station_years_rejected_low_coverage": rejected, "city_annual_means": len(city_air),
        "city_annual_means_withheld": [w["reason"] for w in withheld],
        "district_annual_means": len(district_air), "polygon_areas": len(areas), "transit_stops": len(transit),
        "air_stations_excluded": air_exclusions(stations, meta),
        "withheld_outside_validity": sorted({w["reason"] for w in invalid_areas + invalid_spatial}),
        "spatial": len(spatial_rows),
    }


def air_exclusions(stations: list[dict[str, Any]], meta: dict[str, StationMeta]) -> dict[str, str]:
    """Stations left out of the city's exposure means, with the reason (for the derivation report)."""
    out: dict[str, str] = {}
    groups: dict[tuple[int, str, str | None], list[dict[str, Any]]] = {}
    for row in stations:
        groups.setdefault((row["year"], row["variable"], row["data_point"]), []).append(row)
    for members in groups.values():
        out.update(select_exposure_stations(members, meta).excluded)
    return dict(sorted(out.items()))


def readings_groups_current(con: duckdb.DuckDBPyConnection, city_id: str) -> bool:
    """core_readings_groups covers exactly the city's readings (row counts: metadata and zone maps, no scan)."""
    row = one_row(con, """SELECT (SELECT coalesce(sum(n), 0) FROM core_readings_groups WHERE city_id = $city),
                                 (SELECT count(*) FROM core_readings WHERE city_id = $city)""", {"city": city_id})
    return row is not None and row[0] == row[1]


def _record_derived(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int], rules: AirRules) -> None:
    con.execute("INSERT OR REPLACE INTO core_derive_state (city_id, fingerprint, derived_at) VALUES (?, ?, now())",
                [city_id, derive_fingerprint(years, rules)])


def derive_air(con: duckdb.DuckDBPyConnection, city_id: str, keys: Iterable[tuple[int, str, str | None]],
               years: Sequence[int] = (), rules: AirRules = AirRules()) -> dict[str, Any]:
    """Recompute the station, city and district annual means of the (year, variable, data point) keys
    whose readings changed, from the group aggregates; other rows stay. Rows equal to the stored ones
    are not rewritten. The same functions as derive_city, so the rows equal a full rebuild's."""
    wanted = sorted(set(keys), key=str)
    stations, rejected = station_means_from_groups(con, city_id, wanted, rules)
    observed = _observed_city_values(con, city_id)
    meta = station_metadata(con, city_id)
    city_air = city_annual_means(city_id, stations, observed, meta)
    withheld = withheld_city_means(city_id, stations, rejected, observed, years, meta, rules)
    _store_withheld(con, city_id, withheld, wanted)
    district_air = district_annual_means(con, city_id, stations, meta)
    fresh = _frame(stations + city_air + district_air)
    # the all-station means of the same keys are rows of their own variable
    rows_keys = wanted + [(y, _AIR_ALL, dp) for y, v, dp in wanted if v == _AIR]
    keys_frame = pl.DataFrame({"year": [k[0] for k in rows_keys], "variable": [k[1] for k in rows_keys],
                               "data_point": [k[2] for k in rows_keys]},
                              schema={"year": pl.Int32, "variable": pl.String, "data_point": pl.String})
    con.register("_air_keys", keys_frame.to_arrow())
    try:
        match = """o.city_id = ? AND list_contains(?, o.derivation) AND EXISTS (
                       SELECT 1 FROM _air_keys k WHERE k.year = o.year AND k.variable = o.variable
                       AND k.data_point IS NOT DISTINCT FROM o.data_point)"""
        columns = ", ".join(f"o.{c}" for c in OBSERVATION_SCHEMA)
        stored = frame_of(con, f"SELECT {columns} FROM observations o WHERE {match}",
                           [city_id, list(AIR_DERIVATIONS)])
        order = ["derivation", "year", "variable", "data_point", "area_type", "area_id"]
        stored = stored.cast(pl.Schema(OBSERVATION_SCHEMA))
        same = stored.height == fresh.height and stored.sort(order, nulls_last=True).equals(
            fresh.sort(order, nulls_last=True))
        if not same:
            con.execute(f"DELETE FROM observations o WHERE {match}", [city_id, list(AIR_DERIVATIONS)])
            insert_frame(con, "observations", fresh)
    finally:
        con.unregister("_air_keys")
    return {"mode": "readings", "keys": [list(k) for k in wanted], "rows_rewritten": 0 if same else fresh.height,
            "station_annual_means": len(stations),
            "station_years_rejected_low_coverage": rejected, "city_annual_means": len(city_air),
            "city_annual_means_withheld": [w["reason"] for w in withheld],
            "district_annual_means": len(district_air)}


def refresh_derived(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int], change: LoadChange,
                    rules: AirRules = AirRules(), *, spatial: SpatialDerivation) -> dict[str, Any]:
    """Derive again what a load's changes touch (inside its transaction).

    A replaced small source (statistics, areas, points, stops) or a replaced readings source, or other
    reporting years or derivation versions: every derivation, in derive_city's order (they read each
    other's rows), with the readings from their aggregates (no scan of the hourly table). Appended
    readings only: the annual means of the (year, variable, data point) keys that got rows. Nothing
    changed: nothing."""
    if (change.other_sources_changed or change.readings_replaced
            or not derive_is_current(con, city_id, years, rules)):
        # The load left every readings source's aggregates equal to its rows, except after an append:
        # a replaced source was regrouped from its rows, an unchanged one compared with them by
        # `plan_load` (`mismatched_groups`, regrouped when they differ). An append checks only its own rows.
        return derive_city(con, city_id, years, spatial=spatial, rules=rules,
                           groups_verified=not change.readings_appended)
    if change.touched:
        return derive_air(con, city_id, change.touched, years, rules)
    return {"mode": "none"}


def observation_digest(con: duckdb.DuckDBPyConnection, city_id: str) -> dict[int, int]:
    """Per year, a hash of the city's observations (marks excluded): which years a load changed."""
    columns = ", ".join(c for c in OBSERVATION_SCHEMA if c not in ("city_id", "year"))
    digest = {int(year): int(h) for year, h in con.execute(
        f"SELECT year, sum(hash({columns})) FROM observations WHERE city_id = ? GROUP BY year", [city_id]).fetchall()}
    # A withheld value's reason is in the KPI rows too: a changed reason changes its year.
    for year, h in con.execute("""SELECT year, sum(hash(variable, data_point, area_type, area_id, reason))
                                  FROM core_withheld WHERE city_id = ? GROUP BY year""", [city_id]).fetchall():
        digest[int(year)] = digest.get(int(year), 0) ^ int(h)
    return digest
