"""Real New York City files (../shared/fixtures/cities/new_york), read in place, through the whole pipeline.

Also the unit tests of the mapping features the NYC config needs: `where`, `year_pattern`, a
constant `year`, `aggregate` (+ `aggregate_complete`), `columns` and `share_of`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from shared_data import SHARED_DIR, require_shared

from canonical.errors import ConfigError
from pipelines.steps import run_plain
from sources.config import SourceConfig, load_city_config
from sources.mapping import map_observations
from sources.parsers.tabular import read_csv
from warehouse.home import Home

CONFIG = Path(__file__).parent / "cities" / "new_york.yaml"
NYC = "fixtures/cities/new_york"


def _map(tmp_path: Path, text: str, observations: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    source = SourceConfig.model_validate({"id": "t", "kind": "file", "location": str(path), "target": "observations",
                                          "observations": observations})
    frame, report = map_observations(read_csv(path, None, "t.csv"), source, city_id="c", snapshot_id="s")
    return frame.sort("year", "variable").to_dicts(), report.as_dict()


def test_where_and_year_pattern(tmp_path: Path) -> None:
    rows, report = _map(tmp_path, "Geo,Period,Pop\nCity,Annual 2019,5\nBorough,Annual 2019,2\nCity,Summer 2019,9\n",
                        {"where": {"Geo": "City"}, "year_field": "Period", "year_pattern": r"^Annual (\d{4})$",
                         "variables": {"Pop": {"variable": "population", "unit": "persons"}}})
    assert [(r["year"], r["value"]) for r in rows] == [(2019, 5.0)]
    assert report["filtered_rows"] == 1 and report["rows_without_year"] == 1


def test_aggregate_sum_columns_and_completeness(tmp_path: Path) -> None:
    text = "M,A,B\n2018 / 01,1,2\n2018 / 01,1,2\n2018 / 02,3,4\n2019 / 01,5,6\n"
    rows, report = _map(tmp_path, text, {
        "year_field": "M", "year_pattern": r"^(\d{4}) / \d{2}$", "aggregate": "sum", "duplicates": "drop",
        "aggregate_complete": {"field": "M", "count": 2},
        "variables": {"total": {"variable": "solid_waste_total_t", "unit": "t", "columns": ["A", "B"]}}})
    assert [(r["year"], r["value"]) for r in rows] == [(2018, 10.0)]  # the repeated row counted once
    assert report["duplicate_rows"] == 1
    assert report["incomplete_aggregates"] == [
        "solid_waste_total_t c 2019: 1 of 2 M values; withheld (periods.required 2: at least 2)"]


def test_aggregate_mean_constant_year_and_share(tmp_path: Path) -> None:
    rows, _ = _map(tmp_path, "HH,Share\n100,0.5\n300,0.9\n", {
        "year": 2019, "aggregate": "sum",
        "variables": {"HH": {"variable": "households_total", "unit": "households"},
                      "net": {"variable": "households_with_internet", "unit": "households", "columns": ["Share"],
                              "share_of": "HH", "share_in": "fraction"}}})
    assert {r["variable"]: r["value"] for r in rows} == {"households_total": 400.0,
                                                         "households_with_internet": 320.0}
    rows, _ = _map(tmp_path, "Y,R\n2020,2\n2020,4\n", {"year_field": "Y", "aggregate": "mean", "periods": "annual",
                                                      "variables": {"R": {"variable": "labour_force",
                                                                          "unit": "persons"}}})
    assert rows[0]["value"] == 3.0 and "mean of 2 rows" in rows[0]["source_record"]


@pytest.mark.parametrize("block, message", [
    ({"variables": {"x": {"variable": "population", "unit": "persons"}}}, "exactly one of year_field"),
    ({"year_field": "Y", "year_pattern": r"\d{4}", "variables": {"x": {"variable": "population", "unit": "n"}}},
     "exactly one group"),
    ({"year_field": "Y", "aggregate_complete": {"field": "M", "count": 12},
      "variables": {"x": {"variable": "population", "unit": "n"}}}, "needs aggregate"),
])
def test_options_are_validated(tmp_path: Path, block: dict[str, Any], message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"city": {"id": "c", "name": "C", "country": "US", "reporting_years": [2020]},
                                    "sources": [{"id": "s", "kind": "file", "location": "x.csv",
                                                 "target": "observations", "observations": block}]}))
    with pytest.raises(ConfigError, match=message):
        load_city_config(path, check_files=False)


def _config(tmp_path: Path) -> Path:
    """The config with locations pointing at SHARED_DIR (wherever CITYKPI_SHARED puts it)."""
    raw = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    for source in raw["sources"]:
        source["location"] = str(SHARED_DIR / NYC / Path(source["location"]).name)
    raw["allowed_roots"] = [str(SHARED_DIR / NYC)]
    path = tmp_path / "new_york.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def values(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str | None, int], tuple[str, float | None]]:
    require_shared(NYC)
    root = tmp_path_factory.mktemp("nyc")
    home = Home.resolve(root / "home")
    run_plain(home, [load_city_config(_config(root))], "nyc-run")
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        rows = con.execute("SELECT indicator_id, data_point, year, status, value FROM kpi_values").fetchall()
    finally:
        con.close()
    return {(i, dp, y): (s, v) for i, dp, y, s, v in rows}


@pytest.mark.parametrize("indicator, data_point, year, low, high", [
    ("EN:EN:WS:2C", None, 2018, 420, 480),      # ~120 gal/person/day = ~454 L
    ("EN:EN:AQ:1C", "PM2.5", 2019, 6, 10),       # NYCCAS citywide ~6.6 ug/m3
    ("EN:EN:AQ:1C", "NO2", 2019, 25, 35),        # 15.6 ppb x 1.9
    ("EN:EN:PSN:1C", None, 2019, 100, 180),      # ~11,700 ha of parks / 83 x 100k people
    ("EN:EN:WA:1C", "recycled", 2018, 15, 25),   # DSNY curbside diversion ~18-20 %
    ("EC:P:EM:1C", None, 2018, 3.5, 5),          # LAUS annual average 4.1 %
    ("EC:P:EM:1C", None, 2019, 3.5, 5),
    ("EC:ICT:ICT:1C", None, 2019, 70, 90),
    ("EC:ICT:ICT:2C", None, 2019, 60, 80),
])
def test_nyc_indicators_compute_plausible_values(values: dict[tuple[str, str | None, int], tuple[str, float | None]],
                                                 indicator: str, data_point: str | None, year: int, low: float,
                                                 high: float) -> None:
    status, value = values[indicator, data_point, year]
    assert status == "computed"
    assert value is not None and low <= value <= high


def test_incomplete_waste_year_is_not_computed(values: dict[tuple[str, str | None, int], tuple[str, float | None]]
                                               ) -> None:
    assert values["EN:EN:WA:1C", "recycled", 2019][0] == "missing"  # DSNY file stops at 2019-11
