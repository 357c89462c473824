"""Load parsed sources into the core tables.

Parsing (which can fail on bad input) happens for every source before any write; the writes for
a city then happen in one transaction that replaces exactly that city's rows per source, so a
failed or killed run leaves the warehouse as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from sources.config import LoadedConfig, SourceConfig
from sources.errors import SourceDataError
from sources.landing import Snapshot
from sources.mapping import OBSERVATION_SCHEMA, map_observations
from sources.parsers.geo import read_geojson_areas, read_ngsi_ld_points, read_page_points
from sources.parsers.gtfs import read_gtfs_stops
from sources.parsers.tabular import TextTable, read_csv, read_excel, read_json_records
from warehouse.db import scalar
from warehouse.units import conversion_factor
from warehouse.variables import VARIABLES


@dataclass
class ParsedSource:
    source: SourceConfig
    snapshot: Snapshot
    table: str
    frame: pl.DataFrame | None = None      # rows ready for `table` (None: loaded by SQL)
    report: dict[str, Any] = field(default_factory=dict)


def _display_name(snapshot: Snapshot) -> str:
    return snapshot.path.name


def read_table(source: SourceConfig, snapshot: Snapshot) -> TextTable:
    fmt = source.resolved_format
    name = _display_name(snapshot)
    if source.kind == "eurostat":
        from sources.parsers.eurostat import read_jsonstat, read_sdmx_csv, read_sdmx_ml

        if fmt == "json":
            return read_jsonstat(snapshot.path, name)
        if fmt == "csv":
            return read_sdmx_csv(snapshot.path, source.csv, name)
        return read_sdmx_ml(snapshot.path, name)
    if snapshot.paged:
        # Pages of JSON records from an API, concatenated; rows name their page and record.
        from sources.parsers.pages import read_json_pages

        if fmt != "json":
            raise SourceDataError(name, f"paged snapshots hold JSON records, not {fmt!r}", source_id=source.id)
        temporal = source.ngsi_ld is not None and source.ngsi_ld.temporal is not None
        return read_json_pages(snapshot.pages, temporal=temporal)
    if fmt == "csv":
        return read_csv(snapshot.path, source.csv, name)
    if fmt == "excel":
        return read_excel(snapshot.path, source.excel, name)
    if fmt in ("json", "ngsi-ld"):
        return read_json_records(snapshot.path, name)
    raise SourceDataError(name, f"format {fmt!r} cannot feed target {source.target!r}", source_id=source.id)


def parse_source(loaded: LoadedConfig, source: SourceConfig, snapshot: Snapshot) -> ParsedSource:
    """Parse a landed snapshot into rows for its core table. Raises SourceDataError on bad input."""
    city_id = loaded.city_id
    name = _display_name(snapshot)
    if source.target == "observations":
        frame, report = map_observations(read_table(source, snapshot), source, city_id=city_id,
                                         snapshot_id=snapshot.snapshot_id)
        return ParsedSource(source, snapshot, "observations", frame, report.as_dict())
    if source.target == "areas":
        assert source.areas is not None
        if source.kind == "overpass":
            from sources.parsers.overpass import read_overpass_areas

            areas = read_overpass_areas(snapshot.path, source.areas, name, source.id)
        else:
            areas = read_geojson_areas(snapshot.path, source.areas, name, source.id)
        frame = pl.DataFrame({
            "city_id": [city_id] * len(areas), "area_type": [source.areas.area_type] * len(areas),
            "area_id": [a.area_id for a in areas], "name": [a.name for a in areas],
            "area_ha": [a.area_ha for a in areas], "geometry_wkb": [a.geometry.wkb for a in areas],
            "source_id": [source.id] * len(areas), "snapshot_id": [snapshot.snapshot_id] * len(areas),
            "source_record": [a.record for a in areas],
        }, schema_overrides={"geometry_wkb": pl.Binary, "name": pl.String})
        return ParsedSource(source, snapshot, "core_areas", frame, {"features": len(areas)})
    if source.target == "points":
        assert source.points is not None
        if source.resolved_format not in ("ngsi-ld", "json", "geojson"):
            raise SourceDataError(name, "points are read from NGSI-LD entities", source_id=source.id)
        if snapshot.paged:  # NGSI-LD / NGSI v2 entities, OpenAQ locations, page by page
            from sources.parsers.pages import display_name

            points = read_page_points(snapshot.pages, source.points, display_name(snapshot.pages), source.id)
        else:
            points = read_ngsi_ld_points(snapshot.path, source.points, name, source.id)
        frame = pl.DataFrame({
            "city_id": [city_id] * len(points), "point_type": [source.points.point_type] * len(points),
            "point_id": [p.point_id for p in points], "name": [p.name for p in points],
            "lon": [p.lon for p in points], "lat": [p.lat for p in points],
            "district_id": [None] * len(points), "source_id": [source.id] * len(points),
            "snapshot_id": [snapshot.snapshot_id] * len(points), "source_record": [p.record for p in points],
        }, schema_overrides={"district_id": pl.String, "name": pl.String})
        return ParsedSource(source, snapshot, "core_points", frame, {"points": len(points)})
    if source.target == "transit_feed":
        stops = read_gtfs_stops(snapshot.path, name).with_columns(
            pl.lit(city_id).alias("city_id"), pl.lit(source.id).alias("source_id"),
            pl.lit(snapshot.snapshot_id).alias("snapshot_id"))
        return ParsedSource(source, snapshot, "core_transit_stops", stops, {"stops": stops.height})
    if source.target == "readings":
        if source.resolved_format != "parquet":
            raise SourceDataError(name, "readings are read from Parquet", source_id=source.id)
        return ParsedSource(source, snapshot, "core_readings", None, {})
    raise AssertionError(source.target)


def _readings_sql(source: SourceConfig) -> tuple[str, list[Any]]:
    """SELECT producing canonical readings from the snapshot's Parquet, streamed by DuckDB."""
    mapping = source.readings
    assert mapping is not None
    cases: list[tuple[str, str, str | None, float]] = []
    params: list[Any] = []
    for code, vm in mapping.variables.items():
        factor = conversion_factor(vm.unit, VARIABLES[vm.variable].unit, variable=vm.variable,
                                   data_point=vm.data_point)
        cases.append((code, vm.variable, vm.data_point, factor))
    values_sql = ", ".join("(?, ?, ?, ?)" for _ in cases)
    for case in cases:
        params.extend(case)
    sql = f"""
        WITH codes(code, variable, data_point, factor) AS (VALUES {values_sql}),
        src AS (
            SELECT CAST("{mapping.station_field}" AS VARCHAR) AS station_id,
                   CAST("{mapping.time_field}" AS TIMESTAMPTZ) AS observed_at,
                   CAST("{mapping.variable_field}" AS VARCHAR) AS code,
                   TRY_CAST("{mapping.value_field}" AS DOUBLE) AS value
            FROM read_parquet(?)
        )
        SELECT station_id, observed_at, codes.variable, codes.data_point, src.value * codes.factor AS value
        FROM src JOIN codes USING (code)
        WHERE src.value IS NOT NULL
    """
    return sql, params


