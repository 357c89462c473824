"""Benchmarking in the warehouse (migration 0003, store_scores in one transaction, release frames)
and the City Snapshot data for the report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
import yaml

from kpis.benchmarking.progress import assess_all
from kpis.benchmarking.scoring import score_release
from kpis.benchmarking.snapshot import city_snapshot, compare_cities
from kpis.benchmarking.store import benchmark_and_store, read_kpi_values, release_frames, store_scores
from kpis.benchmarking.targets import load_targets
from kpis.catalogue import indicators_by_id
from sources.config import LoadedConfig, load_city_config
from warehouse.db import connect
from warehouse.load import insert_frame

TABLES = ("kpi_scores", "kpi_rollups", "kpi_progress")


def kpi_values(city: str, values: dict[tuple[str, str | None], dict[int, float | None]]) -> pl.DataFrame:
    """kpi_values rows as the warehouse holds them: {(indicator, data point): {year: value}}."""
    catalogue = indicators_by_id()
    rows: list[dict[str, Any]] = []
    for (ind, dp), by_year in values.items():
        for year, value in by_year.items():
            rows.append({"city_id": city, "year": year, "indicator_id": ind, "framework": catalogue[ind].framework,
                         "data_point": dp, "value": value, "unit": catalogue[ind].unit,
                         "status": "computed" if value is not None else "missing",
                         "status_reason": None if value is not None else "missing input(s): x",
                         "inputs": "[]", "run_id": "r0"})
    return pl.DataFrame(rows)


DEMO_VALUES: dict[tuple[str, str | None], dict[int, float | None]] = {
    ("EC:I:WS:1C", None): {2023: 99.0, 2024: 99.5},
    ("EC:I:WS:3C", None): {2023: 20.0, 2024: 19.0},                 # no default target: excluded
    ("EC:ICT:ICT:1C", None): {2023: 80.0, 2024: None},              # missing in 2024: excluded
    ("EN:EN:AQ:1C", "PM2.5"): {2023: 12.0, 2024: 11.0},
    ("EN:EN:AQ:1C", "NO2"): {2023: 30.0, 2024: 31.0},
    ("11.6.2", "PM2.5"): {2023: 12.0, 2024: 11.0},
    ("11.2.1", "total"): {2023: 60.0, 2024: 62.0},
    ("11.7.1", None): {2023: 30.0, 2024: 31.0},                     # no target: trend only
}


def loaded_city(tmp_path: Path, city_id: str = "test-city") -> LoadedConfig:
    config = {"config_version": 1,
              "city": {"id": city_id, "name": "Testville", "country": "DE", "reporting_years": [2023, 2024]},
              "sources": [{"id": "stats", "kind": "file", "location": "stats.csv", "target": "observations",
                           "observations": {"year_field": "Jahr", "variables": {
                               "Einwohner": {"variable": "population", "unit": "persons"}}}}]}
    path = tmp_path / f"{city_id}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_city_config(path, check_files=False)


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = connect(tmp_path / "warehouse.duckdb")
    yield connection
    connection.close()


def computed(values: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    targets = load_targets()
    scores, rollups, excluded = score_release(values, targets)
    return scores, excluded, rollups, assess_all(values, targets)


def counts(con: duckdb.DuckDBPyConnection, city: str) -> dict[str, int]:
    return {t: con.execute(f"SELECT count(*) FROM {t} WHERE city_id = ?", [city]).fetchone()[0]  # type: ignore[index]
            for t in TABLES}


# ---- store ------------------------------------------------------------------------------------


def test_migration_creates_the_benchmarking_tables(con: duckdb.DuckDBPyConnection) -> None:
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert set(TABLES) <= tables
    assert con.execute("SELECT name FROM schema_migrations WHERE version = 3").fetchone() == ("scores",)


def test_store_replaces_one_citys_rows_only(con: duckdb.DuckDBPyConnection) -> None:
    for city in ("a", "b"):
        scores, excluded, rollups, progress = computed(kpi_values(city, DEMO_VALUES).drop("inputs", "run_id"))
        written = store_scores(con, city, scores=scores, excluded=excluded, rollups=rollups, progress=progress,
                               run_id="r1")
        assert written == {"kpi_scores": scores.height + excluded.height, "kpi_rollups": rollups.height,
                           "kpi_progress": progress.height}
    before_b = counts(con, "b")
    smaller = kpi_values("a", {("EC:I:WS:1C", None): {2024: 90.0}}).drop("inputs", "run_id")
    scores, excluded, rollups, progress = computed(smaller)
    store_scores(con, "a", scores=scores, excluded=excluded, rollups=rollups, progress=progress, run_id="r2")
    assert counts(con, "a") == {"kpi_scores": 1, "kpi_rollups": rollups.height, "kpi_progress": 2}
    assert counts(con, "b") == before_b
    assert con.execute("SELECT DISTINCT run_id FROM kpi_scores WHERE city_id = 'a'").fetchall() == [("r2",)]


def test_store_is_one_transaction(con: duckdb.DuckDBPyConnection) -> None:
    scores, excluded, rollups, progress = computed(kpi_values("a", DEMO_VALUES).drop("inputs", "run_id"))
    store_scores(con, "a", scores=scores, excluded=excluded, rollups=rollups, progress=progress, run_id="r1")
    before = counts(con, "a")
    broken = progress.with_columns(pl.lit("bogus").alias("status"))  # violates the CHECK of the last table written
    # duckdb.Error: insert_frame's unregister in the aborted transaction replaces the ConstraintException
    with pytest.raises(duckdb.Error):
        store_scores(con, "a", scores=scores.head(1), excluded=excluded.head(0), rollups=rollups.head(0),
                     progress=broken, run_id="r2")
    assert counts(con, "a") == before
    assert con.execute("SELECT DISTINCT run_id FROM kpi_rollups").fetchall() == [("r1",)]


def test_store_refuses_rows_of_another_city(con: duckdb.DuckDBPyConnection) -> None:
    scores, excluded, rollups, progress = computed(kpi_values("a", DEMO_VALUES).drop("inputs", "run_id"))
    with pytest.raises(ValueError, match="rows of city 'a' given to store_scores for 'b'"):
        store_scores(con, "b", scores=scores, excluded=excluded, rollups=rollups, progress=progress, run_id="r")


def test_benchmark_and_store_uses_the_citys_own_targets(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    loaded = loaded_city(tmp_path)
    (tmp_path / "test-city.targets.csv").write_text(
        "indicator_id,data_point,target,direction,worst,deadline,source\n"
        "EC:I:WS:3C,,10,lower,50,2030,Water utility strategy 2022\n", encoding="utf-8")
    insert_frame(con, "kpi_values", kpi_values("test-city", DEMO_VALUES))
    summary = benchmark_and_store(con, "test-city", load_targets(loaded.targets_path), "r1")
    # WS:1C, WS:3C (city target), PM2.5 and NO2 in both years, ICT:1C in 2023 only (missing in 2024)
    assert (summary["scored"], summary["excluded"]) == (9, 1)
    frames = release_frames(con, ["test-city"])
    loss = frames["kpi_scores"].filter((pl.col("indicator_id") == "EC:I:WS:3C") & (pl.col("year") == 2024)).row(
        0, named=True)
    # (50 - 19) / (50 - 10) = 77.5 % -> 3 points, from the city's table
    assert (loss["share_pct"], loss["points"], loss["target_source"]) == (
        77.5, 3, f"city: {tmp_path / 'test-city.targets.csv'}")
    assert summary["progress_trend_only"] >= 1


def test_read_kpi_values_and_release_frames_are_run_independent(con: duckdb.DuckDBPyConnection) -> None:
    insert_frame(con, "kpi_values", kpi_values("test-city", DEMO_VALUES))
    assert read_kpi_values(con, "test-city").height == sum(len(v) for v in DEMO_VALUES.values())
    benchmark_and_store(con, "test-city", load_targets(), "r1")
    first = release_frames(con, ["test-city"])
    benchmark_and_store(con, "test-city", load_targets(), "r2")
    second = release_frames(con, ["test-city"])
    for table in TABLES:
        assert "run_id" not in first[table].columns and "computed_at" not in first[table].columns
        assert first[table].equals(second[table]), table
    assert release_frames(con, ["nobody"])["kpi_scores"].height == 0


# ---- snapshot ---------------------------------------------------------------------------------


def snapshot_inputs(*cities: str) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    frames = [computed(kpi_values(c, DEMO_VALUES).drop("inputs", "run_id")) for c in cities]
    return tuple(pl.concat([f[i] for f in frames]) for i in range(4))  # type: ignore[return-value]


def test_city_snapshot_nests_bands_in_the_hierarchy_with_progress_arrows() -> None:
    scores, excluded, rollups, progress = snapshot_inputs("a")
    snap = city_snapshot(scores, rollups, progress, excluded=excluded)
    json.dumps(snap)  # plain data
    assert (snap["city_id"], snap["year"], snap["progress_method"]) == ("a", 2024, "un")
    assert "NOT the official U4SSC benchmarks" in snap["disclaimer"]
    assert [d["name"] for d in snap["dimensions"]] == ["Economy", "Environment", "Society and Culture"]
    economy = snap["dimensions"][0]
    assert [s["name"] for s in economy["subdimensions"]] == ["ICT", "Productivity", "Infrastructure"]
    water = next(c for c in economy["subdimensions"][2]["categories"] if c["name"] == "Water and Sanitation")
    assert [k["indicator_id"] for k in water["kpis"]] == ["EC:I:WS:1C"]
    assert (water["kpis"][0]["points"], water["score_pct"], water["n_kpis"]) == (4, 100.0, 5)
    air = snap["dimensions"][1]["subdimensions"][0]["categories"][0]
    # PM2.5 11: (35 - 11) / 30 = 80 % -> 3; NO2 31: (40 - 31) / 30 = 30 % -> 1; the KPI counts (3 + 1) / 2 = 2
    assert [(k["data_point"], k["points"]) for k in air["kpis"]] == [("PM2.5", 3), ("NO2", 1)]
    assert air["score_pct"] == 50.0
    assert snap["dimensions"][2]["score_pct"] is None  # nothing scored in Society and Culture
    assert {e["indicator_id"] for e in snap["excluded"]} >= {"EC:I:WS:3C", "EC:ICT:ICT:1C"}
    arrows = {(p["indicator_id"], p["data_point"]): (p["status"], p["arrow"], p["tone"]) for p in snap["progress"]}
    assert set(k[0] for k in arrows) == {"11.6.2", "11.2.1", "11.7.1"}  # SDG 11 only
    assert arrows["11.7.1", None] == ("trend_only", "↑", "neutral")
    assert arrows["11.6.2", "PM2.5"][0] in ("on_track", "acceleration_needed", "limited_progress")


def test_snapshot_of_several_cities_needs_a_city_and_compare_cities_lines_them_up() -> None:
    scores, _, rollups, progress = snapshot_inputs("a", "b")
    with pytest.raises(ValueError, match="several cities"):
        city_snapshot(scores, rollups, progress)
    assert city_snapshot(scores, rollups, progress, city_id="b", year=2023)["year"] == 2023
    side = compare_cities(rollups)
    assert side.columns == ["group_path", "a", "b"]
    assert side["group_path"].to_list() == ["Economy", "Environment", "Society and Culture"]
    assert side.row(0) == ("Economy", 100.0, 100.0)
    categories = compare_cities(rollups, level="category", year=2023)
    assert categories.height == 27 and categories["group_path"][0] == "Economy / ICT / ICT Infrastructure"
