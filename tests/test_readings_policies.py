"""Duplicate readings by declared policy, and hostile names through every readings field (issue #14).

Duplicates (same station, variable, data point and time): `error` (default) stops the load naming the
file, the station and the first duplicated hours, never an internal error, and leaves the warehouse
as it was; `first` keeps the first in file order; `mean` their mean; the report counts them.

Quoting: configured field names, codes, data points and data values with quotes, semicolons and
comments reach SQL only as quoted identifiers or parameters: nothing executes, another city's rows
stay, and the hostile source loads exactly its readings (replace and append paths).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
import yaml

from canonical.errors import SourceDataError
from pipelines.steps import fetch_city, load_city
from sources.config import LoadedConfig, load_city_config
from warehouse.home import Home

NO2 = {"variable": "air_concentration_ugm3", "unit": "ug/m3", "data_point": "NO2"}
LONG = {"station_field": "s", "time_field": "t", "variable_field": "c", "value_field": "v", "variables": {"8": NO2}}


def city(folder: Path, city_id: str, readings: dict[str, Any], data_name: str) -> LoadedConfig:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"config_version": 1, "city": {"id": city_id, "name": city_id, "country": "DE", "reporting_years": [2023]},
              "sources": [{"id": "air", "kind": "file", "location": data_name, "target": "readings",
                           "readings": readings}]}
    if data_name.startswith("../"):  # a data file shared by several configs in sibling folders
        config["allowed_roots"] = [".."]
    path = folder / "city.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return load_city_config(path)


def run(home: Home, loaded: LoadedConfig) -> dict[str, Any]:
    return load_city(home, loaded, fetch_city(home, loaded))["sources"]["air"]


def readings(home: Home, city_id: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        return [(s, t.astimezone(UTC), v, dp, val) for s, t, v, dp, val in con.execute(
            """SELECT station_id, observed_at, variable, data_point, value FROM core_readings WHERE city_id = ?
               ORDER BY ALL""", [city_id]).fetchall()]
    finally:
        con.close()


def hour(h: int) -> datetime:
    return datetime(2023, 1, 1, h, tzinfo=UTC)


DUPLICATED = "s,t,c,v\nA,2023-01-01T00:00Z,8,1\nB,2023-01-01T01:00Z,8,4\nB,2023-01-01T01:00Z,8,6\n" \
             "B,2023-01-01T02:00Z,8,3\nB,2023-01-01T02:00Z,8,5\nB,2023-01-01T02:00Z,8,7\n"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_duplicates_are_an_error_naming_file_station_and_hours(tmp_path: Path, fmt: str) -> None:
    home = Home(tmp_path / "home")
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "r.csv").write_text(DUPLICATED)
    if fmt == "parquet":
        pl.read_csv(folder / "r.csv", try_parse_dates=True).write_parquet(folder / "r.parquet")
    loaded = city(folder, "dup", LONG, f"r.{fmt}")
    with pytest.raises(SourceDataError) as err:
        run(home, loaded)
    message = str(err.value)
    assert message.startswith(f"source 'air': r.{fmt}") and "station 'B' has 2 duplicated reading time(s)" in message
    assert "2023-01-01 01:00 UTC (air_concentration_ugm3[NO2], 2 readings)" in message
    assert "2023-01-01 02:00 UTC (air_concentration_ugm3[NO2], 3 readings)" in message
    assert "duplicates: first or mean" in message
    assert readings(home, "dup") == []  # rolled back: nothing of the failed load stays


def test_duplicates_first_and_mean_are_counted(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "r.csv").write_text(DUPLICATED)
    report = run(home, city(folder / "first", "first", {**LONG, "duplicates": "first"}, "../r.csv"))
    assert [r[4] for r in readings(home, "first")] == [1.0, 4.0, 3.0]
    assert report["duplicates"] == {"policy": "first", "readings_merged": 3}
    report = run(home, city(folder / "mean", "mean", {**LONG, "duplicates": "mean"}, "../r.csv"))
    assert [r[4] for r in readings(home, "mean")] == [1.0, 5.0, 5.0]  # (4 + 6) / 2, (3 + 5 + 7) / 3
    assert report["duplicates"] == {"policy": "mean", "readings_merged": 3}


def test_duplicates_in_an_appended_tail_are_refused(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    folder = tmp_path / "c"
    folder.mkdir()
    data = folder / "r.parquet"
    base = {"s": ["A", "A"], "t": [hour(0), hour(1)], "c": ["8", "8"], "v": [1.0, 2.0]}
    pl.DataFrame(base).write_parquet(data)
    loaded = city(folder, "app", LONG, "r.parquet")
    assert run(home, loaded)["mode"] == "replace"
    pl.DataFrame({k: v + extra for (k, v), extra in zip(
        base.items(), (["A", "A"], [hour(2), hour(2)], ["8", "8"], [3.0, 4.0]), strict=True)}).write_parquet(data)
    with pytest.raises(SourceDataError, match="station 'A' has 1 duplicated reading time"):
        run(home, loaded)
    assert [r[4] for r in readings(home, "app")] == [1.0, 2.0]


# Names and values that end a quoted identifier or string and start a statement.
HOSTILE_STATION = 'x"; COMMIT; DELETE FROM observations; --'
HOSTILE_TIME = "t' OR 1=1; DROP TABLE core_readings; --"
HOSTILE_CODE_FIELD = 'c")); DELETE FROM core_readings; /*'
HOSTILE_VALUE = 'v"/**/; DROP TABLE kpi_values; --'
HOSTILE_CODE = "8'; DELETE FROM core_readings WHERE '1'='1"
HOSTILE_POINT = 'NO2"); DELETE FROM core_readings; --'


def test_hostile_names_and_values_execute_nothing_and_lose_nothing(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    other_folder = tmp_path / "other"
    other_folder.mkdir()
    pl.DataFrame({"s": ["O1"] * 3, "t": [hour(0), hour(1), hour(2)], "c": ["8"] * 3,
                  "v": [1.0, 2.0, 3.0]}).write_parquet(other_folder / "o.parquet")
    run(home, city(other_folder, "other", LONG, "o.parquet"))
    before = readings(home, "other")
    assert len(before) == 3

    folder = tmp_path / "hostile"
    folder.mkdir()
    data = folder / "h.parquet"
    stations = [HOSTILE_STATION, "'; DROP TABLE observations; --", HOSTILE_STATION]
    columns = {HOSTILE_STATION: stations, HOSTILE_TIME: [hour(0), hour(0), hour(1)],
               HOSTILE_CODE_FIELD: [HOSTILE_CODE, HOSTILE_CODE, "unmapped'--"], HOSTILE_VALUE: [5.0, 6.0, 7.0]}
    pl.DataFrame(columns).write_parquet(data)
    mapping = {"station_field": HOSTILE_STATION, "time_field": HOSTILE_TIME, "variable_field": HOSTILE_CODE_FIELD,
               "value_field": HOSTILE_VALUE, "duplicates": "mean",
               "variables": {HOSTILE_CODE: {**NO2, "data_point": HOSTILE_POINT}}}
    loaded = city(folder, "hostile", mapping, "h.parquet")
    report = run(home, loaded)
    assert report["mode"] == "replace" and report["unmapped_codes"] == {"unmapped'--": 1}
    expected = [("'; DROP TABLE observations; --", hour(0), "air_concentration_ugm3", HOSTILE_POINT, 6.0),
                (HOSTILE_STATION, hour(0), "air_concentration_ugm3", HOSTILE_POINT, 5.0)]
    assert readings(home, "hostile") == expected

    # The append path (scan, tail, verify, merge, duplicate check) with the same names.
    columns = {k: [*v, extra] for (k, v), extra in zip(
        columns.items(), (HOSTILE_STATION, hour(3), HOSTILE_CODE, 8.0), strict=True)}
    pl.DataFrame(columns).write_parquet(data)
    report = run(home, loaded)
    assert report["mode"] == "append" and report["appended"] == 1
    assert readings(home, "hostile") == [*expected, (HOSTILE_STATION, hour(3), "air_concentration_ugm3",
                                                     HOSTILE_POINT, 8.0)]

    # An unreadable value in the hostile column: an error naming row and field, nothing executed.
    pl.DataFrame({k: [str(x) for x in v] if k == HOSTILE_VALUE else v for k, v in columns.items()}).with_columns(
        pl.col(HOSTILE_VALUE).replace("8.0", "n/a'; DROP TABLE core_points; --")).write_parquet(data)
    with pytest.raises(SourceDataError, match="row 4") as err:
        run(home, loaded)
    assert HOSTILE_VALUE in str(err.value)

    assert readings(home, "other") == before
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    finally:
        con.close()
    assert {"observations", "core_readings", "kpi_values", "core_points"} <= tables


def test_parquet_rows_without_station_or_readable_time_name_the_row(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    folder = tmp_path / "c"
    folder.mkdir()
    pl.DataFrame({"s": ["A", None], "t": ["2023-01-01T00:00Z", "2023-01-01T01:00Z"], "c": ["8", "8"],
                  "v": [1.0, 2.0]}).write_parquet(folder / "r.parquet")
    loaded = city(folder, "bad", LONG, "r.parquet")
    with pytest.raises(SourceDataError, match=r"r.parquet, row 2, field 's': no station id"):
        run(home, loaded)
    pl.DataFrame({"s": ["A", "A"], "t": ["2023-01-01T00:00Z", "tomorrow"], "c": ["8", "8"],
                  "v": [1.0, 2.0]}).write_parquet(folder / "r.parquet")
    with pytest.raises(SourceDataError, match=r"row 2, field 't': time 'tomorrow' cannot be read"):
        run(home, loaded)
