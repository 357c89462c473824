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
    readings_path: Path | None = None      # readings from API pages, as Parquet in canonical columns

    @property
    def data_path(self) -> Path:
        """The Parquet the readings SQL reads: the snapshot's own file, or the one made from its pages."""
        return self.readings_path or self.snapshot.path


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
        keep = source.observations.used_columns() if source.observations else None
        return read_csv(snapshot.path, source.csv, name, keep)
    if fmt == "excel":
        return read_excel(snapshot.path, source.excel, name)
    if fmt in ("json", "ngsi-ld"):
        return read_json_records(snapshot.path, name, source.observations.records_path if source.observations else None)
    raise SourceDataError(name, f"format {fmt!r} cannot feed target {source.target!r}", source_id=source.id)


def parse_source(loaded: LoadedConfig, source: SourceConfig, snapshot: Snapshot,
                 cache_dir: Path | None = None) -> ParsedSource:
    """Parse a landed snapshot into rows for its core table. Raises SourceDataError on bad input.

    Readings from API pages (NGSI-LD temporal, NGSI v2, OpenAQ) are written once per snapshot as
    Parquet under `cache_dir` (default: the system's temporary folder), so that they load through
    the same SQL as a Parquet source."""
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
        if snapshot.paged:
            path, canonical = readings_from_pages(source, snapshot, cache_dir)
            return ParsedSource(canonical, snapshot, "core_readings", None, {}, readings_path=path)
        if source.resolved_format != "parquet":
            raise SourceDataError(name, "readings are read from Parquet or from API pages", source_id=source.id)
        return ParsedSource(source, snapshot, "core_readings", None, {})
    raise AssertionError(source.target)


def readings_from_pages(source: SourceConfig, snapshot: Snapshot,
                        cache_dir: Path | None) -> tuple[Path, SourceConfig]:
    """The readings of a paged snapshot as Parquet (station_id, observed_at, code, value), made once
    per snapshot and parser version, and the source with its mapping pointed at those columns."""
    from sources.parsers.readings import read_reading_pages

    assert source.readings is not None
    folder = cache_dir or Path(tempfile.gettempdir()) / "citykpi-readings"
    path = folder / f"{snapshot.snapshot_id}-v{LOAD_FORMAT_VERSION}.parquet"  # <city>/<source>/<hash>-vN
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        frame = read_reading_pages(snapshot, source).select("station_id", "observed_at", "code", "value")
        staging = path.with_name(f".{path.name}.{os.getpid()}")
        frame.write_parquet(staging)
        os.replace(staging, path)  # complete or absent, never half-written
    canonical = source.model_copy(update={"readings": source.readings.model_copy(update={
        "station_field": "station_id", "time_field": "observed_at", "variable_field": "code",
        "value_field": "value"})})
    return path, canonical


# Bump when parsing or mapping changes what a snapshot loads as: every source is then replaced once.
LOAD_FORMAT_VERSION = 1
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

    @property
    def sources_changed(self) -> bool:
        return bool(self.changed or self.regroup)


def plan_reports(plan: LoadPlan) -> dict[str, dict[str, Any]]:
    """Per-source reports of a load that has nothing to do."""
    return {s.id: {"unchanged": True, "snapshot_id": plan.previous[s.id].snapshot_id} for s in plan.unchanged}


def source_states(con: duckdb.DuckDBPyConnection, city_id: str) -> dict[str, SourceState]:
    rows = con.execute("SELECT source_id, snapshot_id, config_sha256 FROM core_source_state WHERE city_id = ?",
                       [city_id]).fetchall()
    return {source_id: SourceState(snapshot_id, config) for source_id, snapshot_id, config in rows}


def _groups_match_rows(con: duckdb.DuckDBPyConnection, city_id: str, source_id: str) -> bool:
    """The aggregates cover exactly the source's rows (both counts come from metadata and zone maps)."""
    grouped = scalar(con, "SELECT coalesce(sum(n), 0) FROM core_readings_groups WHERE city_id = ? AND source_id = ?",
                     [city_id, source_id])
    rows = scalar(con, "SELECT count(*) FROM core_readings WHERE city_id = ? AND source_id = ?", [city_id, source_id])
    return int(grouped or 0) == int(rows or 0)  # type: ignore[call-overload]


def plan_load(con: duckdb.DuckDBPyConnection, loaded: LoadedConfig, snapshots: dict[str, Snapshot]) -> LoadPlan:
    previous = source_states(con, loaded.city_id)
    plan = LoadPlan([], [], [], previous, {})
    for source in loaded.config.sources:
        fingerprint = plan.fingerprints[source.id] = source_fingerprint(source)
        state = previous.get(source.id)
        if state is None or state.snapshot_id != snapshots[source.id].snapshot_id \
                or state.config_sha256 != fingerprint:
            plan.changed.append(source)
            continue
        plan.unchanged.append(source)
        if source.target == "readings" and not _groups_match_rows(con, loaded.city_id, source.id):
            plan.regroup.append(source.id)
    return plan


@dataclass
class LoadChange:
    """What `write_changes` wrote: decides which derivations must run again."""

    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    other_sources_changed: bool = False       # a non-readings source was replaced
    readings_replaced: bool = False           # a readings source was replaced or regrouped
    touched: set[tuple[int, str, str | None]] = field(default_factory=set)  # (year, variable, data point) appended

    @property
    def wrote(self) -> bool:
        return self.other_sources_changed or self.readings_replaced or bool(self.touched)


