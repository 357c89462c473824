"""Exposure from the right stations (issue #15), by hand.

Three districts in Berlin (0.1° squares), five stations:

    station  type        where                     NO2
    S1       background  D1 (13.35, 52.50)          20
    S2       traffic     D1 (13.36, 52.51)          80   left out: a hot spot
    S3       background  outside (13.60, 52.50)     10   left out: outside the city
    S4       (unknown)   D1 (13.34, 52.49)          30   counted, flagged
    B        background  D3 (13.45, 52.59)          40

City mean = (20 + 30 + 40) / 3 = 30 (all five would give (20 + 80 + 10 + 30 + 40) / 5 = 36).
D1 = (20 + 30) / 2 = 25; D3 = 40.
D2 ([13.40, 13.50] x [52.45, 52.55], centroid (13.45, 52.50)) has no station: S1 is 0.10° of longitude
away = 0.10 x 111.32 km x cos 52.5° ≈ 6.78 km; B is 0.09° of latitude away ≈ 10.0 km. In degrees B is
nearer (0.09 < 0.10), in metres S1: D2 = 20.

Daily samplers: PM10 from a gravimetric source (one value a day): S1 on 274 days (274 / 365 = 75.1 %,
valid although 274 hours are 3.1 % of the year's hours), B on 200 days (54.8 %, rejected):
city PM10 = S1's 12.0.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
import yaml
from pyproj import Geod

from canonical.errors import SourceDataError
from pipelines.steps import fetch_city, load_city
from sources.config import load_city_config
from warehouse.derive import StationMeta, days_with_readings, select_exposure_stations
from warehouse.home import Home

START = datetime(2023, 1, 1, tzinfo=UTC)
NO2 = {"S1": 20.0, "S2": 80.0, "S3": 10.0, "S4": 30.0, "B": 40.0}


def square(x: float, y: float) -> dict[str, Any]:
    ring = [[x, y], [x + 0.1, y], [x + 0.1, y + 0.1], [x, y + 0.1], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}


def city(tmp_path: Path, *, stations_csv: str, points_extra: dict[str, Any] | None = None) -> Path:
    folder = tmp_path / "city"
    folder.mkdir()
    districts = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "D1"}, "geometry": square(13.30, 52.45)},
        {"type": "Feature", "properties": {"id": "D2"}, "geometry": square(13.40, 52.45)},
        {"type": "Feature", "properties": {"id": "D3"}, "geometry": square(13.40, 52.55)}]}
    (folder / "districts.geojson").write_text(json.dumps(districts), encoding="utf-8")
    (folder / "stations.csv").write_text(stations_csv, encoding="utf-8")
    hourly = pl.concat([pl.DataFrame({"s": [s] * 8760, "t": [START + timedelta(hours=h) for h in range(8760)],
                                      "c": ["no2"] * 8760, "v": [v] * 8760}) for s, v in NO2.items()])
    hourly.write_parquet(folder / "hourly.parquet")
    days = {"S1": 274, "B": 200}
    daily = pl.concat([pl.DataFrame({"s": [s] * n, "t": [START + timedelta(days=d, hours=9) for d in range(n)],
                                     "c": ["pm10"] * n, "v": [12.0 if s == "S1" else 99.0] * n})
                       for s, n in days.items()])
    daily.write_parquet(folder / "daily.parquet")

    def readings(code: str, point: str, **extra: Any) -> dict[str, Any]:
        return {"station_field": "s", "time_field": "t", "variable_field": "c", "value_field": "v", **extra,
                "variables": {code: {"variable": "air_concentration_ugm3", "unit": "ug/m3", "data_point": point}}}

    config = {"config_version": 1, "city": {"id": "b", "name": "B", "country": "DE", "reporting_years": [2023]},
              "sources": [
                  {"id": "districts", "kind": "file", "location": "districts.geojson", "target": "areas",
                   "areas": {"area_type": "district", "id_field": "id"}},
                  {"id": "stations", "kind": "file", "location": "stations.csv", "target": "points",
                   "points": {"point_type": "air_station", "id_field": "id", "lon_field": "lon",
                              "lat_field": "lat", **(points_extra or {})}},
                  {"id": "air", "kind": "file", "location": "hourly.parquet", "target": "readings",
                   "readings": readings("no2", "NO2")},
                  {"id": "gravimetric", "kind": "file", "location": "daily.parquet", "target": "readings",
                   "readings": readings("pm10", "PM10", sampling="daily")}]}
    (folder / "city.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder / "city.yaml"


STATIONS = """id,type,lon,lat
S1,Background,13.35,52.50
S2,traffic,13.36,52.51
S3,background,13.60,52.50
S4,,13.34,52.49
B,BACKGROUND,13.45,52.59
"""


def derived(home: Home) -> dict[tuple[str, str, str], tuple[float, str]]:
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        rows = con.execute("""SELECT area_id, data_point, derivation, value, source_record FROM observations
                              WHERE derivation LIKE '%annual_mean%' AND area_type <> 'station'""").fetchall()
    finally:
        con.close()
    return {(a, dp, d): (v, r) for a, dp, d, v, r in rows}


def test_city_and_district_means_use_background_stations_inside_the_city(tmp_path: Path) -> None:
    loaded = load_city_config(city(tmp_path, stations_csv=STATIONS, points_extra={"station_type_field": "type"}))
    home = Home(tmp_path / "home")
    report = load_city(home, loaded, fetch_city(home, loaded))
    rows = derived(home)
    value, record = rows[("b", "NO2", "city_annual_mean@2")]
    assert value == pytest.approx(30.0)  # (20 + 30 + 40) / 3; all five would be 36
    assert record == ("mean of 3 station annual means (B, S1, S4); background stations; excluded: "
                      "S2 (traffic station), S3 (outside the city boundary); type unknown, counted: S4")
    assert report["derived"]["air_stations_excluded"] == {"S2": "traffic station",
                                                          "S3": "outside the city boundary"}
    assert rows[("D1", "NO2", "district_annual_mean@2")][0] == pytest.approx(25.0)
    assert rows[("D3", "NO2", "district_annual_mean@2")][0] == pytest.approx(40.0)
    d2, d2_record = rows[("D2", "NO2", "district_annual_mean@2")]
    assert d2 == pytest.approx(20.0)  # S1 by metres; degrees would pick B (40)
    metres = Geod(ellps="WGS84").inv(13.45, 52.50, 13.35, 52.50)[2]
    assert metres == pytest.approx(0.10 * 111_320 * 0.6088, rel=0.01)  # cos 52.5° = 0.6088
    assert f"nearest station S1, {metres:.0f} m (geodesic)" in d2_record

    # Daily sampler judged by days: S1's 274 days (75.1 %) are valid, B's 200 (54.8 %) are not.
    pm10, pm10_record = rows[("b", "PM10", "city_annual_mean@2")]
    assert pm10 == pytest.approx(12.0)
    assert "(S1)" in pm10_record
    rejected = {r["station_id"]: r for r in report["derived"]["station_years_rejected_low_coverage"]}
    assert rejected["B"]["unit"] == "days" and rejected["B"]["hours"] == 200 and rejected["B"]["hours_in_year"] == 365


def test_explicit_station_types_override_the_field_and_codes_map(tmp_path: Path) -> None:
    csv = STATIONS.replace("Background", "UB").replace("traffic", "UT").replace("BACKGROUND", "UB")
    loaded = load_city_config(city(tmp_path, stations_csv=csv, points_extra={
        "station_type_field": "type", "station_type_codes": {"UB": "background", "UT": "traffic"},
        "station_types": {"B": "industrial"}}))
    home = Home(tmp_path / "home")
    load_city(home, loaded, fetch_city(home, loaded))
    value, record = derived(home)[("b", "NO2", "city_annual_mean@2")]
    assert value == pytest.approx(25.0)  # S1 and S4: B is industrial by the list, S2 traffic by its code
    assert "B (industrial station)" in record and "S2 (traffic station)" in record


def test_without_type_field_every_station_inside_counts(tmp_path: Path) -> None:
    loaded = load_city_config(city(tmp_path, stations_csv=STATIONS))
    home = Home(tmp_path / "home")
    load_city(home, loaded, fetch_city(home, loaded))
    # station_type_field not configured: types unknown; only S3 (outside) is left out.
    value, record = derived(home)[("b", "NO2", "city_annual_mean@2")]
    assert value == pytest.approx((20 + 80 + 30 + 40) / 4)
    assert "station types unknown" in record and "S3 (outside the city boundary)" in record


def test_unknown_type_code_names_row_and_field(tmp_path: Path) -> None:
    loaded = load_city_config(city(tmp_path, stations_csv=STATIONS.replace("traffic", "kerbside"),
                                   points_extra={"station_type_field": "type"}))
    home = Home(tmp_path / "home")
    with pytest.raises(SourceDataError) as info:
        load_city(home, loaded, fetch_city(home, loaded))
    text = str(info.value)
    assert "kerbside" in text and "type" in text and "S2" in text


def test_selection_rules() -> None:
    rows = [{"area_id": k, "value": v} for k, v in (("a", 1.0), ("b", 3.0))]
    typed = {"a": StationMeta("traffic", True), "b": StationMeta("industrial", True)}
    chosen = select_exposure_stations(rows, typed)
    assert [r["area_id"] for r in chosen.used] == ["a", "b"] and chosen.note.startswith("no background station")
    outside = {"a": StationMeta("background", False), "b": StationMeta("background", False)}
    assert select_exposure_stations(rows, outside).used == []
    assert days_with_readings("0" * 23 + "1" + "1" * 24 + "0" * 24) == 2
    assert days_with_readings(None) == 0


# ---- the all-station mean beside the exposure mean; the coverage rule per city (issue #15) ----------

def kpi_rows(home: Home, loaded: Any) -> dict[str | None, tuple[str, float | None, str | None]]:
    from pipelines.steps import compute_city

    compute_city(home, loaded, "test-run")
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        rows = con.execute("""SELECT data_point, status, value, status_reason FROM kpi_values
                              WHERE indicator_id = 'EN:EN:AQ:1C' AND year = 2023""").fetchall()
    finally:
        con.close()
    return {dp: (status, value, reason) for dp, status, value, reason in rows}


def test_all_station_mean_is_a_labelled_data_point_beside_the_exposure_mean(tmp_path: Path) -> None:
    loaded = load_city_config(city(tmp_path, stations_csv=STATIONS, points_extra={"station_type_field": "type"}))
    home = Home(tmp_path / "home")
    load_city(home, loaded, fetch_city(home, loaded))
    value, record = derived(home)[("b", "NO2", "city_annual_mean_all_stations@1")]
    # every station inside the city, the traffic hot spot S2 included, S3 (outside) not: (20 + 80 + 30 + 40) / 4
    assert value == pytest.approx(42.5)
    assert record == ("mean of 4 station annual means of every station type (B, S1, S2, S4), not only the "
                      "exposure stations of air_concentration_ugm3; excluded: S3 (outside the city boundary)")
    kpis = kpi_rows(home, loaded)
    assert kpis["NO2"][:2] == ("computed", pytest.approx(30.0))  # the headline: background stations
    status, all_value, reason = kpis["NO2, all stations"]
    assert (status, all_value) == ("computed", pytest.approx(42.5))
    assert reason is not None and "traffic and industrial hot spots included" in reason
    assert kpis["SO2, all stations"][0] == "missing"  # no SO2 readings at all


def test_the_eu_90_percent_rule_from_the_city_config(tmp_path: Path) -> None:
    path = city(tmp_path, stations_csv=STATIONS, points_extra={"station_type_field": "type"})
    home = Home(tmp_path / "home")
    loaded = load_city_config(path)
    assert loaded.config.air_quality.min_coverage_pct == 75  # the default
    load_city(home, loaded, fetch_city(home, loaded))
    assert derived(home)[("b", "PM10", "city_annual_mean@2")][0] == pytest.approx(12.0)  # S1: 274 days, 75.1 %

    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["air_quality"] = {"min_coverage_pct": 90}
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    strict = load_city_config(path)
    report = load_city(home, strict, fetch_city(home, strict))  # same snapshots: the rule alone re-derives
    assert report["changed"] and report["derived"]["min_coverage"] == 0.9
    rows = derived(home)
    assert ("b", "PM10", "city_annual_mean@2") not in rows  # S1's 75.1 % of days is below 90 %
    assert ("b", "PM10", "city_annual_mean_all_stations@1") not in rows
    assert rows[("b", "NO2", "city_annual_mean@2")][0] == pytest.approx(30.0)  # full years still count
    kpis = kpi_rows(home, strict)
    status, _, reason = kpis["PM10"]
    assert status == "missing" and reason is not None
    assert "2 station(s) below 90 % of the year's days (54.8–75.1 %)" in reason


@pytest.mark.parametrize("pct", [49, 101])
def test_coverage_rule_outside_50_to_100_is_refused(tmp_path: Path, pct: int) -> None:
    from sources.config import ConfigError

    path = city(tmp_path, stations_csv=STATIONS)
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["air_quality"] = {"min_coverage_pct": pct}
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ConfigError, match="min_coverage_pct"):
        load_city_config(path)


def test_all_station_district_means_feed_the_labelled_11_6_2_data_points(tmp_path: Path) -> None:
    loaded = load_city_config(city(tmp_path, stations_csv=STATIONS, points_extra={"station_type_field": "type"}))
    home = Home(tmp_path / "home")
    load_city(home, loaded, fetch_city(home, loaded))
    rows = derived(home)
    # D1 holds S1, the traffic station S2 and S4: (20 + 80 + 30) / 3; the exposure value stays 25.
    value, record = rows[("D1", "NO2", "district_annual_mean_all_stations@1")]
    assert value == pytest.approx(130 / 3)
    assert record == ("mean of station(s) S1, S2, S4 in the district (every station type inside the city, not only "
                      "the exposure stations of air_concentration_ugm3); excluded: S3 (outside the city boundary)")
    assert rows[("D1", "NO2", "district_annual_mean@2")][0] == pytest.approx(25.0)
    # D2 has no station: the nearest of every station inside the city, in metres (S3 is outside).
    geod = Geod(ellps="WGS84")
    where = {"S1": (13.35, 52.50), "S2": (13.36, 52.51), "S4": (13.34, 52.49), "B": (13.45, 52.59)}
    nearest = min(where, key=lambda k: geod.inv(13.45, 52.50, *where[k])[2])
    value, record = rows[("D2", "NO2", "district_annual_mean_all_stations@1")]
    assert value == pytest.approx(NO2[nearest]) and f"nearest station {nearest}," in record
    assert rows[("D3", "NO2", "district_annual_mean_all_stations@1")][0] == pytest.approx(40.0)


def test_11_6_2_has_all_station_data_points_beside_the_headline() -> None:
    from kpis.catalogue import load_catalogue

    entry = next(i for i in load_catalogue() if i.id == "11.6.2")
    assert entry.data_points[:2] == ["PM2.5", "PM10"]  # the headline stays the exposure value
    for point in ("PM2.5", "PM10"):
        compute = entry.compute_for(f"{point}, all stations")
        assert compute is not None and "air_concentration_all_stations_ugm3" in str(compute.variable)
        assert compute.caveat and "not the population's exposure" in compute.caveat


def _coverage_result(home: Home, loaded: Any) -> Any:
    from pipelines.steps import check_city

    results = check_city(home, loaded, "coverage-check", "core")
    return next(r for r in results if r.check.table == "core_readings" and r.check.name == "coverage")


def test_readings_coverage_check_counts_days_for_daily_samplers_and_follows_the_city_rule(tmp_path: Path) -> None:
    path = city(tmp_path, stations_csv=STATIONS, points_extra={"station_type_field": "type"})
    home = Home(tmp_path / "home")
    loaded = load_city_config(path)
    load_city(home, loaded, fetch_city(home, loaded))
    # 75 %: the hourly NO2 years are full; of the daily PM10 samplers S1 has 274 days (75.1 %), B 200 (54.8 %).
    result = _coverage_result(home, loaded)
    assert (result.status, result.failing, result.evaluated) == ("warned", 1, 7)
    assert [(r["station_id"], r["covered"], r["unit"]) for r in result.sample] == [("B", 200, "days")]

    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["air_quality"] = {"min_coverage_pct": 90}
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    strict = load_city_config(path)
    result = _coverage_result(home, strict)  # the same rule as the annual means: S1's 75.1 % is below 90 %
    assert result.failing == 2 and {r["station_id"] for r in result.sample} == {"S1", "B"}
    assert all(r["needed"] == 0.9 for r in result.sample)
