"""Issue #9 end to end: the small demo city through `run_plain` gives a release with the benchmarking
tables (kpi_scores, kpi_rollups, kpi_progress) as Parquet and CSV under their roles, in the DuckDB
snapshot and the U4SSC workbook, and a City Snapshot section in the report. The PM2.5 score is
checked against a hand computation from the release's own value and the WHO 2021 target."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest
from conftest import SMALL_SCALE, run_cli, sha256_bytes, verify_release

from publish.releases import FILE_ROLES, Release
from publish.textcells import escape_frame
from warehouse.home import Home

SCORE_FILES = {"kpi_scores.parquet": "scores", "kpi_scores.csv": "scores", "kpi_rollups.parquet": "rollups",
               "kpi_rollups.csv": "rollups", "kpi_progress.parquet": "progress", "kpi_progress.csv": "progress"}
PM25 = ("EN:EN:AQ:1C", "PM2.5")
# The default table's PM2.5 row (docs/benchmarking.md): WHO AQG 2021 level 5 µg/m³, worst = interim target 1.
PM25_TARGET, PM25_WORST = 5.0, 35.0


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sources.demo.generator import generate_demo_city

    return generate_demo_city(tmp_path_factory.mktemp("bench") / "city", scale=SMALL_SCALE)


@pytest.fixture(scope="module")
def release(city: Path, tmp_path_factory: pytest.TempPathFactory) -> Release:
    from pipelines.steps import run_plain
    from sources.config import load_city_config

    home = Home(tmp_path_factory.mktemp("bench-home") / "home")
    return run_plain(home, [load_city_config(city)], run_id="bench-e2e").release


def test_release_lists_the_score_files_with_roles_and_hashes(release: Release) -> None:
    manifest = verify_release(release.path)  # every listed hash and size matches, SHA256SUMS too
    files = {f["path"]: f for f in manifest["files"]}
    assert {path: files[path]["role"] for path in SCORE_FILES} == SCORE_FILES
    assert {"scores", "rollups", "progress"} <= set(FILE_ROLES)
    for path in SCORE_FILES:
        assert files[path]["sha256"] == sha256_bytes(release.path / path)
        assert files[path]["description"]
    sums: dict[str, str] = {}
    for line in (release.path / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        sums[name] = digest
    assert {p: sums[p] for p in SCORE_FILES} == {p: files[p]["sha256"] for p in SCORE_FILES}
    for table in ("kpi_scores", "kpi_rollups", "kpi_progress"):
        parquet = pl.read_parquet(release.path / f"{table}.parquet")
        assert manifest["row_counts"][table] == parquet.height > 0
        assert "run_id" not in parquet.columns and "computed_at" not in parquet.columns
        assert set(parquet["city_id"]) == {"demo-city"}
        csv = pl.read_csv(release.path / f"{table}.csv", schema=parquet.schema)
        # Text a spreadsheet would read as a formula (`+0.00% a year ...`) is escaped in the CSV only.
        assert csv.equals(escape_frame(parquet)), f"{table}: CSV and Parquet differ"
    assert [f.name for f in release.files("scores")] == ["kpi_scores.parquet", "kpi_scores.csv"]


def _hand_share(value: float) -> float:
    return 100 * (PM25_WORST - value) / (PM25_WORST - PM25_TARGET)


def _hand_points(share: float) -> int:
    capped = min(max(share, 0.0), 100.0)
    return 4 if capped >= 95 else 3 if capped >= 66 else 2 if capped >= 33 else 1


def test_pm25_score_matches_a_hand_computation(release: Release) -> None:
    values = pl.read_parquet(release.path / "kpi_values.parquet").filter(
        pl.col("indicator_id") == PM25[0], pl.col("data_point") == PM25[1], pl.col("status") == "computed")
    scores = pl.read_parquet(release.path / "kpi_scores.parquet").filter(
        pl.col("indicator_id") == PM25[0], pl.col("data_point") == PM25[1])
    assert values.height >= 1
    assert scores["year"].to_list() == values["year"].to_list()
    for year, value in values.select("year", "value").iter_rows():
        row = scores.filter(pl.col("year") == year).row(0, named=True)
        share = _hand_share(value)
        assert row["status"] == "scored" and row["value"] == value
        assert (row["target"], row["worst"], row["direction"], row["deadline"]) == (PM25_TARGET, PM25_WORST,
                                                                                   "lower", 2030)
        assert row["share_pct"] == pytest.approx(share, abs=1e-9)
        assert row["share_capped_pct"] == pytest.approx(min(max(share, 0.0), 100.0), abs=1e-9)
        assert row["points"] == _hand_points(share)
        assert row["band"] == {1: "<33", 2: "33-66", 3: "66-95", 4: "95+"}[row["points"]]
        assert row["target_source"] == "default: kpis/targets/default.csv"
        assert "WHO" in row["target_citation"] and row["official_u4ssc_benchmark"] is False


def test_rollups_follow_the_points_of_the_scored_kpis(release: Release) -> None:
    scores = pl.read_parquet(release.path / "kpi_scores.parquet").filter(pl.col("status") == "scored")
    rollups = pl.read_parquet(release.path / "kpi_rollups.parquet")
    year = int(scores["year"].max())  # type: ignore[arg-type]
    # A KPI with several scored data points counts once, with the mean of their points.
    per_kpi = (scores.filter(pl.col("year") == year).group_by("dimension", "indicator_id")
               .agg(pl.col("points").mean()).group_by("dimension").agg(pl.col("points").sum(), pl.len()))
    for dimension, points, n in per_kpi.iter_rows():
        row = rollups.filter(pl.col("year") == year, pl.col("level") == "dimension",
                             pl.col("group_path") == dimension).row(0, named=True)
        assert (row["points_sum"], row["n_scored_kpis"], row["max_points"]) == pytest.approx((points, n, 4 * n))
        assert row["score_pct"] == pytest.approx(100 * points / (4 * n))


def test_snapshot_database_holds_the_three_tables(release: Release) -> None:
    con = duckdb.connect(str(release.path / "citykpi.duckdb"), read_only=True)
    try:
        for table in ("kpi_scores", "kpi_rollups", "kpi_progress"):
            in_db = con.sql(f"SELECT * FROM {table}").pl()
            assert in_db.equals(pl.read_parquet(release.path / f"{table}.parquet")), table
    finally:
        con.close()


def test_workbook_has_the_score_columns(release: Release) -> None:
    from publish.u4ssc_workbook import KPI_HEADER

    scores = pl.read_parquet(release.path / "kpi_scores.parquet")
    year = int(scores["year"].max())  # type: ignore[arg-type]
    wb = openpyxl.load_workbook(release.path / "u4ssc" / f"demo-city-{year}.xlsx")
    rows = list(wb["KPIs"].iter_rows(values_only=True))
    assert list(rows[0]) == KPI_HEADER
    assert KPI_HEADER[-6:] == ["Target", "Target source", "Share of target (%)", "Points", "Band", "Scoring note"]
    found = {(r[0], r[6] or None): dict(zip(KPI_HEADER, r, strict=True)) for r in rows[1:]}
    expected = scores.filter(pl.col("year") == year, pl.col("indicator_id") == PM25[0],
                             pl.col("data_point") == PM25[1]).row(0, named=True)
    pm25 = found[PM25]
    assert (pm25["Target"], pm25["Share of target (%)"], pm25["Points"], pm25["Band"]) == (
        PM25_TARGET, expected["share_capped_pct"], expected["points"], expected["band_label"])
    assert pm25["Target source"].startswith("default: kpis/targets/default.csv; WHO")
    assert "not the official U4SSC benchmark" in pm25["Scoring note"]
    # A KPI without a target is listed with the reason, never with points.
    excluded = scores.filter(pl.col("year") == year, pl.col("status") == "excluded").row(0, named=True)
    row = found[(excluded["indicator_id"], excluded["data_point"])]
    assert row["Points"] is None and row["Band"] == "N/A" and row["Scoring note"] == excluded["status_reason"]


def test_report_has_the_city_snapshot(release: Release) -> None:
    text = (release.path / "report.html").read_text(encoding="utf-8")
    assert '<section id="city-snapshot">' in text
    assert 'id="snapshot-demo-city"' in text and 'id="chart-bands-demo-city"' in text
    assert "NOT the official U4SSC benchmarks" in text
    assert "snapshot-comparison" not in text  # one city: nothing side by side
    assert re.search(r'<td class="arrow tone-\w+"', text), "no progress arrow"
    for label in ("Less than 33% of Target", "33-66% of Target", "66-95% of Target", "95%+ Target"):
        assert label in text


def test_score_files_are_byte_identical_on_a_second_publish(release: Release, city: Path) -> None:
    from pipelines.steps import publish
    from sources.config import load_city_config

    home = Home(release.path.parent.parent)
    again = publish(home, [load_city_config(city)], "bench-again")
    assert again.release_id != release.release_id
    first = {f["path"]: f["sha256"] for f in release.manifest["files"] if f["path"] in SCORE_FILES}
    second = {f["path"]: f["sha256"] for f in again.manifest["files"] if f["path"] in SCORE_FILES}
    assert first == second and len(first) == len(SCORE_FILES)
    assert again.manifest["content_sha256"] == release.manifest["content_sha256"]


def test_validate_reads_the_city_targets_table(city_copy: Path) -> None:
    table = city_copy.with_name("city.targets.csv")
    header = "indicator_id,data_point,target,direction,worst,deadline,official_u4ssc_benchmark,source,note\n"
    table.write_text(header + "EN:EN:AQ:1C,PM2.5,10,lower,35,2030,false,city clean air plan 2024,\n", encoding="utf-8")
    result = run_cli("validate", city_copy)
    assert result.returncode == 0, result
    assert "targets city.targets.csv" in result.stdout

    table.write_text(header + "EN:EN:AQ:1C,PM2.5,10,sideways,35,2030,false,city clean air plan 2024,\n",
                     encoding="utf-8")
    result = run_cli("validate", city_copy)
    assert result.returncode == 2, result
    problem = next(line for line in result.stderr.splitlines() if line.startswith("citykpi: error: "))
    assert str(table) in problem and "direction" in problem, result


def test_a_city_table_changes_the_released_score(release: Release, city: Path, tmp_path: Path) -> None:
    """The city's own PM2.5 target (beside its config) overrides the default row in the release."""
    from pipelines.steps import run_plain
    from sources.config import load_city_config

    own = tmp_path / "city"
    shutil.copytree(city.parent, own)
    (own / "city.targets.csv").write_text(
        "indicator_id,data_point,target,direction,worst,deadline,official_u4ssc_benchmark,source,note\n"
        "EN:EN:AQ:1C,PM2.5,10,lower,35,2030,false,city clean air plan 2024,\n", encoding="utf-8")
    result = run_plain(Home(tmp_path / "home"), [load_city_config(own / "city.yaml")], run_id="own-targets")
    scores = pl.read_csv(io.BytesIO((result.release.path / "kpi_scores.csv").read_bytes()),
                         infer_schema_length=None)
    row = scores.filter(pl.col("indicator_id") == PM25[0], pl.col("data_point") == PM25[1]).row(-1, named=True)
    assert row["target"] == 10 and row["target_source"].startswith("city: ")
    assert row["share_pct"] == pytest.approx(100 * (35 - row["value"]) / (35 - 10), abs=1e-9)
