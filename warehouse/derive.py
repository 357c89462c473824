"""Derived observations: what KPIs need but sources do not publish directly.

Each derivation is a named, versioned function of core tables; its rows carry
`derivation = '<name>@<version>'` and a `source_record` describing the inputs. `derive_city` replaces
all derived rows of a city together; `refresh_derived` (what a load calls) re-derives only what the
load touched: after appended readings, the annual means of the (year, variable, data point) keys that
got rows (`derive_air`); after any other change, everything. Readings enter through the loader's
exact aggregates (core_readings_groups), so no derivation rescans the hourly table. Call inside a
transaction.

- district_rollup@1: city totals of additive variables from complete district values
- station_annual_mean@1: annual mean per station and pollutant from hourly readings (>= 75 % of
  hours present, the usual validity rule for annual means)
- city_annual_mean@1: city mean of the valid station annual means; when no station of a year,
  variable and data point is valid, the key is recorded in `core_withheld` (migration 0006) with the
  rule, the stations and their coverage, and the KPI engine names that reason in the missing row
- district_annual_mean@1: per district, mean of its stations; else the nearest station's value
- polygon_area@1: district areas and total green area from polygons (year-less, applied to every
  reporting year; the record says which snapshot)
- transit_stops@1: served public-transport stops (GTFS location_type 0 with departures)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

import duckdb
import polars as pl
import shapely
from shapely import STRtree

from sources.mapping import OBSERVATION_SCHEMA
from warehouse.db import one_row, scalar
from warehouse.derive_spatial import derive_spatial
from warehouse.load import MEAN_AGGREGATES, LoadChange, frame_of, insert_frame, rebuild_readings_groups
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


def _group_means(con: duckdb.DuckDBPyConnection, city_id: str, groups_sql: str, params: dict[str, Any]
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
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
               bit_count(bit_or(g.hours)) AS hours, min(g.source_id) AS source_id
        FROM g GROUP BY ALL ORDER BY ALL""", params).fetchall()
    snapshots = dict(con.execute("SELECT source_id, snapshot_id FROM core_source_state WHERE city_id = ?",
                                 [city_id]).fetchall())
    valid, rejected = [], []
    for year, station, variable, data_point, mean, hours, source_id in rows:
        hours_in_year = 8784 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 8760
        coverage = hours / hours_in_year
        record = (f"mean of {hours} hourly readings ({coverage:.1%} of the year) from {source_id}")
        if coverage < MIN_COVERAGE:
            rejected.append({"station_id": station, "year": year, "variable": variable, "data_point": data_point,
                             "hours": int(hours), "hours_in_year": hours_in_year, "coverage": round(coverage, 4)})
            continue
        if mean is None:
            mean = _inexact_mean(con, city_id, year, station, variable, data_point)
        valid.append(_obs(city_id, year, variable, mean, data_point=data_point, area_type="station",
                          area_id=station, derivation="station_annual_mean@1", source_record=record,
                          snapshot_id=snapshots.get(source_id), source_id=source_id))
    return valid, rejected


def _inexact_mean(con: duckdb.DuckDBPyConnection, city_id: str, year: int, station: str, variable: str,
                  data_point: str | None) -> float:
    row = one_row(con, """SELECT avg(value) FROM core_readings WHERE city_id = ? AND station_id = ? AND variable = ?
                          AND data_point IS NOT DISTINCT FROM ? AND year(make_timestamp(epoch_us(observed_at))) = ?""",
                  [city_id, station, variable, data_point, year])
    return float(row[0]) if row and row[0] is not None else float("nan")  # type: ignore[arg-type]


def station_annual_means(con: duckdb.DuckDBPyConnection, city_id: str) -> tuple[list[dict[str, Any]],
                                                                               list[dict[str, Any]]]:
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
    return _group_means(con, city_id, groups, {"city": city_id})


