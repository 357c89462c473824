"""Readings in every published shape (issue #13): the worked examples of docs/city-config.md
("Readings in every published shape", tests/corpus/readings/) loaded through fetch + load_city, each
checked against readings worked out by hand; plus the error paths (flags, time zones, bad values).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
import yaml

from canonical.errors import ConfigError, SourceDataError
from pipelines.steps import fetch_city, load_city
from sources.config import load_city_config
from warehouse.home import Home

CORPUS = Path(__file__).parent / "corpus" / "readings"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def load(config: Path, home: Path) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """Fetch and load one city config; (the source's load report, its readings sorted)."""
    loaded = load_city_config(config)
    h = Home(home)
    report = load_city(h, loaded, fetch_city(h, loaded))
    con = duckdb.connect(str(h.warehouse_path), read_only=True)
    try:
        rows = con.execute("""SELECT station_id, observed_at, data_point, value FROM core_readings
                              WHERE city_id = ? ORDER BY ALL""", [loaded.city_id]).fetchall()
    finally:
        con.close()
    return report["sources"]["air"], [(s, t.astimezone(UTC), dp, v) for s, t, dp, v in rows]


def write_city(folder: Path, readings: dict[str, Any], data_name: str, data: str | bytes,
               **source: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / data_name).write_bytes(data if isinstance(data, bytes) else data.encode())
    config = {"config_version": 1, "city": {"id": "t", "name": "T", "country": "DE", "reporting_years": [2023]},
              "sources": [{"id": "air", "kind": "file", "location": data_name, "target": "readings",
                           **source, "readings": readings}]}
    path = folder / "city.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


NO2 = {"variable": "air_concentration_ugm3", "unit": "ug/m3", "data_point": "NO2"}


def test_long_csv_local_times_flags_decimal_comma(tmp_path: Path) -> None:
    report, rows = load(CORPUS / "long_csv.yaml", tmp_path)
    # 26 March 2023: Berlin goes from +01:00 to +02:00 at 02:00 local.
    assert rows == [("DEBE010", utc("2023-03-25T23:00:00Z"), "NO2", 21.5),
                    ("DEBE010", utc("2023-03-26T00:00:00Z"), "NO2", 22.5),
                    ("DEBE010", utc("2023-03-26T01:00:00Z"), "NO2", 30.0),   # 03:00 CEST
                    ("DEBE034", utc("2023-03-25T23:00:00Z"), "NO2", 10.0)]
    assert report["flagged_invalid"] == 1 and report["empty_values"] == 1
    assert report["unmapped_codes"] == {"O3": 1} and report["readings"] == 4


def test_wide_csv_offsets_unreadable_skipped_duplicates_mean(tmp_path: Path) -> None:
    report, rows = load(CORPUS / "wide_csv.yaml", tmp_path)
    # S1 00:00Z twice: NO2 (10 + 30) / 2 ppb x 1.9 = 38; PM2.5 (5.5 + 7.5) / 2 = 6.5.
    assert rows == [("S1", utc("2023-01-01T00:00:00Z"), "NO2", pytest.approx(38.0)),
                    ("S1", utc("2023-01-01T00:00:00Z"), "PM2.5", 6.5),
                    ("S1", utc("2023-01-01T01:00:00Z"), "PM2.5", 6.5),
                    ("S2", utc("2023-01-01T01:00:00Z"), "NO2", pytest.approx(38.0))]
    assert report["unreadable_values"] == 1 and report["empty_values"] == 1
    assert report["duplicates"] == {"policy": "mean", "readings_merged": 2}


def test_wide_hours_csv_madrid_shape_across_the_autumn_clock_change(tmp_path: Path) -> None:
    report, rows = load(CORPUS / "wide_hours_csv.yaml", tmp_path)
    no2 = [r for r in rows if r[2] == "NO2"]
    # 30 Oct 2022, Madrid: H01 = 00:00-01:00 CEST = 22:00Z the day before; H03 = 02:00 local, which
    # happens twice: the first (CEST, 00:00Z); H04 = 03:00 CET = 02:00Z; H24 = 23:00 CET = 22:00Z.
    assert [r[1] for r in no2[:4]] == [utc("2022-10-29T22:00:00Z"), utc("2022-10-29T23:00:00Z"),
                                       utc("2022-10-30T00:00:00Z"), utc("2022-10-30T02:00:00Z")]
    assert no2[-1][1] == utc("2022-10-30T22:00:00Z")
    assert len(no2) == 23 and sum(r[3] for r in no2) == 300 - 5   # H05 flagged N
    pm25 = [r for r in rows if r[2] == "PM2.5"]
    assert len(pm25) == 22 and {r[3] for r in pm25} == {10.0}     # '00010'; H23 empty, H24 flagged
    assert report["flagged_invalid"] == 2 and report["empty_values"] == 1
    assert report["unmapped_codes"] == {"1": 24} and report["layout"] == "wide_hours"


def test_long_excel_in_local_time(tmp_path: Path) -> None:
    _, rows = load(CORPUS / "long_xlsx.yaml", tmp_path)
    assert rows == [("KC1", utc("2023-12-01T12:00:00Z"), "PM10", 15.0),        # GMT in December
                    ("MY1", utc("2023-07-01T11:00:00Z"), "PM10", 20.0),        # BST in July
                    ("MY1", utc("2023-07-01T12:00:00Z"), "PM10", 24.5)]


def test_json_records_with_nested_fields_and_a_format(tmp_path: Path) -> None:
    report, rows = load(CORPUS / "records_json.yaml", tmp_path)
    assert rows == [("FR04143", utc("2023-07-14T08:00:00Z"), "NO2", 18.0),
                    ("FR04143", utc("2023-07-14T09:00:00Z"), "NO2", 21.5)]
    assert report["empty_values"] == 1 and report["unmapped_codes"] == {"O3": 1}


def test_saved_ngsi_ld_temporal_response_under_kind_file(tmp_path: Path) -> None:
    _, rows = load(CORPUS / "ngsi_ld_temporal.yaml", tmp_path)
    assert rows == [("urn:ngsi-ld:AirQualityObserved:Plaza-Espana", utc("2023-02-01T08:00:00Z"), "NO2", 41.0),
                    ("urn:ngsi-ld:AirQualityObserved:Plaza-Espana", utc("2023-02-01T09:00:00Z"), "NO2", 45.0),
                    ("urn:ngsi-ld:AirQualityObserved:Retiro", utc("2023-02-01T08:00:00Z"), "NO2", 12.0)]


def test_saved_openaq_measurements_with_one_station_for_the_file(tmp_path: Path) -> None:
    _, rows = load(CORPUS / "openaq.yaml", tmp_path)
    assert rows == [("3917", utc("2023-10-16T12:00:00Z"), "PM2.5", 6.0),
                    ("3917", utc("2023-10-16T13:00:00Z"), "PM2.5", 7.5)]


def test_saved_ngsi_v2_entities_under_kind_file(tmp_path: Path) -> None:
    entities = ('[{"id": "AirQualityObserved:1", "type": "AirQualityObserved",'
                ' "dateObserved": {"type": "DateTime", "value": "2023-05-01T10:00:00"},'
                ' "NO2": {"type": "Number", "value": 33, "metadata": {}}}]')
    config = write_city(tmp_path / "c", {"station_field": "id", "time_field": "dateObserved",
                                         "variable_field": "attribute", "value_field": "value",
                                         "time_zone": "Europe/Berlin", "variables": {"NO2": NO2}},
                        "entities.json", entities, format="json")
    _, rows = load(config, tmp_path / "home")
    assert rows == [("AirQualityObserved:1", utc("2023-05-01T08:00:00Z"), "NO2", 33.0)]


def test_wide_parquet_with_naive_local_times(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    pl.DataFrame({"t": [datetime(2023, 1, 10, 8), datetime(2023, 8, 10, 8)], "st": ["A", "A"],
                  "NO2": [1.0, None]}).write_parquet(folder / "w.parquet")
    config = write_city(folder, {"layout": "wide", "station_field": "st", "time_field": "t",
                                 "time_zone": "Europe/Berlin", "variables": {"NO2": NO2}},
                        "w.parquet", (folder / "w.parquet").read_bytes())
    report, rows = load(config, tmp_path / "home")
    assert rows == [("A", utc("2023-01-10T07:00:00Z"), "NO2", 1.0)] and report["empty_values"] == 1


def test_hour_beginning_columns_and_a_date_column(tmp_path: Path) -> None:
    header = "day;code;st;" + ";".join(f"h{h}" for h in range(24))
    line = "05/01/2023;8;X;" + ";".join(str(h) for h in range(24))
    config = write_city(tmp_path / "c", {
        "layout": "wide_hours", "station_field": "st", "variable_field": "code", "time_field": "day",
        "time_format": "%d/%m/%Y", "hour_columns": "h{h}", "hours": "beginning", "variables": {"8": NO2}},
        "d.csv", f"{header}\n{line}\n")
    _, rows = load(config, tmp_path / "home")
    assert len(rows) == 24 and rows[0][1] == utc("2023-01-05T00:00:00Z") and rows[0][3] == 0.0
    assert rows[23][1] == utc("2023-01-05T23:00:00Z") and rows[23][3] == 23.0


@pytest.mark.parametrize("fmt", ["excel", "parquet"])
def test_wide_hours_from_excel_and_parquet(tmp_path: Path, fmt: str) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    table = {"st": ["A"], "code": ["9"], "y": ["2023"], "m": ["2"], "d": ["1"],
             **{f"H{h:02d}": [str(h)] for h in range(1, 25)},
             **{f"V{h:02d}": ["V" if h > 1 else "N"] for h in range(1, 25)}}
    if fmt == "excel":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        sheet.append(list(table))
        sheet.append([v[0] for v in table.values()])
        book.save(folder / "w.xlsx")
        name = "w.xlsx"
    else:
        pl.DataFrame(table).write_parquet(folder / "w.parquet")
        name = "w.parquet"
    config = write_city(folder, {"layout": "wide_hours", "station_field": "st", "variable_field": "code",
                                 "date_fields": ["y", "m", "d"], "flag_columns": "V{hh}",
                                 "variables": {"9": {**NO2, "data_point": "PM2.5"}}},
                        name, (folder / name).read_bytes())
    report, rows = load(config, tmp_path / "home")
    assert [r[3] for r in rows] == [float(h) for h in range(2, 25)] and report["flagged_invalid"] == 1
    assert rows[0][1] == utc("2023-02-01T01:00:00Z")  # H02 = 01:00-02:00 UTC


def test_latin1_csv_is_transcoded(tmp_path: Path) -> None:
    text = "Estación;Hora;Cód;Valor\nÑandú;2023-01-01 00:00;8;5\n"
    config = write_city(tmp_path / "c", {"station_field": "Estación", "time_field": "Hora",
                                         "variable_field": "Cód", "value_field": "Valor", "variables": {"8": NO2}},
                        "l.csv", text.encode("cp1252"))
    _, rows = load(config, tmp_path / "home")
    assert rows == [("Ñandú", utc("2023-01-01T00:00:00Z"), "NO2", 5.0)]


def _load_error(tmp_path: Path, readings: dict[str, Any], text: str) -> str:
    config = write_city(tmp_path / "c", readings, "e.csv", text)
    with pytest.raises(SourceDataError) as err:
        load(config, tmp_path / "home")
    return str(err.value)


LONG = {"station_field": "s", "time_field": "t", "variable_field": "c", "value_field": "v", "variables": {"8": NO2}}


def test_bad_value_names_file_row_and_field(tmp_path: Path) -> None:
    message = _load_error(tmp_path, LONG, "s,t,c,v\nA,2023-01-01T00:00,8,1\nA,2023-01-01T01:00,8,n/a\n")
    assert "source 'air': e.csv, row 3, field 'v': value n/a of '8' is not a finite number" in message


def test_unreadable_time_and_a_local_time_that_does_not_exist(tmp_path: Path) -> None:
    message = _load_error(tmp_path / "a", LONG, "s,t,c,v\nA,yesterday,8,1\n")
    assert "row 2, field 't'" in message and "yesterday" in message
    berlin = {**LONG, "time_zone": "Europe/Berlin"}
    message = _load_error(tmp_path / "b", berlin, "s,t,c,v\nA,2023-03-26T02:30,8,1\n")
    assert "row 2" in message and "does not exist in Europe/Berlin" in message


def test_missing_column_is_named(tmp_path: Path) -> None:
    message = _load_error(tmp_path, {**LONG, "value_field": "value"}, "s,t,c,v\nA,2023-01-01T00:00,8,1\n")
    assert "column 'value' not found" in message


@pytest.mark.parametrize("readings, message", [
    ({"layout": "wide_hours", "station_field": "s", "variable_field": "c", "variables": {"8": NO2}},
     "needs time_field (the day) or date_fields"),
    ({"station_field": "s", "station": "x", "time_field": "t", "variable_field": "c", "value_field": "v",
      "variables": {"8": NO2}}, "give station_field"),
    ({**LONG, "time_zone": "Mars/Olympus"}, "unknown IANA time zone"),
    ({**LONG, "layout": "wide"}, "layout 'wide' reads one column per variable"),
    ({"layout": "wide_hours", "station_field": "s", "variable_field": "c", "date_fields": ["y", "m", "d"],
      "hour_columns": "H", "variables": {"8": NO2}}, "must hold {hh} or {h}"),
])
def test_config_errors_name_the_rule(tmp_path: Path, readings: dict[str, Any], message: str) -> None:
    config = write_city(tmp_path, readings, "e.csv", "s\n")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("{", r"\{")
                       .replace("}", r"\}")):
        load_city_config(config)
