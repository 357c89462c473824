"""Load parsed sources into the core tables, incrementally.

`plan_load` compares each source's snapshot and configuration with `core_source_state`: an
unchanged source is neither parsed nor rewritten. Parsing the changed sources (which can fail on
bad input) happens before any write; `write_changes` then writes them in the caller's transaction,
so a failed or killed run leaves the warehouse as it was.

Small sources are replaced (their rows deleted and inserted). Readings (hourly sensor data, the
only big table) are appended when the new snapshot extends the old one: rows above each series'
watermark (the latest `observed_at` stored for the station, variable and data point) are
inserted, after one scan of the new Parquet has shown that every stored row is still there
unchanged (per station-year: row count and the sum of hash(observed_at, value) of the rows at or
below the watermark equal the stored aggregates). Anything else (a changed or vanished row, a
back-filled hour, a changed mapping) replaces the source. Either way `core_readings_groups`
(migration 0004) is kept exact in the same transaction: rebuilt from the rows on a replace,
merged with the appended rows' aggregates on an append; derivations and the readings quality
checks read it instead of rescanning the hourly table.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from canonical.errors import TOO_DEEP, SourceDataError
from canonical.sqltext import ident
from canonical.units import conversion_factor
from canonical.variables import VARIABLES
from sources.config import LoadedConfig, SourceConfig
from sources.landing import Snapshot
from sources.mapping import OBSERVATION_SCHEMA, map_observations
from sources.parsers.geo import points_in_country, read_ngsi_ld_points, read_page_points
from sources.parsers.gtfs import read_gtfs_stops
from sources.parsers.tabular import CsvStream, TextTable, open_csv, read_excel, read_json_records
from warehouse.db import insert_values, scalar


@dataclass
class ParsedSource:
    source: SourceConfig
    snapshot: Snapshot
    table: str
    frame: pl.DataFrame | None = None      # rows ready for `table` (None: loaded by SQL)
    report: dict[str, Any] = field(default_factory=dict)
    readings_path: Path | None = None      # readings from API pages, as Parquet in canonical columns
    # Rows for other tables that belong to this source and are replaced with it (an areas / points
    # source's population observations).
    extra: dict[str, pl.DataFrame] = field(default_factory=dict)
    # (first day, last day, basis) the source's data describe, read at parse time (outside the lock).
    validity: tuple[date | None, date | None, str | None] = (None, None, None)

    @property
    def data_path(self) -> Path:
        """The Parquet the readings SQL reads: the snapshot's own file, or the one made from its pages."""
        return self.readings_path or self.snapshot.path


def _display_name(snapshot: Snapshot) -> str:
    return snapshot.path.name


def read_table(source: SourceConfig, snapshot: Snapshot) -> TextTable | CsvStream:
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
        # Streamed, never held: a statistics CSV of any size maps in bounded memory (issue #14).
        return open_csv(snapshot.path, source.csv, name)
    if fmt == "excel":
        return read_excel(snapshot.path, source.excel, name)
    if fmt == "parquet":
        from sources.parsers.tabular import read_parquet_table

        return read_parquet_table(snapshot.path, name)
    if fmt in ("json", "ngsi-ld"):
        return read_json_records(snapshot.path, name, source.observations.records_path if source.observations else None)
    raise SourceDataError(name, f"format {fmt!r} cannot feed target {source.target!r}", source_id=source.id)


def parse_source(loaded: LoadedConfig, source: SourceConfig, snapshot: Snapshot,
                 cache_dir: Path | None = None) -> ParsedSource:
    """Parse a landed snapshot into rows for its core table. Raises SourceDataError on bad input.

    Readings from API pages (NGSI-LD temporal, NGSI v2, OpenAQ) are written once per snapshot as
    Parquet under `cache_dir` (default: the system's temporary folder), so that they load through
    the same SQL as a Parquet source.

    Input too large or too deeply nested for any reader below is the input's fault: one SourceDataError
    naming the source and file (the readers' own checks catch most; this is the net under all of them)."""
    try:
        parsed = _parse_source(loaded, source, snapshot, cache_dir)
        parsed.validity = source_validity(parsed)
        return parsed
    except MemoryError:
        size = snapshot.path.stat().st_size if snapshot.path.is_file() else None
        shown_size = f" ({size:,} bytes)" if size is not None else ""
        raise SourceDataError(_display_name(snapshot), f"out of memory reading this file{shown_size}: it is too "
                              "large for this machine", source_id=source.id) from None
    except RecursionError:
        raise SourceDataError(_display_name(snapshot), TOO_DEEP, source_id=source.id) from None


def parse_changed(loaded: LoadedConfig, plan: LoadPlan, snapshots: dict[str, Snapshot], cache_dir: Path | None,
                  stored: pl.DataFrame | None) -> list[ParsedSource]:
    """Parse the sources a plan changes and check them against each other and the stored rows (what a load
    does outside the warehouse; a plain function of picklable values, so a worker process can run it)."""
    parsed = [parse_source(loaded, source, snapshots[source.id], cache_dir) for source in plan.changed]
    check_cross_source_conflicts(parsed, stored)
    return parsed


def parse_changed_or_none(loaded: LoadedConfig, plan: LoadPlan, snapshots: dict[str, Snapshot],
                          cache_dir: Path | None, stored: pl.DataFrame | None) -> list[ParsedSource] | None:
    """parse_changed for a worker process: None when it raises (our errors carry arguments that do not
    survive pickling back; the caller parses the city again in its own process, which raises the error)."""
    try:
        return parse_changed(loaded, plan, snapshots, cache_dir, stored)
    except Exception:
        return None


