"""A release with several cities: every format holds each city, and the report compares them.

`two_city_home` builds, once per test session, a home whose release holds the demo city and a
second demo city generated with another seed (its generated city.yaml renamed to twin-city /
Twinville). The notebooks test reads the same home.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest

from publish.releases import load_release
from warehouse.home import Home

SCALE = 0.1
TWIN_SEED = 7


def make_twin(config: Path, city_id: str, name: str) -> Path:
    """Rename a generated demo city (id and name in its city.yaml), so two can share one warehouse."""
    text = config.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^(\s+id:) demo-city\b", rf"\1 {city_id}", text, count=1)
    text = re.sub(r"(?m)^(\s+name:) Demoville\b", rf"\1 {name}", text, count=1)
    config.write_text(text, encoding="utf-8")
    return config


def two_city_home(base: Path) -> Home:
    """A home with one release holding demo-city and twin-city (built once under `base`)."""
    from pipelines.steps import run_plain
    from sources.config import load_city_config
    from sources.demo.generator import generate_demo_city

    root = base / "two-cities"
    home = Home(root / "home")
    if (root / "done").exists():
        return home
    first = generate_demo_city(root / "demo-city", scale=SCALE)
    second = make_twin(generate_demo_city(root / "twin-city", scale=SCALE, seed=TWIN_SEED), "twin-city", "Twinville")
    run_plain(home, [load_city_config(first), load_city_config(second)], run_id="two-cities")
    (root / "done").touch()
    return home


@pytest.fixture(scope="module")
def two_cities(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return two_city_home(tmp_path_factory.getbasetemp())


def test_every_format_holds_both_cities(two_cities: Home) -> None:
    release = load_release(two_cities, "latest")
    assert [c["id"] for c in release.manifest["cities"]] == ["demo-city", "twin-city"]
    values = pl.read_parquet(release.path / "kpi_values.parquet")
    assert set(values["city_id"]) == {"demo-city", "twin-city"}
    computed = values.filter(pl.col("status") == "computed")
    # Different seeds, different cities: the comparison has something to show.
    by_city = computed.pivot(on="city_id", index=["year", "indicator_id", "data_point"], values="value")
    assert by_city.filter(pl.col("demo-city") != pl.col("twin-city")).height > 10

    workbooks = sorted(p.name for p in release.files("u4ssc_workbook"))
    assert workbooks == [f"{c}-{y}.xlsx" for c in ("demo-city", "twin-city") for y in (2022, 2023, 2024)]
    twin = openpyxl.load_workbook(release.path / "u4ssc" / "twin-city-2024.xlsx", read_only=True)
    about = {row[0]: row[1] for row in twin["About"].iter_rows(values_only=True) if row and row[0]}
    assert about["City"] == "Twinville" and about["City id"] == "twin-city"

    sdmx = list(csv.DictReader(io.StringIO((release.path / "kpi_values.sdmx.csv").read_text(encoding="utf-8"))))
    assert {r["REF_AREA"] for r in sdmx} == {"demo-city", "twin-city"}
    pm = list(csv.DictReader(io.StringIO(
        (release.path / "open_sdg" / "data" / "indicator_11-6-2.csv").read_text(encoding="utf-8"))))
    assert {(r["City"], r["GeoCode"]) for r in pm} == {("Demoville", "demo-city"), ("Twinville", "twin-city")}
    entities = json.loads((release.path / "ngsi_ld" / "key_performance_indicators.jsonld").read_text(encoding="utf-8"))
    assert {e["address"]["addressLocality"] for e in entities} == {"Demoville", "Twinville"}

    con = duckdb.connect(str(release.path / "citykpi.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT city_id, name FROM cities ORDER BY city_id").fetchall() == [
            ("demo-city", "Demoville"), ("twin-city", "Twinville")]
        assert {r[0] for r in con.execute("SELECT DISTINCT city_id FROM coverage").fetchall()} == {
            "demo-city", "twin-city"}
    finally:
        con.close()


def test_the_report_compares_the_cities_side_by_side(two_cities: Home) -> None:
    release = load_release(two_cities, "latest")
    text = (release.path / "report.html").read_text(encoding="utf-8")
    assert 'id="chart-cities"' in text, "no side-by-side chart for two cities"
    assert "demo-city (2024)" in text and "twin-city (2024)" in text  # the values table's city columns
    assert "nothing to compare side by side" not in text