def station_means_from_groups(con: duckdb.DuckDBPyConnection, city_id: str,
                              keys: Iterable[tuple[int, str, str | None]] | None = None
                              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Station annual means from core_readings_groups, of every (year, variable, data point) or of `keys`."""
    if keys is None:
        return _group_means(con, city_id, "SELECT * FROM core_readings_groups WHERE city_id = $city",
                            {"city": city_id})
    wanted = sorted(set(keys), key=str)
    return _group_means(con, city_id, """
        SELECT g.* FROM core_readings_groups g JOIN (SELECT unnest($years) AS year, unnest($variables) AS variable,
                                                            unnest($points) AS data_point) k
          ON g.year = k.year AND g.variable = k.variable AND g.data_point IS NOT DISTINCT FROM k.data_point
        WHERE g.city_id = $city""", {"city": city_id, "years": [k[0] for k in wanted],
                                     "variables": [k[1] for k in wanted], "points": [k[2] for k in wanted]})


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


WITHHELD_COLUMNS = ("city_id", "year", "variable", "data_point", "area_type", "area_id", "derivation", "rule",
                    "reason", "details")


def _percent(share: float) -> str:
    return f"{100 * share:.1f}"


def withheld_city_means(city_id: str, stations: list[dict[str, Any]], rejected: list[dict[str, Any]],
                        observed: set[tuple[int, str, str | None]], years: Sequence[int]) -> list[dict[str, Any]]:
    """City annual means of the reporting `years` withheld because no station of the (year, variable,
    data point) has enough hours: one row per key naming the rule, the stations and their coverage
    (core_withheld, migration 0006)."""
    valid = {(r["year"], r["variable"], r["data_point"]) for r in stations}
    groups: dict[tuple[int, str, str | None], list[dict[str, Any]]] = {}
    for row in rejected:
        if row["year"] in years:
            groups.setdefault((row["year"], row["variable"], row["data_point"]), []).append(row)
    out = []
    for (year, variable, data_point), members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if (year, variable, data_point) in valid or (year, variable, data_point) in observed:
            continue
        members.sort(key=lambda r: (r["coverage"], str(r["station_id"])))
        shares = [r["hours"] / r["hours_in_year"] for r in members]
        low, high = _percent(min(shares)), _percent(max(shares))
        span = f"{low} %" if low == high else f"{low}–{high} %"
        names = ", ".join(sorted((str(r["station_id"]) for r in members), key=lambda s: (len(s), s)))
        label = data_point or variable
        reason = (f"{label} {year}: {len(members)} station(s) below {100 * MIN_COVERAGE:g} % of the year's "
                  f"hours ({span}), the least an annual mean needs: {names}")
        details = [{"station_id": r["station_id"], "hours": r["hours"], "hours_in_year": r["hours_in_year"]}
                   for r in members]
        out.append({"city_id": city_id, "year": year, "variable": variable, "data_point": data_point,
                    "area_type": "city", "area_id": city_id, "derivation": "city_annual_mean@1",
                    "rule": "min_coverage", "reason": reason, "details": json.dumps(details, sort_keys=True)})
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
        if districts:  # the districts partition the city: its area is theirs (used only when none is published)
            snapshots = ", ".join(sorted({r[3] for r in districts}))
            out.append(_obs(city_id, year, "area_ha", sum(r[2] for r in districts), area_type="city",
                            area_id=city_id, derivation="polygon_area@1", source_id=districts[0][4],
                            source_record=f"sum of geodesic areas of {len(districts)} district polygons "
                                          f"(snapshot {snapshots}; assumed valid for {year})"))
        if green:
            snapshots = ", ".join(sorted({r[3] for r in green}))
            out.append(_obs(city_id, year, "green_area_ha", sum(r[2] for r in green), area_type="city",
                            area_id=city_id, derivation="polygon_area@1", source_id=green[0][4],
                            source_record=f"sum of geodesic areas of {len(green)} green-area polygons "
                                          f"(snapshot {snapshots}; assumed valid for {year})"))
    return out


def transit_stop_counts(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int]) -> list[dict[str, Any]]:
    row = one_row(con, """SELECT count(*), any_value(snapshot_id), any_value(source_id), max(service_date)
                          FROM core_transit_stops WHERE city_id = ? AND location_type = 0 AND departures > 0""",
                  [city_id])
    if row is None or not row[0]:
        return []
    count, snapshot_id, source_id = int(row[0]), str(row[1]), str(row[2])  # type: ignore[call-overload]
    day = f" on {row[3]}" if row[3] is not None else ""
    return [_obs(city_id, year, "transit_stops_total", float(count), area_type="city", area_id=city_id,
                 derivation="transit_stops@1", snapshot_id=snapshot_id, source_id=source_id,
                 source_record=f"{count} GTFS stops with weekday departures{day} (snapshot {snapshot_id}; "
                               f"feed assumed valid for {year})")
            for year in years]


AIR_DERIVATIONS = ("station_annual_mean@1", "city_annual_mean@1", "district_annual_mean@1")
# Bump with any derivation's version (or when derive_city's composition changes): every city is then
# derived again on its next load.
DERIVE_VERSION = 3  # 2: withheld city annual means recorded in core_withheld; 3: city area from districts


def derive_fingerprint(years: Sequence[int]) -> str:
    return hashlib.sha256(json.dumps({"version": DERIVE_VERSION, "years": sorted(years),
                                      "air": AIR_DERIVATIONS}).encode()).hexdigest()


def derive_is_current(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int]) -> bool:
    """The city's derived observations were computed for these reporting years by this code version."""
    stored = scalar(con, "SELECT fingerprint FROM core_derive_state WHERE city_id = ?", [city_id])
    return stored == derive_fingerprint(years)


def _observed_city_values(con: duckdb.DuckDBPyConnection, city_id: str) -> set[tuple[int, str, str | None]]:
    """City values published by a source: a derivation never overrides them."""
    return {(y, v, dp) for y, v, dp in con.execute(
        "SELECT year, variable, data_point FROM observations WHERE city_id = ? AND area_type = 'city' "
        "AND derivation IS NULL", [city_id]).fetchall()}


def derive_city(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int], *,
                rebuild_readings: bool = False) -> dict[str, Any]:
    """Recompute every derived observation of a city (inside the caller's transaction).

    Readings enter through their group aggregates (core_readings_groups), which the loader keeps
    exact; `rebuild_readings` recomputes them from the hourly rows first (one scan: a full rebuild
    from the core tables). Aggregates that do not match the rows (written around the loader) are
    rebuilt either way."""
    if rebuild_readings or not readings_groups_current(con, city_id):
        rebuild_readings_groups(con, city_id)
    con.execute("DELETE FROM observations WHERE city_id = ? AND derivation IS NOT NULL", [city_id])
    assign_points_to_districts(con, city_id)
    observed = _observed_city_values(con, city_id)
    areas = polygon_areas(con, city_id, years)
    transit = [r for r in transit_stop_counts(con, city_id, years)
               if (r["year"], r["variable"], None) not in observed]
    areas = [r for r in areas if r["area_type"] != "city" or (r["year"], r["variable"], None) not in observed]
    insert_frame(con, "observations", _frame(areas + transit))
    rollup = district_rollup(con, city_id)
    stations, rejected = station_means_from_groups(con, city_id)
    city_air = city_annual_means(city_id, stations, observed)
    withheld = withheld_city_means(city_id, stations, rejected, observed, years)
    district_air = district_annual_means(con, city_id, stations)
    insert_frame(con, "observations", _frame(rollup + stations + city_air + district_air))
    _store_withheld(con, city_id, withheld)
    spatial = derive_spatial(con, city_id, years)
    insert_frame(con, "observations", _frame(spatial))
    _record_derived(con, city_id, years)
    return {
        "mode": "full", "district_rollup": len(rollup), "station_annual_means": len(stations),
        "station_years_rejected_low_coverage": rejected, "city_annual_means": len(city_air),
        "city_annual_means_withheld": [w["reason"] for w in withheld],
        "district_annual_means": len(district_air), "polygon_areas": len(areas), "transit_stops": len(transit),
        "spatial": len(spatial),
    }