def write_changes(con: duckdb.DuckDBPyConnection, loaded: LoadedConfig, plan: LoadPlan, parsed: list[ParsedSource]
                  ) -> LoadChange:
    """Write the parsed (changed) sources and refresh missing readings aggregates (call inside a transaction)."""
    city_id = loaded.city_id
    change = LoadChange()
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
            rows = item.report["readings"]
        else:
            replace_rows(con, city_id, item)
            change.other_sources_changed = True
            rows = item.frame.height if item.frame is not None else 0
        con.execute("""INSERT OR REPLACE INTO core_source_state
                       (city_id, source_id, snapshot_id, loaded_at, row_count, config_sha256)
                       VALUES (?, ?, ?, now(), ?, ?)""",
                    [city_id, source_id, item.snapshot.snapshot_id, rows, plan.fingerprints[source_id]])
        change.reports[source_id] = item.report
    for source_id in plan.regroup:
        rebuild_readings_groups(con, city_id, source_id)
        change.readings_replaced = True
        change.reports[source_id] = {"unchanged": True, "aggregates_rebuilt": True}
    for source_id, report in plan_reports(plan).items():
        change.reports.setdefault(source_id, report)
    return change


def replace_rows(con: duckdb.DuckDBPyConnection, city_id: str, item: ParsedSource) -> None:
    """Replace this city's rows of one small (non-readings) source."""
    con.execute(f"DELETE FROM {item.table} WHERE city_id = ? AND source_id = ?", [city_id, item.source.id])
    if item.frame is not None and item.frame.height:
        insert_frame(con, item.table, item.frame)


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
    mapping = source.readings
    assert mapping is not None
    return f"""src AS (
            SELECT CAST("{mapping.station_field}" AS VARCHAR) AS station_id,
                   CAST("{mapping.time_field}" AS TIMESTAMPTZ) AS observed_at,
                   CAST("{mapping.variable_field}" AS VARCHAR) AS code,
                   TRY_CAST("{mapping.value_field}" AS DOUBLE) AS value,
                   "{mapping.value_field}" AS raw_value
            FROM read_parquet(?))"""


def _readings_sql(source: SourceConfig) -> tuple[str, list[Any]]:
    """SELECT producing canonical readings from the snapshot's Parquet, streamed by DuckDB. Parameters:
    the codes, then the Parquet path. The value expression is the one every checksum hashes."""
    codes, params = _codes_cte(source)
    sql = f"""
        WITH {codes}, {_src_cte(source)}
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
    return _report_from_codes(source, rows)


def _report_from_codes(source: SourceConfig, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """rows: (code, rows read, empty values) per code of the file."""
    mapping = source.readings
    assert mapping is not None
    unmapped: dict[str, int] = {}
    for code, n, _ in rows:
        if code not in mapping.variables:
            unmapped[code] = unmapped.get(code, 0) + int(n)
    return {"rows_read": sum(int(n) for _, n, _ in rows), "empty_values": sum(int(e) for _, _, e in rows),
            "unmapped_codes": dict(sorted(unmapped.items(), key=lambda kv: str(kv[0])))}


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
    item.report = {"mode": "replace", **_readings_report(con, path, item.source), **item.report}
    con.execute("DELETE FROM core_readings WHERE city_id = ? AND source_id = ?", [city_id, source_id])
    sql, params = _readings_sql(item.source)
    con.execute(f"""INSERT INTO core_readings
        SELECT ?, station_id, observed_at, variable, data_point, value, ?, ? FROM ({sql})""",
                [city_id, source_id, item.snapshot.snapshot_id, *params, str(path)])
    rebuild_readings_groups(con, city_id, source_id)
    item.report["readings"] = int(scalar(  # type: ignore[call-overload]
        con, "SELECT count(*) FROM core_readings WHERE city_id = ? AND source_id = ?", [city_id, source_id]) or 0)


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
                   count(value) AS n, count(*) - count(observed_at) AS untimed,
                   coalesce(sum(hash(observed_at, value * {factor})) FILTER (WHERE value IS NOT NULL), 0) AS checksum
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
            con.execute(f"DROP TABLE IF EXISTS {name}")
    except duckdb.Error:
        pass


def _verify_and_append(con: duckdb.DuckDBPyConnection, city_id: str, item: ParsedSource
                       ) -> set[tuple[int, str, str | None]] | None:
    source_id = item.source.id
    codes = con.execute("SELECT code, sum(rows_read), sum(empty) FROM _scan GROUP BY ALL ORDER BY ALL").fetchall()
    item.report = {**_report_from_codes(item.source, codes), **item.report}
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
        columns = ", ".join(f'"{c}"' for c in frame.columns)
        con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _incoming")
    finally:
        con.unregister("_incoming")


_CONFLICT_KEY = ("year", "variable", "data_point", "area_type", "area_id")
_CONFLICT_COLUMNS = (*_CONFLICT_KEY, "source_id", "source_record")


def check_cross_source_conflicts(parsed: list[ParsedSource], stored: pl.DataFrame | None = None) -> None:
    """Two sources of one city publishing the same observation is an error naming both. `stored`: the
    rows of observation sources that were not re-parsed (unchanged)."""
    frames = [p.frame.select(_CONFLICT_COLUMNS) for p in parsed
              if p.table == "observations" and p.frame is not None and p.frame.height]
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