def _check_columns(con: duckdb.DuckDBPyConnection, path: Path, source: SourceConfig) -> None:
    mapping = source.readings
    assert mapping is not None
    columns = [row[0] for row in con.execute("SELECT name FROM parquet_schema(?)", [str(path)]).fetchall()]
    for name in (mapping.station_field, mapping.time_field, mapping.variable_field, mapping.value_field):
        if name not in columns:
            raise SourceDataError(path.name, f"column {name!r} not found; columns are {columns[1:]}",
                                  field=name, source_id=source.id)


def _readings_report(con: duckdb.DuckDBPyConnection, path: Path, source: SourceConfig) -> dict[str, Any]:
    mapping = source.readings
    assert mapping is not None
    rows = con.execute(f"""
        SELECT CAST("{mapping.variable_field}" AS VARCHAR) AS code, count(*) AS n,
               count(*) FILTER (WHERE "{mapping.value_field}" IS NULL) AS empty
        FROM read_parquet(?) GROUP BY ALL ORDER BY code""", [str(path)]).fetchall()
    unmapped = {code: n for code, n, _ in rows if code not in mapping.variables}
    return {"rows_read": sum(n for _, n, _ in rows), "empty_values": sum(e for _, _, e in rows),
            "unmapped_codes": unmapped}


def write_parsed(con: duckdb.DuckDBPyConnection, city_id: str, parsed: list[ParsedSource]) -> None:
    """Replace this city's rows of every parsed source (call inside a transaction)."""
    for item in parsed:
        source_id = item.source.id
        con.execute(f"DELETE FROM {item.table} WHERE city_id = ? AND source_id = ?", [city_id, source_id])
        if item.table == "core_readings":
            path = item.snapshot.path
            _check_columns(con, path, item.source)
            item.report = _readings_report(con, path, item.source)
            sql, params = _readings_sql(item.source)
            con.execute(f"""INSERT INTO core_readings
                SELECT ?, station_id, observed_at, variable, data_point, value, ?, ? FROM ({sql})""",
                        [city_id, source_id, item.snapshot.snapshot_id, *params, str(path)])
            item.report["readings"] = scalar(
                con, "SELECT count(*) FROM core_readings WHERE city_id = ? AND source_id = ?", [city_id, source_id])
        else:
            assert item.frame is not None
            if item.frame.height == 0:
                continue
            insert_frame(con, item.table, item.frame)
        con.execute("""INSERT OR REPLACE INTO core_source_state VALUES (?, ?, ?, now(), ?)""",
                    [city_id, source_id, item.snapshot.snapshot_id,
                     item.frame.height if item.frame is not None else item.report.get("readings", 0)])


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    """Append a polars frame to a warehouse table by column name."""
    con.register("_incoming", frame.to_arrow())
    try:
        columns = ", ".join(f'"{c}"' for c in frame.columns)
        con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _incoming")
    finally:
        con.unregister("_incoming")


def check_cross_source_conflicts(parsed: list[ParsedSource]) -> None:
    """Two sources of one city publishing the same observation is an error naming both."""
    frames = [p.frame for p in parsed if p.table == "observations" and p.frame is not None and p.frame.height]
    if len(frames) < 2:
        return
    combined = pl.concat(frames)
    key = ["year", "variable", "data_point", "area_type", "area_id"]
    dupes = combined.filter(pl.struct(key).is_duplicated()).sort([*key, "source_id"])
    if dupes.height:
        a, b = dupes.row(0, named=True), dupes.row(1, named=True)
        raise SourceDataError(
            a["source_record"],
            f"{a['variable']} {a['area_id']} {a['year']} is also published by source {b['source_id']!r} "
            f"({b['source_record']}); map each observation from one source only", source_id=a["source_id"])


EMPTY_OBSERVATIONS = pl.DataFrame(schema=OBSERVATION_SCHEMA)
