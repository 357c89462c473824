"""Madrid's real hourly air-quality exports (../shared/fixtures/cities/madrid), read in place with
tests/cities/madrid_readings.yaml: both months load, and the figures equal ones computed here from
the raw CSV with plain `csv` parsing (valid hours only, `V` flags; zero-padded 2019 values).

One month of data per year: every station is below the 75 % rule, so the 2022 PM2.5 / NO2 KPIs are
`missing` and their status_reason names the rule, the stations and their coverage, worked out here
independently from the raw file.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from shared_data import require_shared

from pipelines.steps import compute_city, fetch_city, load_city
from sources.config import load_city_config
from warehouse.home import Home

CONFIG = Path(__file__).parent / "cities" / "madrid_readings.yaml"
FILES = {"air-2019-01": "ene_mo19.csv", "air-2022-10": "oct_mo22.csv"}
CODES = {"8": "NO2", "9": "PM2.5", "10": "PM10", "1": "SO2", "14": "O3"}


def raw_valid(path: Path) -> tuple[dict[tuple[str, str], list[float]], int]:
    """(valid values per (station, code), number of N flags) from the raw file."""
    values: dict[tuple[str, str], list[float]] = {}
    flags = 0
    with path.open(newline="", encoding="ascii") as handle:
        for row in csv.DictReader(handle, delimiter=";"):
            for h in range(1, 25):
                flag, cell = row[f"V{h:02d}"], row[f"H{h:02d}"].strip()
                flags += flag == "N"
                if flag == "V" and cell:
                    values.setdefault((row["ESTACION"], row["MAGNITUD"]), []).append(float(cell))
    return values, flags


@pytest.fixture(scope="module")
def madrid(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = require_shared("fixtures/cities/madrid")
    tmp = tmp_path_factory.mktemp("madrid")
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    for source in config["sources"]:
        source["location"] = str(folder / FILES[source["id"]])
    config["allowed_roots"] = [str(folder)]  # the shared files are read in place
    path = tmp / "madrid.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    loaded = load_city_config(path)
    home = Home(tmp / "home")
    report = load_city(home, loaded, fetch_city(home, loaded))
    compute_city(home, loaded, "madrid-run")
    return {"folder": folder, "home": home, "report": report}


def query(madrid: dict[str, Any], sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(madrid["home"].warehouse_path), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("source_id, station, code", [("air-2022-10", "8", "8"), ("air-2019-01", "4", "8"),
                                                       ("air-2022-10", "24", "9"), ("air-2019-01", "8", "14")])
def test_station_means_of_valid_hours_equal_the_raw_file(madrid: dict[str, Any], source_id: str, station: str,
                                                         code: str) -> None:
    values, _ = raw_valid(madrid["folder"] / FILES[source_id])
    expected = values[(station, code)]
    [(n, mean)] = query(madrid, """SELECT count(*), avg(value) FROM core_readings WHERE source_id = ?
                                   AND station_id = ? AND data_point = ?""", [source_id, station, CODES[code]])
    assert n == len(expected) and mean == pytest.approx(sum(expected) / len(expected), rel=1e-12)


@pytest.mark.parametrize("source_id", list(FILES))
def test_flags_and_counts_in_the_load_report(madrid: dict[str, Any], source_id: str) -> None:
    values, flags = raw_valid(madrid["folder"] / FILES[source_id])
    report = madrid["report"]["sources"][source_id]
    assert report["flagged_invalid"] == flags  # 1,896 in October 2022, 942 in January 2019 (PROVENANCE.md)
    mapped = sum(len(v) for (_, code), v in values.items() if code in CODES)
    assert report["readings"] == mapped and report["duplicates"]["readings_merged"] == 0


@pytest.mark.parametrize("data_point, code, indicator", [("NO2", "8", "EN:EN:AQ:1C"), ("PM2.5", "9", "EN:EN:AQ:1C"),
                                                         ("PM2.5", "9", "11.6.2")])
def test_a_month_of_data_leaves_2022_kpis_missing_naming_the_75_percent_rule(
        madrid: dict[str, Any], data_point: str, code: str, indicator: str) -> None:
    values, _ = raw_valid(madrid["folder"] / FILES["air-2022-10"])
    coverage = {station: len(v) / 8760 for (station, c), v in values.items() if c == code}  # 2022: 8,760 hours
    low, high = (f"{100 * share:.1f}" for share in (min(coverage.values()), max(coverage.values())))
    names = ", ".join(sorted(coverage, key=lambda s: (len(s), s)))
    [(status, reason)] = query(madrid, """SELECT status, status_reason FROM kpi_values WHERE year = 2022
                                          AND indicator_id = ? AND data_point = ?""", [indicator, data_point])
    assert status == "missing"
    assert (f"withheld: {data_point} 2022: {len(coverage)} station(s) below 75 % of the year's hours "
            f"({low}–{high} %), the least an annual mean needs: {names}") in reason