def _parse_source(loaded: LoadedConfig, source: SourceConfig, snapshot: Snapshot,
                  cache_dir: Path | None) -> ParsedSource:
    city_id = loaded.city_id
    name = _display_name(snapshot)
    if source.target == "observations":
        frame, report = map_observations(read_table(source, snapshot), source, city_id=city_id,
                                         snapshot_id=snapshot.snapshot_id)
        return ParsedSource(source, snapshot, "observations", frame, report.as_dict())
    from sources.parsers.geometry_source import is_entity_json, parse_geometry

    if source.target in ("areas", "points") and source.kind != "overpass" and not snapshot.paged \
            and not (source.target == "points" and is_entity_json(source, snapshot.path)):

        table = "core_areas" if source.target == "areas" else "core_points"
        frame, population, geo_report = parse_geometry(
            source, snapshot.path, name, city_id=city_id, country=loaded.config.city.country,
            snapshot_id=snapshot.snapshot_id)
        return ParsedSource(source, snapshot, table, frame, geo_report, extra={"observations": population})
    if source.target == "areas":
        assert source.areas is not None
        from sources.parsers.overpass import read_overpass_areas

        areas = read_overpass_areas(snapshot.path, source.areas, name, source.id)
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
        if snapshot.paged:  # NGSI-LD / NGSI v2 entities, OpenAQ locations, page by page
            from sources.parsers.pages import display_name

            points = read_page_points(snapshot.pages, source.points, display_name(snapshot.pages), source.id)
        else:
            points = read_ngsi_ld_points(snapshot.path, source.points, name, source.id)
        points, points_report = points_in_country(points, loaded.config.city.country, name, source.id)
        if source.points.station_type_field is not None:
            raise SourceDataError(name, "station_type_field is read from file sources; give API stations' types "
                                  "with station_types (station id -> type)", field=source.points.station_type_field,
                                  source_id=source.id)
        from sources.parsers.geometry_source import station_types

        kinds = station_types([p.point_id for p in points], None, source.points, display_name=name,
                              source_id=source.id)
        frame = pl.DataFrame({
            "city_id": [city_id] * len(points), "point_type": [source.points.point_type] * len(points),
            "point_id": [p.point_id for p in points], "name": [p.name for p in points],
            "lon": [p.lon for p in points], "lat": [p.lat for p in points],
            "district_id": [None] * len(points), "source_id": [source.id] * len(points),
            "snapshot_id": [snapshot.snapshot_id] * len(points), "source_record": [p.record for p in points],
            "station_type": kinds,
        }, schema_overrides={"district_id": pl.String, "name": pl.String, "station_type": pl.String})
        return ParsedSource(source, snapshot, "core_points", frame, points_report)
    if source.target == "transit_feed":
        stops = read_gtfs_stops(snapshot.path, name, loaded.config.city.reporting_years).with_columns(
            pl.lit(city_id).alias("city_id"), pl.lit(source.id).alias("source_id"),
            pl.lit(snapshot.snapshot_id).alias("snapshot_id"))
        rule = stops["service_rule"][0] if stops.height else None  # the service date and why (issue #15)
        return ParsedSource(source, snapshot, "core_transit_stops", stops, {"stops": stops.height, "service": rule})
    if source.target == "readings":
        return parse_readings(source, snapshot, cache_dir)
    if source.target == "street_network":
        return parse_street_network(source, snapshot, city_id)
    raise AssertionError(source.target)


def parse_street_network(source: SourceConfig, snapshot: Snapshot, city_id: str) -> ParsedSource:
    """An OSM extract as the walkable edges of core_street_edges (migration 0011)."""
    from sources.parsers.osm_streets import read_street_graph

    graph = read_street_graph(snapshot.path, _display_name(snapshot), fmt=source.resolved_format,
                              source_id=source.id)
    n = graph.n_edges
    frame = pl.DataFrame({
        "city_id": [city_id] * n, "source_id": [source.id] * n, "snapshot_id": [snapshot.snapshot_id] * n,
        "way_id": graph.way_id, "highway": graph.highway,
        "u_node": graph.node_id[graph.u], "v_node": graph.node_id[graph.v],
        "u_lon": graph.lon[graph.u], "u_lat": graph.lat[graph.u], "v_lon": graph.lon[graph.v],
        "v_lat": graph.lat[graph.v], "length_m": graph.length_m,
    }, schema_overrides={"way_id": pl.Int64, "u_node": pl.Int64, "v_node": pl.Int64, "highway": pl.String})
    return ParsedSource(source, snapshot, "core_street_edges", frame, graph.report)


def parse_readings(source: SourceConfig, snapshot: Snapshot, cache_dir: Path | None) -> ParsedSource:
    """Readings in any published shape, as the Parquet the one readings SQL path reads: a long Parquet
    as it is; API pages and saved API responses / JSON records (`readings_from_pages`), CSV, Excel and
    other Parquet shapes (`readings_from_table`) converted once per snapshot and mapping into
    canonical columns (station_id, observed_at, code, value) under `cache_dir`."""
    fmt = source.resolved_format
    if snapshot.paged or fmt in ("json", "ngsi-ld"):
        from sources.parsers.readings import as_pages

        path, canonical, report = readings_from_pages(source, as_pages(snapshot), cache_dir)
    elif fmt == "parquet" and readings_read_as_is(source):
        return ParsedSource(source, snapshot, "core_readings", None, {})
    elif fmt in ("csv", "excel", "parquet"):
        path, canonical, report = readings_from_table(source, snapshot, cache_dir)
    else:
        raise SourceDataError(_display_name(snapshot), f"readings are read from Parquet, CSV, Excel, JSON records "
                              f"or API responses, not {fmt!r}", source_id=source.id)
    return ParsedSource(canonical, snapshot, "core_readings", None, report, readings_path=path)


def readings_read_as_is(source: SourceConfig) -> bool:
    """A long Parquet in UTC with no flags: DuckDB reads it directly while writing (nothing to convert)."""
    m = source.readings
    return (source.resolved_format == "parquet" and m is not None and m.layout == "long" and m.station is None
            and m.flag_field is None and m.time_format is None and m.time_zone == "UTC")


def _canonical_path(source: SourceConfig, snapshot: Snapshot, cache_dir: Path | None) -> Path:
    """Where a snapshot's canonical readings are cached: one file per snapshot and reading settings
    (mapping, CSV / Excel options, format, LOAD_FORMAT_VERSION), so a changed mapping converts again."""
    settings = {"version": LOAD_FORMAT_VERSION, "format": source.resolved_format, "kind": source.kind,
                "readings": source.readings.model_dump(mode="json") if source.readings else None,
                "csv": source.csv.model_dump(mode="json") if source.csv else None,
                "excel": source.excel.model_dump(mode="json") if source.excel else None,
                "openaq": source.openaq.model_dump(mode="json") if source.openaq else None}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_dir or Path(tempfile.gettempdir()) / "citykpi-readings"
    path = folder / f"{snapshot.snapshot_id}-{digest}.parquet"  # <city>/<source>/<hash>-<settings>
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _canonical_source(source: SourceConfig) -> SourceConfig:
    """The source with its mapping pointed at the canonical columns (policies kept)."""
    assert source.readings is not None
    return source.model_copy(update={"readings": source.readings.model_copy(update={
        "layout": "long", "station_field": "station_id", "station": None, "time_field": "observed_at",
        "date_fields": None, "time_format": None, "time_zone": "UTC", "variable_field": "code",
        "value_field": "value", "flag_field": None, "flag_columns": None})})


