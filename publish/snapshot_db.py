"""citykpi.duckdb: a read-only DuckDB database per release for dashboards (role `duckdb_snapshot`).

Dashboards must never meet the warehouse's writer lock, so they read releases instead: each
release has this small database, and `<home>/releases/latest/citykpi.duckdb` is always a complete
one. The stable SQL interface (tables, views, columns) is documented in docs/sql-interface.md.

Why tables and not views over the Parquet files: DuckDB resolves a relative path in a view
against the reader's working directory, and an absolute path breaks when a release is copied or
served elsewhere. The release's rows are small (hundreds per city and year), so the database holds
its own copy and works from anywhere; kpi_values.parquet holds the same rows.

Written with storage version v1.0.0 so that DuckDB 1.x clients (Superset's, Evidence's, older
notebooks) can open it too.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import duckdb
import polars as pl

from canonical.sqltext import ident, literal
from kpis.catalogue import Indicator
from publish import FileEntry, PublishContext, file_entry
from publish.datapackage import indicator_rows

NAME = "citykpi.duckdb"
ROLE = "duckdb_snapshot"
STORAGE_VERSION = "v1.0.0"
INTERFACE_VERSION = 1  # bump when a table, view or column of docs/sql-interface.md changes incompatibly

# `date` stands for the reporting year as a DATE, 1 January (docs/sql-interface.md#dates says why): time-series
# charts need a temporal column, and 1 January sits on the year's axis tick and survives date_trunc('year').
YEAR_DATE = "make_date(v.year, 1, 1)"

VIEWS = {
    # One row per indicator value with its names: what most dashboard tiles need. `direction` is the data
    # point's own direction where the catalogue gives one (mode shares), else the indicator's.
    "kpi_report": f"""
        SELECT v.city_id, c.name AS city_name, v.year, v.framework, v.indicator_id, i.name AS indicator_name,
               i.dimension, i.type AS kpi_type, v.data_point, v.value, v.unit, v.status, v.status_reason,
               {YEAR_DATE} AS date,
               coalesce(json_extract_string(i.data_point_directions,
                                            '$."' || replace(v.data_point, '"', '\\"') || '"'),
                        i.direction) AS direction
        FROM kpi_values v JOIN indicators i ON i.indicator_id = v.indicator_id JOIN cities c USING (city_id)""",
    # Share of indicator rows with a value per city, year and group (a U4SSC dimension or 'SDG 11').
    "coverage": f"""
        SELECT v.city_id, v.year, coalesce(i.dimension, 'SDG 11') AS dimension_group,
               count(*) AS indicator_rows, count(*) FILTER (WHERE v.status = 'computed') AS computed_rows,
               round(100.0 * count(*) FILTER (WHERE v.status = 'computed') / count(*), 1) AS computed_percent,
               {YEAR_DATE} AS date
        FROM kpi_values v JOIN indicators i ON i.indicator_id = v.indicator_id
        GROUP BY ALL ORDER BY ALL""",
}


def _catalogue_frame(catalogue: Sequence[Indicator]) -> pl.DataFrame:
    # data_point_directions as JSON text: a struct would get one field per data point of every indicator.
    rows = [{**row, "data_point_directions": json.dumps(row["data_point_directions"], ensure_ascii=False)}
            for row in indicator_rows(catalogue)]
    return pl.DataFrame(rows, schema_overrides={"data_points": pl.List(pl.String),
                                                "sdg_targets": pl.List(pl.String)}).rename({"id": "indicator_id"})


def _cities_frame(context: PublishContext) -> pl.DataFrame:
    return pl.DataFrame({"city_id": [c.id for c in context.cities], "name": [c.name for c in context.cities],
                         "country": [c.country for c in context.cities],
                         "reporting_years": [list(c.reporting_years) for c in context.cities]},
                        schema={"city_id": pl.String, "name": pl.String, "country": pl.String,
                                "reporting_years": pl.List(pl.Int32)})


def _release_frame(frame: pl.DataFrame, context: PublishContext) -> pl.DataFrame:
    previous = context.previous.release_id if context.previous else None
    return pl.DataFrame({"release_id": [context.release_id], "created_at": [context.created_at],
                         "previous_release_id": [previous], "kpi_rows": [frame.height],
                         "interface_version": [INTERFACE_VERSION]},
                        schema={"release_id": pl.String, "created_at": pl.String, "previous_release_id": pl.String,
                                "kpi_rows": pl.Int64, "interface_version": pl.Int32})


MEMORY_LIMIT = "256MB"
SLICE_ROWS = 100_000


def _write_table(con: duckdb.DuckDBPyConnection, name: str, table: pl.DataFrame) -> None:
    """`table` as the snapshot's table `name`, SLICE_ROWS rows at a time, each slice checkpointed."""
    for start in range(0, max(table.height, 1), SLICE_ROWS):
        con.register("_slice", table.slice(start, SLICE_ROWS).to_arrow())
        try:
            if start == 0:
                con.execute(f"CREATE TABLE {ident(name)} AS SELECT * FROM _slice")
            else:
                con.execute(f"INSERT INTO {ident(name)} SELECT * FROM _slice")
        finally:
            con.unregister("_slice")
        con.execute("CHECKPOINT snapshot")


def write_snapshot_db(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext,
                      folder: Path) -> list[FileEntry]:
    tables = {"kpi_values": frame, "indicators": _catalogue_frame(catalogue), "cities": _cities_frame(context),
              "release": _release_frame(frame, context)}
    # kpi_scores, kpi_rollups, kpi_progress: the same rows as the release's score files.
    tables.update(context.benchmarks or {})
    with tempfile.TemporaryDirectory(prefix=".snapshot-spill-", dir=folder.parent) as spill:
        # DuckDB holds a new table in memory until a checkpoint: the tables go in slices, each checkpointed,
        # under a small memory limit (1,000 cities' kpi_values in one statement added 0.9 GB to the peak).
        con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "temp_directory": spill})
        try:
            con.execute(f"ATTACH {literal(str(folder / NAME))} AS snapshot (STORAGE_VERSION '{STORAGE_VERSION}')")
            con.execute("USE snapshot")  # unqualified names, so the views work whatever name a reader attaches it as
            for name, table in tables.items():
                _write_table(con, name, table)
            for name, sql in VIEWS.items():
                con.execute(f"CREATE VIEW {ident(name)} AS {sql}")
            con.execute("USE memory")
            con.execute("DETACH snapshot")  # checkpoints: no .wal file is left beside the database
        finally:
            con.close()
    return [file_entry(folder, NAME, ROLE, "read-only DuckDB database for dashboards: tables "
                                           f"{', '.join(tables)} and views {', '.join(VIEWS)} "
                                           "(docs/sql-interface.md)")]