def readings_groups_current(con: duckdb.DuckDBPyConnection, city_id: str) -> bool:
    """core_readings_groups covers exactly the city's readings (row counts: metadata and zone maps, no scan)."""
    row = one_row(con, """SELECT (SELECT coalesce(sum(n), 0) FROM core_readings_groups WHERE city_id = $city),
                                 (SELECT count(*) FROM core_readings WHERE city_id = $city)""", {"city": city_id})
    return row is not None and row[0] == row[1]


def _record_derived(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int]) -> None:
    con.execute("INSERT OR REPLACE INTO core_derive_state (city_id, fingerprint, derived_at) VALUES (?, ?, now())",
                [city_id, derive_fingerprint(years)])


def derive_air(con: duckdb.DuckDBPyConnection, city_id: str, keys: Iterable[tuple[int, str, str | None]],
               years: Sequence[int] = ()) -> dict[str, Any]:
    """Recompute the station, city and district annual means of the (year, variable, data point) keys
    whose readings changed, from the group aggregates; other rows stay. Rows equal to the stored ones
    are not rewritten. The same functions as derive_city, so the rows equal a full rebuild's."""
    wanted = sorted(set(keys), key=str)
    stations, rejected = station_means_from_groups(con, city_id, wanted)
    observed = _observed_city_values(con, city_id)
    city_air = city_annual_means(city_id, stations, observed)
    withheld = withheld_city_means(city_id, stations, rejected, observed, years)
    _store_withheld(con, city_id, withheld, wanted)
    district_air = district_annual_means(con, city_id, stations)
    fresh = _frame(stations + city_air + district_air)
    keys_frame = pl.DataFrame({"year": [k[0] for k in wanted], "variable": [k[1] for k in wanted],
                               "data_point": [k[2] for k in wanted]},
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


def refresh_derived(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int], change: LoadChange
                    ) -> dict[str, Any]:
    """Derive again what a load's changes touch (inside its transaction).

    A replaced small source (statistics, areas, points, stops) or a replaced readings source, or other
    reporting years or derivation versions: every derivation, in derive_city's order (they read each
    other's rows), with the readings from their aggregates (no scan of the hourly table). Appended
    readings only: the annual means of the (year, variable, data point) keys that got rows. Nothing
    changed: nothing."""
    if change.other_sources_changed or change.readings_replaced or not derive_is_current(con, city_id, years):
        return derive_city(con, city_id, years)
    if change.touched:
        return derive_air(con, city_id, change.touched, years)
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