def readings_from_pages(source: SourceConfig, snapshot: Snapshot,
                        cache_dir: Path | None) -> tuple[Path, SourceConfig, dict[str, Any]]:
    """The readings of a paged snapshot (or a saved API response as its one page) as Parquet
    (station_id, observed_at, code, value), made once per snapshot and reading settings, the source
    with its mapping pointed at those columns, and the parser's counts for the load report."""
    from sources.parsers.readings import read_reading_pages
    from sources.parsers.readings_tables import read_report

    path = _canonical_path(source, snapshot, cache_dir)
    if not path.exists():
        counts: dict[str, int] = {}
        frame = read_reading_pages(snapshot, source, counts).select("station_id", "observed_at", "code", "value")
        path.with_suffix(".report.json").write_text(json.dumps(counts), encoding="utf-8")
        staging = path.with_name(f".{path.name}.{os.getpid()}")
        frame.write_parquet(staging)
        os.replace(staging, path)  # complete or absent, never half-written
    return path, _canonical_source(source), {k: v for k, v in read_report(path).items() if v}


def readings_from_table(source: SourceConfig, snapshot: Snapshot,
                        cache_dir: Path | None) -> tuple[Path, SourceConfig, dict[str, Any]]:
    """A CSV / Excel / Parquet readings table of any layout as canonical Parquet (once per snapshot
    and reading settings; sources/parsers/readings_tables.py)."""
    from sources.parsers.readings_tables import convert_readings_table, read_report

    path = _canonical_path(source, snapshot, cache_dir)
    if not path.exists():
        convert_readings_table(source, snapshot.path, _display_name(snapshot), path, path.parent)
    return path, _canonical_source(source), read_report(path)


# Bump when parsing or mapping changes what a snapshot loads as: every source is then replaced once.
# 2: readings from every shape, duplicate/NaN policies; observations policies; geometry CRS;
# 3: station types, GTFS parent stations, readings sampling, validity years
LOAD_FORMAT_VERSION = 3
# Source settings that do not change the rows a snapshot loads as (documentation, fetching).
_NOT_LOADED = {"description", "license", "cadence", "data_quality", "data_origin", "http"}
_HOUR_US = 3_600_000_000


def source_fingerprint(source: SourceConfig) -> str:
    """SHA-256 of what decides a snapshot's rows besides its bytes: the source's parse and mapping
    settings, the unit factors of readings, and LOAD_FORMAT_VERSION."""
    data: dict[str, Any] = {"version": LOAD_FORMAT_VERSION,
                            "source": source.model_dump(mode="json", exclude=_NOT_LOADED)}
    if source.readings is not None:
        data["factors"] = {code: factor for code, _, _, factor in _reading_codes(source)}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class SourceState:
    snapshot_id: str
    config_sha256: str | None


@dataclass
class LoadPlan:
    """What a load has to do for one city (from `plan_load`)."""

    changed: list[SourceConfig]               # parse and write these
    unchanged: list[SourceConfig]             # same snapshot and configuration: left alone
    regroup: list[str]                        # unchanged readings sources whose aggregates are missing
    previous: dict[str, SourceState]
    fingerprints: dict[str, str]
    removed: list[str] = field(default_factory=list)  # sources in the warehouse no longer in the config

    @property
    def sources_changed(self) -> bool:
        return bool(self.changed or self.regroup or self.removed)


def plan_reports(plan: LoadPlan) -> dict[str, dict[str, Any]]:
    """Per-source reports of a load that has nothing to do."""
    return {s.id: {"unchanged": True, "snapshot_id": plan.previous[s.id].snapshot_id} for s in plan.unchanged}


def source_states(con: duckdb.DuckDBPyConnection, city_id: str) -> dict[str, SourceState]:
    rows = con.execute("SELECT source_id, snapshot_id, config_sha256 FROM core_source_state WHERE city_id = ?",
                       [city_id]).fetchall()
    return {source_id: SourceState(snapshot_id, config) for source_id, snapshot_id, config in rows}


def mismatched_groups(con: duckdb.DuckDBPyConnection, city_ids: Sequence[str]) -> dict[str, set[str]]:
    """Per city, the readings sources whose aggregates do not cover exactly their rows (one query for
    all the cities: two per city and source were most of planning a run over 100 unchanged cities)."""
    if not city_ids:
        return {}
    marks = ", ".join("?" for _ in city_ids)
    rows = con.execute(f"""
        WITH grouped AS (SELECT city_id, source_id, sum(n) AS n FROM core_readings_groups
                         WHERE city_id IN ({marks}) GROUP BY ALL),
             counted AS (SELECT city_id, source_id, count(*) AS n FROM core_readings
                         WHERE city_id IN ({marks}) GROUP BY ALL)
        SELECT city_id, source_id FROM grouped FULL JOIN counted USING (city_id, source_id)
        WHERE coalesce(grouped.n, 0) <> coalesce(counted.n, 0)""", [*city_ids, *city_ids]).fetchall()
    out: dict[str, set[str]] = {city_id: set() for city_id in city_ids}
    for city_id, source_id in rows:
        out[city_id].add(source_id)
    return out


