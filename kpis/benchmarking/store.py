"""Benchmarking in the warehouse: compute a city's scores and progress, store them, read them back.

Tables from `warehouse/migrations/0003_scores.sql`: kpi_scores, kpi_rollups, kpi_progress.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import polars as pl

from canonical.sqltext import ident
from kpis.benchmarking.progress import assess_all
from kpis.benchmarking.scoring import score_release
from kpis.catalogue import load_catalogue
from warehouse.db import transaction
from warehouse.load import insert_frame

TABLES = ("kpi_scores", "kpi_rollups", "kpi_progress")
# Release files read these columns only (no run_id / computed_at), so equal inputs give equal bytes.
RELEASE_ORDER = {
    "kpi_scores": "city_id, year, indicator_id, data_point NULLS FIRST",
    "kpi_rollups": "city_id, year, level, group_path",
    "kpi_progress": "city_id, framework, indicator_id, data_point NULLS FIRST, method",
}


def read_kpi_values(con: duckdb.DuckDBPyConnection, city_id: str) -> pl.DataFrame:
    """Every kpi_values row of one city (all years: progress needs the series)."""
    table = con.sql("""SELECT city_id, year, framework, indicator_id, data_point, value, unit, status, status_reason
                       FROM kpi_values WHERE city_id = ? ORDER BY year, indicator_id, data_point NULLS FIRST""",
                    params=[city_id]).to_arrow_table()
    return pl.from_arrow(table)  # type: ignore[return-value]


def store_scores(con: duckdb.DuckDBPyConnection, city_id: str, *, scores: pl.DataFrame, excluded: pl.DataFrame,
                 rollups: pl.DataFrame, progress: pl.DataFrame, run_id: str,
                 years: Sequence[int] | None = None) -> dict[str, int]:
    """Replace one city's rows in kpi_scores (scored + excluded), kpi_rollups and kpi_progress, in one
    transaction. Every frame must hold only that city's rows. Returns rows written per table.

    With `years`, only those years' rows of kpi_scores and kpi_rollups are replaced (a city-year
    partition); kpi_progress spans the years, so the city's progress rows are always replaced."""
    frames = _score_frames(city_id, scores, excluded, rollups, progress, years)
    with transaction(con):
        _replace_score_rows(con, [(city_id, years, frames)], run_id)
    return {table: frame.height for table, frame in frames.items()}


ScoreFrames = dict[str, pl.DataFrame]  # table -> one city's rows to store


def _score_frames(city_id: str, scores: pl.DataFrame, excluded: pl.DataFrame, rollups: pl.DataFrame,
                  progress: pl.DataFrame, years: Sequence[int] | None) -> ScoreFrames:
    frames = {"kpi_scores": pl.concat([scores, excluded]), "kpi_rollups": rollups, "kpi_progress": progress}
    if years is not None:
        for table in ("kpi_scores", "kpi_rollups"):
            frames[table] = frames[table].filter(pl.col("year").is_in(list(years)))
    for table, frame in frames.items():
        others = frame.filter(pl.col("city_id") != city_id)
        if others.height:
            raise ValueError(f"{table}: rows of city {others['city_id'][0]!r} given to store_scores for {city_id!r}")
    return frames


def _replace_score_rows(con: duckdb.DuckDBPyConnection, cities: Sequence[tuple[str, Sequence[int] | None, ScoreFrames]],
                        run_id: str) -> None:
    """Each city's rows replaced (inside the caller's transaction): one DELETE per table for the whole
    cities, one per city-year entry, and one INSERT per table for all of them."""
    whole = [city_id for city_id, years, _ in cities if years is None]
    for table in TABLES:
        if whole:
            con.execute(f"DELETE FROM {ident(table)} WHERE list_contains(?, city_id)", [whole])
        for city_id, years, _ in cities:
            if years is None:
                continue
            if table == "kpi_progress":
                con.execute(f"DELETE FROM {ident(table)} WHERE city_id = ?", [city_id])
            else:
                con.execute(f"DELETE FROM {ident(table)} WHERE city_id = ? AND list_contains(?, year)",
                            [city_id, list(years)])
        rows = [frames[table] for _, _, frames in cities if frames[table].height]
        if rows:
            insert_frame(con, table, pl.concat(rows, how="vertical").with_columns(pl.lit(run_id).alias("run_id")))


def benchmark_and_store(con: duckdb.DuckDBPyConnection, city_id: str, targets: pl.DataFrame, run_id: str,
                        years: Sequence[int] | None = None) -> dict[str, int]:
    """The pipeline step: scores, roll-ups and both progress methods over the city's kpi_values
    against `targets` (the targets in force for the city: `targets.load_targets`), stored (only
    `years` of the scores and roll-ups when given). Returns counts for the run summary."""
    return store_scored(con, city_id, score_values(read_kpi_values(con, city_id), targets), run_id, years)


Scored = tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]  # scores, rollups, excluded, progress


def score_values(values: pl.DataFrame, targets: pl.DataFrame) -> Scored:
    """Scores, roll-ups, exclusions and progress of a city's kpi_values: plain values in, plain values
    out (a worker process makes them while the run's process stores another city's)."""
    scores, rollups, excluded = score_release(values, targets, load_catalogue())
    return scores, rollups, excluded, assess_all(values, targets)


def store_scored(con: duckdb.DuckDBPyConnection, city_id: str, scored: Scored, run_id: str,
                 years: Sequence[int] | None = None) -> dict[str, int]:
    """Store what score_values made (only `years` of the scores and roll-ups when given); the counts
    for the run summary."""
    scores, rollups, excluded, progress = scored
    store_scores(con, city_id, scores=scores, excluded=excluded, rollups=rollups, progress=progress,
                 run_id=run_id, years=years)
    return scored_counts(scored, years)


def store_scored_many(con: duckdb.DuckDBPyConnection, cities: Sequence[tuple[str, Scored, Sequence[int] | None]],
                      run_id: str) -> None:
    """store_scored for several cities (city, what score_values made, years or None) inside the caller's
    transaction: a few statements for all of them instead of seven a city (storing them one by one was
    most of the scores stage of 1,000 cities, in the run's process while the workers waited)."""
    _replace_score_rows(con, [(city_id, years, _score_frames(city_id, scores, excluded, rollups, progress, years))
                              for city_id, (scores, rollups, excluded, progress), years in cities], run_id)


def scored_counts(scored: Scored, years: Sequence[int] | None = None) -> dict[str, int]:
    """The run summary's counts of what score_values made (of `years` when given)."""
    scores, _, excluded, progress = scored
    if years is not None:
        scores = scores.filter(pl.col("year").is_in(list(years)))
        excluded = excluded.filter(pl.col("year").is_in(list(years)))
    return {"scored": scores.height, "excluded": excluded.height,
            **{f"progress_{s}": n for s, n in progress.filter(pl.col("method") == "un")
               .group_by("status").len().sort("status").iter_rows()}}


def release_frames(con: duckdb.DuckDBPyConnection, city_ids: list[str]) -> dict[str, pl.DataFrame]:
    """The benchmarking tables for a release: run-independent columns, stable order."""
    frames: dict[str, pl.DataFrame] = {}
    for table, order in RELEASE_ORDER.items():
        columns = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [table]).fetchall() if r[0] not in ("run_id", "computed_at")]
        listed = ", ".join(ident(c) for c in columns)
        arrow = con.sql(f"SELECT {listed} FROM {ident(table)} WHERE city_id IN (SELECT unnest(?)) ORDER BY {order}",
                        params=[city_ids]).to_arrow_table()
        frames[table] = pl.from_arrow(arrow)  # type: ignore[assignment]
    return frames
