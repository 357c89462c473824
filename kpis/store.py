"""Compute a city's indicator values from the warehouse and store them (one transaction)."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import polars as pl

from kpis.engine import compute_kpi_values
from warehouse.db import transaction
from warehouse.load import insert_frame


def read_observations(con: duckdb.DuckDBPyConnection, city_id: str) -> pl.DataFrame:
    table = con.sql("SELECT * FROM observations WHERE city_id = ? ORDER BY ALL", params=[city_id]).to_arrow_table()
    return pl.from_arrow(table)  # type: ignore[return-value]


def compute_and_store(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int], run_id: str) -> pl.DataFrame:
    """Replace the city's kpi_values with a fresh computation; returns the rows written."""
    values = compute_kpi_values(read_observations(con, city_id), {city_id: list(years)})
    with transaction(con):
        con.execute("DELETE FROM kpi_values WHERE city_id = ?", [city_id])
        insert_frame(con, "kpi_values", values.with_columns(pl.lit(run_id).alias("run_id")))
    return values