def plan_load(con: duckdb.DuckDBPyConnection, loaded: LoadedConfig, snapshots: dict[str, Snapshot],
              mismatched: set[str] | None = None) -> LoadPlan:
    """What a load of the city has to do. `mismatched`: its sources from `mismatched_groups`, when the
    caller asked for many cities at once (else asked here)."""
    previous = source_states(con, loaded.city_id)
    configured = {source.id for source in loaded.config.sources}
    plan = LoadPlan([], [], [], previous, {}, removed=sorted(set(previous) - configured))
    for source in loaded.config.sources:
        fingerprint = plan.fingerprints[source.id] = source_fingerprint(source)
        state = previous.get(source.id)
        if state is None or state.snapshot_id != snapshots[source.id].snapshot_id \
                or state.config_sha256 != fingerprint:
            plan.changed.append(source)
            continue
        plan.unchanged.append(source)
        if source.target == "readings":
            if mismatched is None:
                mismatched = mismatched_groups(con, [loaded.city_id])[loaded.city_id]
            if source.id in mismatched:
                plan.regroup.append(source.id)
    return plan


@dataclass
class LoadChange:
    """What `write_changes` wrote: decides which derivations must run again."""

    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    other_sources_changed: bool = False       # a non-readings source was replaced
    readings_replaced: bool = False           # a readings source was replaced or regrouped
    readings_appended: bool = False           # a readings source got rows appended (aggregates kept by the append)
    touched: set[tuple[int, str, str | None]] = field(default_factory=set)  # (year, variable, data point) appended

    @property
    def wrote(self) -> bool:
        return self.other_sources_changed or self.readings_replaced or bool(self.touched)


def write_changes(con: duckdb.DuckDBPyConnection, loaded: LoadedConfig, plan: LoadPlan, parsed: list[ParsedSource]
                  ) -> LoadChange:
    """Write the parsed (changed) sources and refresh missing readings aggregates (call inside a transaction)."""
    city_id = loaded.city_id
    change = LoadChange()
    states: list[list[object]] = []  # core_source_state rows, one upsert for all (one source: one row)
    loaded_at = scalar(con, "SELECT now()")  # the transaction's start, what now() gives every row of it
    for item in parsed:
        source_id = item.source.id
        if item.table == "core_readings":
            previous = plan.previous.get(source_id)
            appended = None
            if previous is not None and previous.config_sha256 == plan.fingerprints[source_id]:
                appended = append_readings(con, city_id, item)
            if appended is None:
                replace_readings(con, city_id, item)
                change.readings_replaced = True
            else:
                change.touched |= appended
                change.readings_appended = True
            rows = item.report["readings"]
        else:
            replace_rows(con, city_id, item)
            change.other_sources_changed = True
            rows = item.frame.height if item.frame is not None else 0
        sampling = item.source.readings.sampling if item.source.readings is not None else None
        valid_from, valid_to, basis = item.validity
        states.append([city_id, source_id, item.snapshot.snapshot_id, loaded_at, rows, plan.fingerprints[source_id],
                       report_json(item.report), sampling, valid_from, valid_to, basis, item.source.assume_valid])
        change.reports[source_id] = item.report
    insert_values(con, "core_source_state", ("city_id", "source_id", "snapshot_id", "loaded_at", "row_count",
                                              "config_sha256", "load_report", "readings_sampling", "valid_from",
                                              "valid_to", "validity_basis", "assume_valid"), states, conflict="replace")
    for source_id in plan.regroup:
        rebuild_readings_groups(con, city_id, source_id)
        change.readings_replaced = True
        change.reports[source_id] = {"unchanged": True, "aggregates_rebuilt": True}
    for source_id, report in plan_reports(plan).items():
        change.reports.setdefault(source_id, report)
    for source_id in plan.removed:
        change.reports[source_id] = remove_source(con, city_id, source_id)
        change.other_sources_changed = change.readings_replaced = True  # derive everything again
    return change


def source_validity(item: ParsedSource) -> tuple[date | None, date | None, str | None]:
    """The days a spatial source's data describe: the config's valid_from / valid_to when given, else
    a GTFS feed's own dates; (None, None, None) when unknown or not a spatial source."""
    source = item.source
    if source.valid_from is not None or source.valid_to is not None:
        return source.valid_from, source.valid_to, "declared in the city config"
    if item.table == "core_transit_stops":
        from sources.parsers.gtfs import feed_validity

        return feed_validity(item.snapshot.path, _display_name(item.snapshot))
    return None, None, None


# Every core table a source's rows land in (derived observations carry source_id 'derived').
SOURCE_TABLES = ("observations", "core_areas", "core_points", "core_readings", "core_readings_groups",
                 "core_transit_stops", "core_street_edges")


def remove_source(con: duckdb.DuckDBPyConnection, city_id: str, source_id: str) -> dict[str, Any]:
    """Delete every row of a source that left the city's config (call inside the load's transaction)."""
    deleted: dict[str, int] = {}
    for table in SOURCE_TABLES:
        n = int(scalar(con, f"SELECT count(*) FROM {table} WHERE city_id = ? AND source_id = ?",  # type: ignore[call-overload]
                       [city_id, source_id]) or 0)
        if n:
            con.execute(f"DELETE FROM {table} WHERE city_id = ? AND source_id = ?", [city_id, source_id])
            deleted[table] = n
    con.execute("DELETE FROM core_source_state WHERE city_id = ? AND source_id = ?", [city_id, source_id])
    return {"removed": True, "rows_deleted": deleted,
            "note": "source no longer in the city config: its rows were removed from the warehouse"}


def report_json(report: dict[str, Any]) -> str:
    """A load report as JSON text (timestamps and decimals as text)."""
    return json.dumps(report, sort_keys=True, default=str)


def replace_rows(con: duckdb.DuckDBPyConnection, city_id: str, item: ParsedSource) -> None:
    """Replace this city's rows of one small (non-readings) source."""
    con.execute(f"DELETE FROM {ident(item.table)} WHERE city_id = ? AND source_id = ?", [city_id, item.source.id])
    if item.frame is not None and item.frame.height:
        insert_frame(con, item.table, item.frame)
    for table, frame in item.extra.items():
        con.execute(f"DELETE FROM {ident(table)} WHERE city_id = ? AND source_id = ?", [city_id, item.source.id])
        if frame.height:
            insert_frame(con, table, frame)


# ---- readings ----------------------------------------------------------------------------------


def _reading_codes(source: SourceConfig) -> list[tuple[str, str, str | None, float]]:
    mapping = source.readings
    assert mapping is not None
    return [(code, vm.variable, vm.data_point,
             conversion_factor(vm.unit, VARIABLES[vm.variable].unit, variable=vm.variable, data_point=vm.data_point))
            for code, vm in mapping.variables.items()]


