"""Derived observations: what KPIs need but sources do not publish directly.

Each derivation is a named, versioned function of core tables; its rows carry
`derivation = '<name>@<version>'` and a `source_record` describing the inputs. All derived rows of
a city are replaced together (call inside a transaction).

- district_rollup@1: city totals of additive variables from complete district values
- station_annual_mean@1: annual mean per station and pollutant from hourly readings (>= 75 % of
  hours present, the usual validity rule for annual means)
- city_annual_mean@1: city mean of the valid station annual means
- district_annual_mean@1: per district, mean of its stations; else the nearest station's value
- polygon_area@1: district areas and total green area from polygons (year-less, applied to every
  reporting year; the record says which snapshot)
- transit_stops@1: served public-transport stops (GTFS location_type 0 with departures)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import polars as pl
import shapely
from shapely import STRtree

from sources.mapping import OBSERVATION_SCHEMA
from warehouse.db import one_row
from warehouse.derive_spatial import derive_spatial
from warehouse.load import insert_frame
from warehouse.variables import VARIABLES

MIN_COVERAGE = 0.75
_AIR = "air_concentration_ugm3"


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
                        area_id=city_id, derivation="district_rollup@1",
                        source_record=f"sum of {n} district values from {sources}"))
    return out


def station_annual_means(con: duckdb.DuckDBPyConnection, city_id: str) -> tuple[list[dict[str, Any]],
                                                                               list[dict[str, Any]]]:
    """(valid station-year means, rejected station-years with their coverage)."""
    # Determinism without a sort: a parallel avg() over DOUBLE adds in thread order and differs in the
    # last bits from run to run. Summing the values as DECIMAL(38, 12) is exact integer arithmetic
    # (HUGEINT underneath), so the sum is the same in any order and the mean is the same bytes every
    # run, for one cast per row. (The former `avg(value ORDER BY observed_at, value)` sorted every
    # group: ~74 s and 13.9 GB at 100M readings.) 12 decimals are far below any published precision;
    # sums up to 1e26 fit. A group with a NaN, an infinity or an absurd |value| >= 1e18 (which the
    # DECIMAL cast would reject) falls back to avg(): NaN/inf means do not depend on the order.
    # Year and hour come from the UTC epoch as a plain TIMESTAMP (`AT TIME ZONE` and date_trunc on
    # TIMESTAMPTZ go through ICU per row), and the distinct hours of a group are counted as a bitmap
    # over the hour of the year instead of a hash set per group (as the readings quality suite does).
    rows = con.execute("""
        WITH r AS (SELECT *, make_timestamp(epoch_us(observed_at)) AS ts FROM core_readings WHERE city_id = ?)
        SELECT year(ts) AS year, station_id, variable, data_point,
               CASE WHEN bool_and(abs(value) < 1e18)
                    THEN CAST(sum(CAST(CASE WHEN abs(value) < 1e18 THEN value ELSE 0 END AS DECIMAL(38, 12)))
                              AS DOUBLE) / count(*)
                    ELSE avg(value) END AS mean,
               bit_count(bitstring_agg((dayofyear(ts) - 1) * 24 + hour(ts), 0, 8783)) AS hours,
               any_value(snapshot_id) AS snapshot_id, any_value(source_id) AS source_id
        FROM r
        GROUP BY ALL ORDER BY ALL""", [city_id]).fetchall()
    valid, rejected = [], []
    for year, station, variable, data_point, mean, hours, snapshot_id, source_id in rows:
        hours_in_year = 8784 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 8760
        coverage = hours / hours_in_year
        record = (f"mean of {hours} hourly readings ({coverage:.1%} of the year) from {source_id}")
        if coverage < MIN_COVERAGE:
            rejected.append({"station_id": station, "year": year, "data_point": data_point,
                             "coverage": round(coverage, 4)})
            continue
        valid.append(_obs(city_id, year, variable, mean, data_point=data_point, area_type="station",
                          area_id=station, derivation="station_annual_mean@1", source_record=record,
                          snapshot_id=snapshot_id, source_id=source_id))
    return valid, rejected


def city_annual_means(city_id: str, stations: list[dict[str, Any]], observed: set[tuple[int, str, str | None]]
                      ) -> list[dict[str, Any]]:
    groups: dict[tuple[int, str, str | None], list[dict[str, Any]]] = {}
    for row in stations:
        groups.setdefault((row["year"], row["variable"], row["data_point"]), []).append(row)
    out = []
    for (year, variable, data_point), members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if (year, variable, data_point) in observed:
            continue
        mean = sum(r["value"] for r in members) / len(members)
        names = ", ".join(sorted(r["area_id"] for r in members))
        out.append(_obs(city_id, year, variable, mean, data_point=data_point, area_type="city", area_id=city_id,
                        derivation="city_annual_mean@1",
                        source_record=f"mean of {len(members)} station annual means ({names})"))
    return out


def district_annual_means(con: duckdb.DuckDBPyConnection, city_id: str, stations: list[dict[str, Any]]
                          ) -> list[dict[str, Any]]:
    districts = con.execute("SELECT area_id, geometry_wkb FROM core_areas WHERE city_id = ? AND area_type = "
                            "'district' ORDER BY area_id", [city_id]).fetchall()
    located = {pid: (lon, lat, district) for pid, lon, lat, district in con.execute(
        "SELECT point_id, lon, lat, district_id FROM core_points WHERE city_id = ?", [city_id]).fetchall()}
    if not districts:
        return []
    centroids = {aid: shapely.from_wkb(wkb).centroid for aid, wkb in districts}
    groups: dict[tuple[int, str, str | None], list[dict[str, Any]]] = {}
    for row in stations:
        if row["area_id"] in located:
            groups.setdefault((row["year"], row["variable"], row["data_point"]), []).append(row)
    out = []
    for (year, variable, data_point), members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        for district_id, centroid in centroids.items():
            inside = [r for r in members if located[r["area_id"]][2] == district_id]
            if inside:
                value = sum(r["value"] for r in inside) / len(inside)
                record = f"mean of station(s) {', '.join(sorted(r['area_id'] for r in inside))} in the district"
            else:
                nearest = min(members, key=lambda r: centroid.distance(
                    shapely.Point(located[r["area_id"]][0], located[r["area_id"]][1])))
                value = nearest["value"]
                record = f"no station in the district; nearest station {nearest['area_id']} to its centroid"
            out.append(_obs(city_id, year, variable, value, data_point=data_point, area_type="district",
                            area_id=district_id, derivation="district_annual_mean@1", source_record=record))
    return out


def polygon_areas(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int]) -> list[dict[str, Any]]:
    out = []
    rows = con.execute("""SELECT area_type, area_id, area_ha, snapshot_id, source_id FROM core_areas
                          WHERE city_id = ? ORDER BY area_type, area_id""", [city_id]).fetchall()
    districts = [r for r in rows if r[0] == "district"]
    green = [r for r in rows if r[0] == "green_area"]
    for year in years:
        for _, area_id, area_ha, snapshot_id, source_id in districts:
            out.append(_obs(city_id, year, "area_ha", area_ha, area_type="district", area_id=area_id,
                            derivation="polygon_area@1", snapshot_id=snapshot_id, source_id=source_id,
                            source_record=f"geodesic area of polygon {area_id} (snapshot {snapshot_id}; "
                                          f"geometry assumed valid for {year})"))
        if green:
            snapshots = ", ".join(sorted({r[3] for r in green}))
            out.append(_obs(city_id, year, "green_area_ha", sum(r[2] for r in green), area_type="city",
                            area_id=city_id, derivation="polygon_area@1", source_id=green[0][4],
                            source_record=f"sum of geodesic areas of {len(green)} green-area polygons "
                                          f"(snapshot {snapshots}; assumed valid for {year})"))
    return out


def transit_stop_counts(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int]) -> list[dict[str, Any]]:
    row = one_row(con, """SELECT count(*), any_value(snapshot_id), any_value(source_id) FROM core_transit_stops
                         WHERE city_id = ? AND location_type = 0 AND departures > 0""", [city_id])
    if row is None or not row[0]:
        return []
    count, snapshot_id, source_id = int(row[0]), str(row[1]), str(row[2])  # type: ignore[call-overload]
    return [_obs(city_id, year, "transit_stops_total", float(count), area_type="city", area_id=city_id,
                 derivation="transit_stops@1", snapshot_id=snapshot_id, source_id=source_id,
                 source_record=f"{count} GTFS stops with weekday departures (snapshot {snapshot_id}; "
                               f"feed assumed valid for {year})")
            for year in years]


def derive_city(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int]) -> dict[str, Any]:
    """Recompute every derived observation of a city (inside the caller's transaction)."""
    con.execute("DELETE FROM observations WHERE city_id = ? AND derivation IS NOT NULL", [city_id])
    assign_points_to_districts(con, city_id)
    observed = {(y, v, dp) for y, v, dp in con.execute(
        "SELECT year, variable, data_point FROM observations WHERE city_id = ? AND area_type = 'city'",
        [city_id]).fetchall()}
    areas = polygon_areas(con, city_id, years)
    transit = [r for r in transit_stop_counts(con, city_id, years)
               if (r["year"], r["variable"], None) not in observed]
    areas = [r for r in areas if r["area_type"] != "city" or (r["year"], r["variable"], None) not in observed]
    insert_frame(con, "observations", _frame(areas + transit))
    rollup = district_rollup(con, city_id)
    stations, rejected = station_annual_means(con, city_id)
    city_air = city_annual_means(city_id, stations, observed)
    district_air = district_annual_means(con, city_id, stations)
    insert_frame(con, "observations", _frame(rollup + stations + city_air + district_air))
    spatial = derive_spatial(con, city_id, years)
    insert_frame(con, "observations", _frame(spatial))
    return {
        "district_rollup": len(rollup), "station_annual_means": len(stations),
        "station_years_rejected_low_coverage": rejected, "city_annual_means": len(city_air),
        "district_annual_means": len(district_air), "polygon_areas": len(areas), "transit_stops": len(transit),
        "spatial": len(spatial),
    }
