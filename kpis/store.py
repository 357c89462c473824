"""Compute a city's indicator values from the warehouse and store them (one transaction)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import duckdb
import polars as pl

from kpis.engine import compute_kpi_values
from warehouse.db import transaction
from warehouse.load import insert_frame

# Rows as the engine needs them. `failed_check` (migration 0002) names the blocking quality checks a
# row failed; the engine makes every KPI using such a row `failed_check` with that reason. A row with
# NULLs where the migrations forbid them only exists if the warehouse was altered by hand; the
# quality check `observations.not_null` reports and marks it. Rows without a year or variable cannot
# feed any KPI and are left out; other NULLs become NaN/'' so that the marked row still reaches
# the engine (and its KPIs become failed_check instead of silently missing).
_OBSERVATION_COLUMNS = """
    city_id, year, variable, data_point, coalesce(area_type, '') AS area_type, coalesce(area_id, '') AS area_id,
    coalesce(value, 'NaN'::DOUBLE) AS value, coalesce(unit, '') AS unit, source_value, source_unit,
    coalesce(source_id, '') AS source_id, snapshot_id, coalesce(source_record, '') AS source_record, derivation,
    failed_check"""

_ORDER = ("city_id, year, variable, data_point, area_type, area_id, value, unit, source_value, source_unit, "
          "source_id, snapshot_id, source_record, derivation, failed_check")


def read_observations(con: duckdb.DuckDBPyConnection, city_id: str) -> pl.DataFrame:
    # Marked rows last: when two rows compete for one input (a duplicate key, a row whose area_id
    # is NULL), the engine keeps the last, so a failure is never hidden behind a clean twin.
    table = con.sql(f"""SELECT {_OBSERVATION_COLUMNS} FROM observations
                        WHERE city_id = ? AND year IS NOT NULL AND variable IS NOT NULL
                        ORDER BY failed_check IS NOT NULL, {_ORDER}""", params=[city_id]).to_arrow_table()
    return pl.from_arrow(table)  # type: ignore[return-value]


def read_withheld(con: duckdb.DuckDBPyConnection, city_id: str) -> pl.DataFrame:
    """Why values of the city were withheld, named in missing rows: by derivations (core_withheld,
    migration 0006) and by the loads' own rules (an aggregate with too few periods: the
    `withheld_values` of each source's stored load report, migration 0007)."""
    table = con.sql("""SELECT DISTINCT city_id, year, variable, data_point, reason FROM core_withheld
                       WHERE city_id = ? ORDER BY ALL""", params=[city_id]).to_arrow_table()
    derived: pl.DataFrame = pl.from_arrow(table)  # type: ignore[assignment]
    loaded = [{"city_id": city_id, "year": int(w["year"]), "variable": str(w["variable"]),
               "data_point": w.get("data_point"), "reason": str(w["reason"])}
              for (report,) in con.execute("SELECT load_report FROM core_source_state WHERE city_id = ? "
                                           "ORDER BY source_id", [city_id]).fetchall() if report
              for w in json.loads(report).get("withheld_values", []) if isinstance(w, dict)]
    if not loaded:
        return derived
    return pl.concat([derived, pl.DataFrame(loaded, schema=derived.schema)]).unique(maintain_order=True)


def compute_and_store(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int], run_id: str, *,
                      only_these_years: bool = False) -> pl.DataFrame:
    """Compute the city's kpi_values for `years` and store them in one transaction; returns the rows.

    By default the city's rows of every year are replaced (a whole-city run). With
    `only_these_years` exactly the rows of `years` are replaced and other years stay (a city-year
    partition run), so re-running a partition is idempotent."""
    values = compute_values(city_id, years, *read_inputs(con, city_id))
    store_values(con, city_id, years, run_id, values, only_these_years=only_these_years)
    return values


def read_inputs(con: duckdb.DuckDBPyConnection, city_id: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """What compute_values reads of the warehouse: the city's observations and why values were withheld."""
    return read_observations(con, city_id), read_withheld(con, city_id)


def compute_values(city_id: str, years: Sequence[int], observations: pl.DataFrame, withheld: pl.DataFrame
                   ) -> pl.DataFrame:
    """The city's kpi_values rows from its inputs: plain values in, plain values out (a worker process
    computes them while the run's process stores another city's)."""
    return compute_kpi_values(observations, {city_id: list(years)}, withheld=withheld)


def store_values(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int], run_id: str,
                 values: pl.DataFrame, *, only_these_years: bool = False) -> None:
    """Replace the city's rows (of `years` with `only_these_years`) by `values`, in one transaction."""
    with transaction(con):
        _replace_values(con, [(city_id, years if only_these_years else None, values)], run_id)


def store_values_many(con: duckdb.DuckDBPyConnection, cities: Sequence[tuple[str, Sequence[int] | None, pl.DataFrame]],
                      run_id: str) -> None:
    """store_values for several cities (city, years to replace or None for all its rows, values) inside
    the caller's transaction: one DELETE for the whole cities, one per city-year entry, and one INSERT
    for all of them (instead of a DELETE, an INSERT and a commit per city)."""
    _replace_values(con, cities, run_id)


def _replace_values(con: duckdb.DuckDBPyConnection, cities: Sequence[tuple[str, Sequence[int] | None, pl.DataFrame]],
                    run_id: str) -> None:
    for city_id, _, values in cities:
        others = values.filter(pl.col("city_id") != city_id)
        if others.height:
            raise ValueError(f"kpi_values: rows of city {others['city_id'][0]!r} given to store_values for {city_id!r}")
    whole = [city_id for city_id, years, _ in cities if years is None]
    if whole:
        con.execute("DELETE FROM kpi_values WHERE list_contains(?, city_id)", [whole])
    for city_id, years, _ in cities:
        if years is not None:
            con.execute("DELETE FROM kpi_values WHERE city_id = ? AND list_contains(?, year)", [city_id, list(years)])
    rows = [values for _, _, values in cities if values.height]
    if rows:
        insert_frame(con, "kpi_values", pl.concat(rows, how="vertical").with_columns(pl.lit(run_id).alias("run_id")))


def cities_with_kpi_values(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Cities that have indicator rows in the warehouse (what a release can hold)."""
    return [row[0] for row in con.execute("SELECT DISTINCT city_id FROM kpi_values ORDER BY 1").fetchall()]