def _codes_cte(source: SourceConfig) -> tuple[str, list[Any]]:
    cases = _reading_codes(source)
    params: list[Any] = []
    for case in cases:
        params.extend(case)
    return f"codes(code, variable, data_point, factor) AS (VALUES {', '.join('(?, ?, ?, ?)' for _ in cases)})", params


def _src_cte(source: SourceConfig) -> str:
    """`src`: the file's rows as (station_id, observed_at, code, value, raw_value, row_number), one per
    row of the Parquet (read_parquet(?)). Configured names reach SQL only quoted (`ident`)."""
    mapping = source.readings
    assert mapping is not None
    assert mapping.station_field and mapping.time_field and mapping.variable_field and mapping.value_field
    value = ident(mapping.value_field)
    return f"""src AS (
            SELECT CAST({ident(mapping.station_field)} AS VARCHAR) AS station_id,
                   TRY_CAST({ident(mapping.time_field)} AS TIMESTAMPTZ) AS observed_at,
                   CAST({ident(mapping.time_field)} AS VARCHAR) AS raw_time,
                   CAST({ident(mapping.variable_field)} AS VARCHAR) AS code,
                   TRY_CAST({value} AS DOUBLE) AS value,
                   CAST({value} AS VARCHAR) AS raw_value, file_row_number AS row_number
            FROM read_parquet(?, file_row_number = true))"""


# Two readings of one station, variable and data point at the same time: what `duplicates` keeps.
# `error` keeps both here and the loader refuses them after the insert (`_refuse_duplicates`, from the
# group aggregates: free when there are none); `first` keeps the first in file order; `mean` their
# exact mean (DECIMAL sum: the same bytes in any order, so appends still verify).
_DUPLICATES = {
    "error": "SELECT station_id, observed_at, variable, data_point, value FROM joined",
    "first": """SELECT station_id, observed_at, variable, data_point, value FROM joined
                QUALIFY row_number() OVER (PARTITION BY station_id, variable, data_point, observed_at
                                           ORDER BY row_number) = 1""",
    "mean": """SELECT station_id, observed_at, variable, data_point,
                      CASE WHEN bool_and(abs(value) < 1e18)
                           THEN CAST(sum(CAST(value AS DECIMAL(38, 12))) AS DOUBLE) / count(*)
                           ELSE avg(value) END AS value
               FROM joined GROUP BY station_id, observed_at, variable, data_point""",
}


def _readings_sql(source: SourceConfig) -> tuple[str, list[Any]]:
    """SELECT producing canonical readings from the snapshot's Parquet, streamed by DuckDB. Parameters:
    the codes, then the Parquet path. The value expression is the one every checksum hashes."""
    assert source.readings is not None
    codes, params = _codes_cte(source)
    sql = f"""
        WITH {codes}, {_src_cte(source)},
        joined AS (
            SELECT station_id, observed_at, codes.variable, codes.data_point, src.value * codes.factor AS value,
                   row_number
            FROM src JOIN codes USING (code)
            WHERE src.value IS NOT NULL AND isfinite(src.value))
        {_DUPLICATES[source.readings.duplicates]}
    """
    return sql, params


def _check_columns(con: duckdb.DuckDBPyConnection, path: Path, source: SourceConfig) -> None:
    mapping = source.readings
    assert mapping is not None
    columns = [row[0] for row in con.execute("SELECT name FROM parquet_schema(?)", [str(path)]).fetchall()]
    for name in (mapping.station_field, mapping.time_field, mapping.variable_field, mapping.value_field):
        if name not in columns[1:]:
            raise SourceDataError(path.name, f"column {name!r} not found; columns are {columns[1:]}",
                                  field=name, source_id=source.id)


def _readings_report(con: duckdb.DuckDBPyConnection, path: Path, source: SourceConfig,
                     display: str | None = None) -> dict[str, Any]:
    rows = con.execute(f"""
        WITH {_src_cte(source)}
        SELECT code, count(*) AS n, count(*) - count(raw_value) AS empty,
               count(*) FILTER (WHERE raw_value IS NOT NULL AND (value IS NULL OR NOT isfinite(value))) AS unreadable,
               count(*) FILTER (WHERE value IS NOT NULL AND (station_id IS NULL OR observed_at IS NULL)) AS untimed
        FROM src GROUP BY ALL ORDER BY code""", [str(path)]).fetchall()
    report = _report_from_codes(source, [row[:4] for row in rows])
    assert source.readings is not None
    report["_untimed"] = sum(int(row[4]) for row in rows if row[0] in source.readings.variables)
    _refuse_unreadable(con, path, source, report, display or path.name)
    return report


