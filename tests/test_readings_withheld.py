"""A withheld annual mean says why (issue #13): the KPI rows that needed it are `missing` naming the
75 % rule, the stations and their coverage; an appended snapshot updates the reason (derive_air) and
the KPIs computed again carry the new figures. Also: the docs' readings examples equal the corpus.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import yaml

from pipelines.steps import compute_city, fetch_city, load_city
from sources.config import load_city_config
from warehouse.home import Home

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2023, 1, 1, tzinfo=UTC)


def series(station: str, hours: int, offset: int = 0) -> dict[str, list[object]]:
    return {"s": [station] * hours, "t": [START + timedelta(hours=offset + h) for h in range(hours)],
            "c": ["no2"] * hours, "v": [10.0] * hours}


def write(path: Path, *parts: dict[str, list[object]]) -> None:
    pl.concat([pl.DataFrame(p) for p in parts]).write_parquet(path)


def kpi_reason(home: Home, year: int) -> tuple[str, str]:
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        row = con.execute("""SELECT status, status_reason FROM kpi_values WHERE indicator_id = 'EN:EN:AQ:1C'
                             AND data_point = 'NO2' AND year = ?""", [year]).fetchone()
    finally:
        con.close()
    assert row is not None
    return row[0], row[1]


def test_withheld_mean_names_rule_stations_and_coverage_and_follows_appends(tmp_path: Path) -> None:
    folder = tmp_path / "city"
    folder.mkdir()
    data = folder / "r.parquet"
    write(data, series("B", 876), series("C", 438))  # 10.0 % and 5.0 % of 2023's 8,760 hours
    config = {"config_version": 1, "city": {"id": "w", "name": "W", "country": "DE", "reporting_years": [2023]},
              "sources": [{"id": "air", "kind": "file", "location": "r.parquet", "target": "readings",
                           "readings": {"station_field": "s", "time_field": "t", "variable_field": "c",
                                        "value_field": "v", "variables": {"no2": {
                                            "variable": "air_concentration_ugm3", "unit": "ug/m3",
                                            "data_point": "NO2"}}}}]}
    (folder / "city.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    loaded = load_city_config(folder / "city.yaml")
    home = Home(tmp_path / "home")
    report = load_city(home, loaded, fetch_city(home, loaded))
    expected = ("NO2 2023: 2 station(s) below 75 % of the year's hours (5.0–10.0 %), the least an annual "
                "mean needs: B, C")
    assert report["derived"]["city_annual_means_withheld"] == [expected]
    compute_city(home, loaded, "r1")
    status, reason = kpi_reason(home, 2023)
    assert status == "missing"
    assert reason == f'missing input(s): air_concentration_ugm3["NO2"]; withheld: {expected}'

    # C's next 438 hours arrive: appended, the reason re-derived for that key only, the KPI follows.
    write(data, series("B", 876), series("C", 876))
    report = load_city(home, loaded, fetch_city(home, loaded))
    assert report["sources"]["air"]["mode"] == "append" and report["derived"]["mode"] == "readings"
    assert report["changed_years"] == [2023]
    compute_city(home, loaded, "r2")
    assert kpi_reason(home, 2023)[1].endswith("withheld: NO2 2023: 2 station(s) below 75 % of the year's hours "
                                              "(10.0 %), the least an annual mean needs: B, C")

    # Enough hours at one station: the mean is computed and nothing is withheld any more.
    write(data, series("B", 6570), series("C", 876))  # 6,570 / 8,760 = 75 %
    load_city(home, loaded, fetch_city(home, loaded))
    compute_city(home, loaded, "r3")
    assert kpi_reason(home, 2023)[0] == "computed"
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM core_withheld").fetchone() == (0,)
    finally:
        con.close()


def test_docs_readings_examples_equal_the_corpus() -> None:
    doc = (ROOT / "docs" / "city-config.md").read_text(encoding="utf-8")
    section = doc.split("## Readings in every published shape", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    corpus = sorted((ROOT / "tests" / "corpus" / "readings").glob("*.yaml"))
    assert len(blocks) == len(corpus) == 7
    for block in blocks:
        first = block.splitlines()[0]
        assert first.startswith("# corpus: tests/corpus/readings/")
        assert (ROOT / first.removeprefix("# corpus: ")).read_text(encoding="utf-8") == block