def _report_from_codes(source: SourceConfig, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """rows: (code, rows read, empty values, unreadable values) per code of the file."""
    mapping = source.readings
    assert mapping is not None
    unmapped: dict[str, int] = {}
    for code, n, *_ in rows:
        if code not in mapping.variables:
            unmapped[code] = unmapped.get(code, 0) + int(n)
    report = {"rows_read": sum(int(r[1]) for r in rows), "empty_values": sum(int(r[2]) for r in rows),
              "unmapped_codes": dict(sorted(unmapped.items(), key=lambda kv: str(kv[0])))}
    unreadable = sum(int(r[3]) for r in rows if r[0] in mapping.variables)
    if unreadable:
        report["unreadable_values"] = unreadable
    report["_mapped_values"] = sum(int(r[1]) - int(r[2]) - int(r[3]) for r in rows if r[0] in mapping.variables)
    return report


def _refuse_unreadable(con: duckdb.DuckDBPyConnection, path: Path, source: SourceConfig, report: dict[str, Any],
                       display: str) -> None:
    """A mapped value that is not a finite number: an error naming row and field (`invalid_values: error`).
    A mapped reading without a station or a readable time: an error naming row and field."""
    mapping = source.readings
    assert mapping is not None
    untimed = [] if report.pop("_untimed", 1) == 0 else con.execute(f"""WITH {_src_cte(source)}
        SELECT row_number, station_id IS NULL, raw_time FROM src
        WHERE value IS NOT NULL AND (station_id IS NULL OR observed_at IS NULL) AND list_contains(?, code)
        ORDER BY row_number LIMIT 1""", [str(path), list(mapping.variables)]).fetchall()
    if untimed:
        row, no_station, raw_time = untimed[0]
        if no_station:
            raise SourceDataError(display, "no station id", row=int(row) + 1, field=mapping.station_field,
                                  source_id=source.id)
        message = "no time" if raw_time is None else f"time {str(raw_time)[:60]!r} cannot be read as a date-time"
        raise SourceDataError(display, message, row=int(row) + 1, field=mapping.time_field, source_id=source.id)
    if not report.get("unreadable_values") or mapping.invalid_values == "skip":
        return
    row = con.execute(f"""WITH {_src_cte(source)}
        SELECT row_number, code, raw_value FROM src
        WHERE raw_value IS NOT NULL AND (value IS NULL OR NOT isfinite(value)) AND list_contains(?, code)
        ORDER BY row_number LIMIT 1""", [str(path), list(mapping.variables)]).fetchall()[0]
    raise SourceDataError(display, f"value {str(row[2])[:60]!r} of {row[1]!r} is not a finite number "
                          "(invalid_values: skip drops such values and counts them)",
                          row=int(row[0]) + 1, field=mapping.value_field, source_id=source.id)


def _refuse_duplicates(con: duckdb.DuckDBPyConnection, city_id: str, item: ParsedSource) -> None:
    """`duplicates: error`: two readings of one station, variable and data point at the same time stop
    the load (the caller's transaction rolls back), naming the file, the station and the first hours.
    Hourly data: a group with more rows than distinct hours (from the aggregates, no scan); readings
    off the full hour: an exact GROUP BY."""
    source = item.source
    assert source.readings is not None
    if source.readings.duplicates != "error":
        return
    suspects = con.execute("""SELECT DISTINCT station_id FROM core_readings_groups
                              WHERE city_id = ? AND source_id = ? AND (n > bit_count(hours) OR off_grid > 0)
                              ORDER BY 1""", [city_id, source.id]).fetchall()
    if not suspects:
        return
    found = con.execute("""SELECT station_id, variable, data_point, observed_at, count(*) FROM core_readings
                           WHERE city_id = ? AND source_id = ? AND list_contains(?, station_id)
                           GROUP BY ALL HAVING count(*) > 1 ORDER BY station_id, observed_at, variable, data_point
                           """, [city_id, source.id, [s[0] for s in suspects]]).fetchall()
    if not found:
        return
    station = found[0][0]
    first = [r for r in found if r[0] == station]
    hours = ", ".join(f"{r[3].astimezone(UTC):%Y-%m-%d %H:%M} UTC ({r[1]}{f'[{r[2]}]' if r[2] else ''}, "
                      f"{r[4]} readings)" for r in first[:3])
    raise SourceDataError(_display_name(item.snapshot),
                          f"station {station!r} has {len(first)} duplicated reading time(s), first {hours}; "
                          f"{len(found)} in all over {len({r[0] for r in found})} station(s). Declare "
                          "readings.duplicates: first or mean to keep one reading per hour",
                          field=source.readings.station_field, source_id=source.id)


# The group aggregates of `core_readings_groups` over a relation `r` of canonical readings (columns
# station_id, observed_at, variable, data_point, value, source_id). Year and hour come from the UTC
# epoch as a plain TIMESTAMP (`AT TIME ZONE` goes through ICU per row); the exact sum is the
# order-independent DECIMAL sum the annual means divide (see warehouse/derive.py).
MEAN_AGGREGATES = """
    count(*) AS n,
    coalesce(sum(CAST(CASE WHEN abs(value) < 1e18 THEN value ELSE 0 END AS DECIMAL(38, 12))), 0) AS exact_sum,
    count(*) FILTER (WHERE NOT coalesce(abs(value) < 1e18, false)) AS inexact,
    bitstring_agg((dayofyear(ts) - 1) * 24 + hour(ts), 0, 8783) AS hours"""
GROUP_AGGREGATES = MEAN_AGGREGATES + f""",
    count(*) FILTER (WHERE epoch_us(observed_at) % {_HOUR_US} <> 0) AS off_grid,
    min(observed_at) AS first_observed_at, max(observed_at) AS last_observed_at,
    coalesce(sum(hash(observed_at, value)), 0) AS checksum"""
GROUP_COLUMNS = ("city_id", "source_id", "station_id", "variable", "data_point", "year", "n", "exact_sum", "inexact",
                 "hours", "off_grid", "first_observed_at", "last_observed_at", "checksum")


def rebuild_readings_groups(con: duckdb.DuckDBPyConnection, city_id: str, source_id: str | None = None) -> None:
    """Recompute the city's readings aggregates (one source's, or all) from core_readings: one scan."""
    where = "city_id = $city" + (" AND source_id = $source" if source_id is not None else "")
    params: dict[str, Any] = {"city": city_id, **({"source": source_id} if source_id is not None else {})}
    con.execute(f"DELETE FROM core_readings_groups WHERE {where}", params)
    con.execute(f"""
        INSERT INTO core_readings_groups ({', '.join(GROUP_COLUMNS)})
        WITH r AS (SELECT *, make_timestamp(epoch_us(observed_at)) AS ts FROM core_readings WHERE {where})
        SELECT city_id, source_id, station_id, variable, data_point, CAST(year(ts) AS INTEGER) AS year,
               {GROUP_AGGREGATES}
        FROM r GROUP BY ALL""", params)


def replace_readings(con: duckdb.DuckDBPyConnection, city_id: str, item: ParsedSource) -> None:
    """Delete the source's readings, insert the snapshot's, rebuild its aggregates."""
    source_id, path = item.source.id, item.data_path
    _check_columns(con, path, item.source)
    report = _readings_report(con, path, item.source, _display_name(item.snapshot))
    mapped = report.pop("_mapped_values")
    item.report = {"mode": "replace", **report, **item.report}
    con.execute("DELETE FROM core_readings WHERE city_id = ? AND source_id = ?", [city_id, source_id])
    sql, params = _readings_sql(item.source)
    # The source's rows are now exactly those inserted: DuckDB's INSERT returns their count (no scan).
    inserted = scalar(con, f"""INSERT INTO core_readings
        SELECT ?, station_id, observed_at, variable, data_point, value, ?, ? FROM ({sql})""",
                      [city_id, source_id, item.snapshot.snapshot_id, *params, str(path)])
    rebuild_readings_groups(con, city_id, source_id)
    _refuse_duplicates(con, city_id, item)
    readings = int(inserted or 0)  # type: ignore[call-overload]
    item.report["readings"] = readings
    assert item.source.readings is not None
    # Surplus readings of a (station, variable, data point, time) that `duplicates` merged or dropped.
    item.report["duplicates"] = {"policy": item.source.readings.duplicates, "readings_merged": mapped - readings}


def append_readings(con: duckdb.DuckDBPyConnection, city_id: str, item: ParsedSource
                    ) -> set[tuple[int, str, str | None]] | None:
    """Append the rows above each series' watermark if the new snapshot keeps every stored row
    unchanged; returns the (year, variable, data point) keys that got rows, or None when the source
    must be replaced instead (item.report["append_refused"] says why)."""
    source, source_id, path = item.source, item.source.id, item.data_path
    _check_columns(con, path, source)
    watermarks = frame_of(con, """SELECT station_id, variable, data_point, max(last_observed_at) AS watermark
                                   FROM core_readings_groups WHERE city_id = ? AND source_id = ? GROUP BY ALL""",
                           [city_id, source_id])
    if watermarks.height == 0:
        item.report["append_refused"] = "no stored readings"
        return None
    # One scan of the new file counts and hashes every row per station and code: plain aggregates, no
    # per-row filter, join or year. The few rows above the lowest watermark (the tail) are kept aside;
    # those above their own series' watermark are the new rows, and "every row minus the new ones"
    # must equal what is stored, series by series.
    floor = watermarks["watermark"].min()
    codes = _reading_codes(source)
    # The unit factor as a CASE on the code: the canonical value (the one stored and hashed) without
    # a join per row, which would double the scan's cost.
    factor = "CASE code " + " ".join("WHEN ? THEN CAST(? AS DOUBLE)" for _ in codes) + " END"
    factor_params = [x for code, _, _, f in codes for x in (code, f)]
    sql, params = _readings_sql(source)
    con.register("_watermarks", watermarks.to_arrow())
    con.register("_codes", pl.DataFrame([c[:3] for c in codes], orient="row", schema={
        "code": pl.String, "variable": pl.String, "data_point": pl.String}).to_arrow())
    try:
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _scan AS
            WITH {_src_cte(source)}
            SELECT code, station_id, count(*) AS rows_read, count(*) - count(raw_value) AS empty,
                   count(*) FILTER (WHERE raw_value IS NOT NULL AND (value IS NULL OR NOT isfinite(value)))
                       AS unreadable,
                   count(*) FILTER (WHERE isfinite(value)) AS n, count(*) - count(observed_at) AS untimed,
                   coalesce(sum(hash(observed_at, value * {factor})) FILTER (WHERE isfinite(value)), 0) AS checksum
            FROM src GROUP BY ALL""", [str(path), *factor_params])
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _tail AS
            SELECT r.*, CAST(year(make_timestamp(epoch_us(r.observed_at))) AS INTEGER) AS year,
                   w.watermark IS NOT NULL AND r.observed_at <= w.watermark AS stored
            FROM ({sql}) r LEFT JOIN _watermarks w ON r.station_id = w.station_id AND r.variable = w.variable
                 AND r.data_point IS NOT DISTINCT FROM w.data_point
            WHERE r.observed_at > ?""", [*params, str(path), floor])
        try:
            return _verify_and_append(con, city_id, item)
        finally:
            _drop_temp(con, "_scan", "_tail")
    finally:
        con.unregister("_watermarks")
        con.unregister("_codes")


def _drop_temp(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Drop scratch tables; in a transaction that already failed, its rollback drops them (and the
    original error must not be replaced by "transaction aborted")."""
    try:
        for name in names:
            con.execute(f"DROP TABLE IF EXISTS {ident(name)}")
    except duckdb.Error:
        pass


def _verify_and_append(con: duckdb.DuckDBPyConnection, city_id: str, item: ParsedSource
                       ) -> set[tuple[int, str, str | None]] | None:
    source_id = item.source.id
    codes = con.execute("SELECT code, sum(rows_read), sum(empty), sum(unreadable) FROM _scan GROUP BY ALL "
                        "ORDER BY ALL").fetchall()
    report = _report_from_codes(item.source, codes)
    report.pop("_mapped_values")
    _refuse_unreadable(con, item.data_path, item.source, report, _display_name(item.snapshot))
    item.report = {**report, **item.report}
    if scalar(con, "SELECT count(*) FROM _scan JOIN _codes USING (code) WHERE untimed > 0 OR station_id IS NULL"):
        item.report["append_refused"] = "readings without a station or a time"  # the replace refuses them
        return None
    # The new snapshot's rows in the stored range, per series: all its rows minus the new ones,
    # against the stored aggregates (sums of hashes subtract exactly: HUGEINT).
    mismatch = con.execute("""
        WITH fresh AS (
            SELECT station_id, variable, data_point, sum(n) AS n, sum(checksum) AS checksum FROM (
                SELECT station_id, variable, data_point, n, checksum FROM _scan JOIN _codes USING (code)
                UNION ALL
                SELECT station_id, variable, data_point, -count(*), -sum(hash(observed_at, value))
                FROM _tail WHERE NOT stored GROUP BY ALL)
            GROUP BY ALL HAVING sum(n) <> 0 OR sum(checksum) <> 0),
        stored AS (SELECT station_id, variable, data_point, sum(n) AS n, sum(checksum) AS checksum
                   FROM core_readings_groups WHERE city_id = ? AND source_id = ? GROUP BY ALL)
        SELECT coalesce(s.station_id, f.station_id), coalesce(s.data_point, f.data_point), s.n, f.n
        FROM stored s FULL OUTER JOIN fresh f
          ON s.station_id IS NOT DISTINCT FROM f.station_id AND s.variable IS NOT DISTINCT FROM f.variable
         AND s.data_point IS NOT DISTINCT FROM f.data_point
        WHERE s.n IS DISTINCT FROM f.n OR s.checksum IS DISTINCT FROM f.checksum
        ORDER BY ALL LIMIT 3""", [city_id, source_id]).fetchall()
    if mismatch:
        item.report["append_refused"] = "stored rows changed or vanished in the new snapshot, e.g. " + "; ".join(
            f"{station} {point}: {old or 0} stored rows, {new or 0} in the snapshot up to its watermark"
            for station, point, old, new in mismatch)
        return None
    touched = {(int(y), str(v), dp) for y, v, dp in con.execute(
        "SELECT DISTINCT year, variable, data_point FROM _tail WHERE NOT stored").fetchall()}
    appended = 0
    if touched:
        con.execute("""INSERT INTO core_readings
            SELECT ?, station_id, observed_at, variable, data_point, value, ?, ? FROM _tail WHERE NOT stored""",
                    [city_id, source_id, item.snapshot.snapshot_id])
        appended = _merge_groups(con, city_id, source_id)
        _refuse_duplicates(con, city_id, item)
    total = scalar(con, "SELECT coalesce(sum(n), 0) FROM core_readings_groups WHERE city_id = ? AND source_id = ?",
                   [city_id, source_id])
    item.report.update({"mode": "append", "appended": appended, "readings": int(total or 0)})  # type: ignore[call-overload]
    return touched


def _merge_groups(con: duckdb.DuckDBPyConnection, city_id: str, source_id: str) -> int:
    """Fold the appended tail rows into core_readings_groups (exact: sums add, hour bitmaps OR)."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _added AS
        WITH r AS (SELECT *, make_timestamp(epoch_us(observed_at)) AS ts FROM _tail WHERE NOT stored)
        SELECT station_id, variable, data_point, CAST(year(ts) AS INTEGER) AS year, {GROUP_AGGREGATES}
        FROM r GROUP BY ALL""")
    try:
        match = """g.city_id = $city AND g.source_id = $source AND g.station_id IS NOT DISTINCT FROM a.station_id
                   AND g.variable IS NOT DISTINCT FROM a.variable AND g.data_point IS NOT DISTINCT FROM a.data_point
                   AND g.year IS NOT DISTINCT FROM a.year"""
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _merged AS
            SELECT $city AS city_id, $source AS source_id, a.station_id, a.variable, a.data_point, a.year,
                   a.n + coalesce(g.n, 0) AS n, a.exact_sum + coalesce(g.exact_sum, 0) AS exact_sum,
                   a.inexact + coalesce(g.inexact, 0) AS inexact,
                   CASE WHEN g.hours IS NULL THEN a.hours ELSE a.hours | g.hours END AS hours,
                   a.off_grid + coalesce(g.off_grid, 0) AS off_grid,
                   least(a.first_observed_at, g.first_observed_at) AS first_observed_at,
                   greatest(a.last_observed_at, g.last_observed_at) AS last_observed_at,
                   a.checksum + coalesce(g.checksum, 0) AS checksum
            FROM _added a LEFT JOIN core_readings_groups g ON {match}""", {"city": city_id, "source": source_id})
        con.execute(f"DELETE FROM core_readings_groups g WHERE EXISTS (SELECT 1 FROM _added a WHERE {match})",
                    {"city": city_id, "source": source_id})
        con.execute(f"INSERT INTO core_readings_groups ({', '.join(GROUP_COLUMNS)}) "
                    f"SELECT {', '.join(GROUP_COLUMNS)} FROM _merged")
        return int(scalar(con, "SELECT coalesce(sum(n), 0) FROM _added") or 0)  # type: ignore[call-overload]
    finally:
        _drop_temp(con, "_added", "_merged")


def stored_observation_keys(con: duckdb.DuckDBPyConnection, city_id: str, source_ids: list[str]) -> pl.DataFrame:
    """The source rows of unchanged observation sources, as far as the conflict check needs them."""
    schema = pl.Schema({k: OBSERVATION_SCHEMA[k] for k in _CONFLICT_COLUMNS})
    if not source_ids:
        return pl.DataFrame(schema=schema)
    return frame_of(con, f"""SELECT {', '.join(_CONFLICT_COLUMNS)} FROM observations WHERE city_id = ?
                              AND derivation IS NULL AND list_contains(?, source_id)""",
                     [city_id, source_ids]).cast(schema)


def frame_of(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> pl.DataFrame:
    """A query's result as a polars frame (through a relation: DuckDB 2 copies DB-API results once more)."""
    relation = con.sql(sql, params=params)
    assert relation is not None
    return relation.pl()


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    """Append a polars frame to a warehouse table by column name."""
    con.register("_incoming", frame.to_arrow())
    try:
        columns = ", ".join(ident(c) for c in frame.columns)
        con.execute(f"INSERT INTO {ident(table)} ({columns}) SELECT {columns} FROM _incoming")
    finally:
        con.unregister("_incoming")


_CONFLICT_KEY = ("year", "variable", "data_point", "area_type", "area_id")
_CONFLICT_COLUMNS = (*_CONFLICT_KEY, "source_id", "source_record")


def check_cross_source_conflicts(parsed: list[ParsedSource], stored: pl.DataFrame | None = None) -> None:
    """Two sources of one city publishing the same observation is an error naming both. `stored`: the
    rows of observation sources that were not re-parsed (unchanged)."""
    frames = [p.frame.select(_CONFLICT_COLUMNS) for p in parsed
              if p.table == "observations" and p.frame is not None and p.frame.height]
    frames += [p.extra["observations"].select(_CONFLICT_COLUMNS) for p in parsed  # population grids
               if "observations" in p.extra and p.extra["observations"].height]
    if stored is not None and stored.height:
        frames.append(stored.select(_CONFLICT_COLUMNS))
    if len(frames) < 2:
        return
    combined = pl.concat(frames)
    key = list(_CONFLICT_KEY)
    dupes = combined.filter(pl.struct(key).is_duplicated()).sort([*key, "source_id"])
    if dupes.height:
        a, b = dupes.row(0, named=True), dupes.row(1, named=True)
        raise SourceDataError(
            a["source_record"],
            f"{a['variable']} {a['area_id']} {a['year']} is also published by source {b['source_id']!r} "
            f"({b['source_record']}); map each observation from one source only", source_id=a["source_id"])


EMPTY_OBSERVATIONS = pl.DataFrame(schema=OBSERVATION_SCHEMA)
