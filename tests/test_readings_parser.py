"""Readings from API pages (sources/parsers/readings.py) over the real recorded payloads.

Pages are landed exactly as the kinds land them (a staging folder renamed into a snapshot), then
read back: NGSI-LD temporal histories from Mintaka, Smart Data Models AirQualityObserved entities
as NGSI v2 (normalised and key-values) and NGSI-LD serve them, and OpenAQ v3 measurements.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from connectors.replay import make_city
from shared_data import require_shared

from canonical.errors import SourceDataError
from sources.config import SourceConfig
from sources.landing import Page, Snapshot, Staging, land_pages, sha256_file
from sources.parsers.readings import READING_SCHEMA, read_reading_pages

UG = {"variable": "air_concentration_ugm3", "unit": "ug/m3"}


@pytest.fixture
def payloads() -> Path:
    return require_shared("fixtures/payloads")


def land(home: Path, source: SourceConfig, bodies: list[bytes], base: Snapshot | None = None) -> Snapshot:
    """Land `bodies` as the pages of one snapshot of `source` (as a kind does after fetching them)."""
    staging = Staging(home / "raw", "replay-city", source.id)
    pages = []
    for number, body in enumerate(bodies, start=1):
        path = staging.file(f"page-{number:04d}.json")
        path.write_bytes(body)
        pages.append(Page(file=path.name, url=f"http://127.0.0.1/p{number}", status=200, headers={},
                          sha256=sha256_file(path), bytes=len(body)))
    return land_pages(staging, home, city_id="replay-city", source_id=source.id, kind=source.kind,
                      location=source.location, fmt="json", pages=pages, request={}, paged=True, base=base)


def readings_source(tmp_path: Path, kind: str, block: dict[str, Any], mapping: dict[str, Any]) -> SourceConfig:
    loaded = make_city(tmp_path / "city", [{"id": "aq", "kind": kind, kind: block, "target": "readings",
                                            "readings": mapping}], country="DE")
    return loaded.config.sources[0]


def temporal_source(tmp_path: Path, variables: dict[str, Any] | None = None) -> SourceConfig:
    return readings_source(tmp_path, "ngsi_ld", {
        "base_url": "http://broker:1026", "type": "Animal",
        "temporal": {"url": "http://mintaka:8080/temporal/entities", "timerel": "after", "time_at": "2021-01-01"}},
        {"station_field": "id", "time_field": "observedAt", "variable_field": "attribute", "value_field": "value",
         "variables": variables or {"heartRate": UG}})


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_mintaka_temporal_values_pages_become_one_reading_per_instance(tmp_path: Path, payloads: Path) -> None:
    folder = payloads / "fiware_ngsi_ld"
    source = temporal_source(tmp_path)
    snapshot = land(tmp_path / "home", source, [(folder / "temporal_mintaka_06.json").read_bytes(),
                                                (folder / "temporal_mintaka_09.json").read_bytes()])
    frame = read_reading_pages(snapshot, source)

    assert frame.schema == pl.Schema(READING_SCHEMA)
    # 4 animals x 3 heartRate instances; `sex` is not a mapped variable, so not a reading.
    assert frame.height == 12 and frame["code"].unique().to_list() == ["heartRate"]
    first = frame.row(0, named=True)
    assert first["station_id"] == "urn:ngsi-ld:Animal:cow001"
    assert first["observed_at"] == utc("2021-09-16T10:59:59.329+00:00") and first["value"] == 52.0
    assert first["source_record"] == ("page-0001.json..page-0002.json page 1 record 1 (urn:ngsi-ld:Animal:cow001) "
                                      "field 'heartRate' instance 1")
    last = frame.row(-1, named=True)
    assert (last["station_id"], last["value"]) == ("urn:ngsi-ld:Animal:pig001", 63.0)
    assert last["source_record"].endswith("page 2 record 2 (urn:ngsi-ld:Animal:pig001) field 'heartRate' instance 3")


def test_mintaka_normalised_history_uses_each_instance_observed_at(tmp_path: Path, payloads: Path) -> None:
    body = (payloads / "fiware_ngsi_ld" / "temporal_mintaka_05.json").read_bytes()
    entities = json.loads(body)
    source = temporal_source(tmp_path)
    frame = read_reading_pages(land(tmp_path / "home", source, [body]), source)

    expected = [(e["id"], utc(i["observedAt"]), float(i["value"])) for e in entities for i in e["heartRate"]]
    assert list(zip(frame["station_id"], frame["observed_at"], frame["value"], strict=True)) == expected
    # observedAt, not modifiedAt (they differ in this payload).
    assert entities[0]["heartRate"][1]["observedAt"] != entities[0]["heartRate"][1]["modifiedAt"]


def test_ngsi_v2_air_quality_entities_normalised_and_key_values(tmp_path: Path, payloads: Path) -> None:
    folder = payloads / "smart_data_models" / "AirQualityObserved"
    normalised = json.loads((folder / "example-normalized.json").read_text(encoding="utf-8"))
    key_values = json.loads((folder / "example.json").read_text(encoding="utf-8"))
    # /v2/entities answers with an array of entities; page 1 normalised, page 2 key-values.
    bodies = [json.dumps([normalised]).encode(), json.dumps([key_values]).encode()]
    source = readings_source(tmp_path, "ngsi_v2", {"base_url": "http://orion:1026", "type": "AirQualityObserved"},
                             {"station_field": "refPointOfInterest", "time_field": "dateObserved",
                              "variable_field": "attribute", "value_field": "value",
                              "variables": {"no": UG, "so2": UG, "nox": UG, "pm25": UG}})
    frame = read_reading_pages(land(tmp_path / "home", source, bodies), source)

    assert frame["code"].to_list() == ["no", "so2", "nox"] * 2  # no pm25 in this entity: nothing read
    assert frame["value"].to_list() == [45.0, 11.0, 139.0] * 2
    assert set(frame["station_id"]) == {"28079004-Pza.deEspanya"}
    assert set(frame["observed_at"]) == {datetime(2016, 3, 15, 11, tzinfo=UTC)}  # no offset: UTC
    assert frame["source_record"][4] == "page-0001.json..page-0002.json page 2 record 1 " \
        "(Madrid-AmbientObserved-28079004-2016-03-15T11:00:00) field 'so2'"


def test_ngsi_ld_entity_with_a_relationship_as_station(tmp_path: Path, payloads: Path) -> None:
    entity = json.loads((payloads / "smart_data_models" / "AirQualityObserved" / "example-normalized.jsonld")
                        .read_text(encoding="utf-8"))
    source = readings_source(tmp_path, "ngsi_ld", {"base_url": "http://broker:1026", "type": "AirQualityObserved"},
                             {"station_field": "refPointOfInterest", "time_field": "dateObserved",
                              "variable_field": "attribute", "value_field": "value", "variables": {"no2": UG}})
    frame = read_reading_pages(land(tmp_path / "home", source, [json.dumps([entity]).encode()]), source)
    station = "urn:ngsi-ld:PointOfInterest:28079004-Pza.deEspanya"
    assert frame.rows() == [(station, datetime(2016, 3, 15, 11, tzinfo=UTC), "no2", 69.0,
                             f"page-0001.json page 1 record 1 ({entity['id']}) field 'no2'")]


def test_openaq_measurements_in_long_form_with_the_sensor_from_the_endpoint(tmp_path: Path, payloads: Path) -> None:
    body = (payloads / "openaq_v3" / "openaq-python_measurements.json").read_bytes()
    source = readings_source(tmp_path, "openaq", {"endpoint": "sensors/3917/measurements"},
                             {"station_field": "sensors_id", "time_field": "period.datetimeFrom.utc",
                              "variable_field": "parameter.name", "value_field": "value",
                              "variables": {"pm25": {**UG, "data_point": "PM2.5"}}})
    frame = read_reading_pages(land(tmp_path / "home", source, [body, body]), source)
    assert frame.height == 4 and set(frame["station_id"]) == {"3917"} and set(frame["code"]) == {"pm25"}
    assert frame["observed_at"].to_list()[:2] == [datetime(2023, 10, 16, 12, tzinfo=UTC),
                                                  datetime(2023, 10, 16, 13, tzinfo=UTC)]
    assert frame["value"].to_list()[:2] == [6.0, 7.5]
    assert frame["source_record"][3] == "page-0001.json..page-0002.json page 2 record 2 field 'value'"


def test_bad_records_name_page_record_and_field(tmp_path: Path, payloads: Path) -> None:
    folder = payloads / "fiware_ngsi_ld"
    first = (folder / "temporal_mintaka_06.json").read_bytes()
    broken = json.loads((folder / "temporal_mintaka_09.json").read_text(encoding="utf-8"))
    broken[1]["heartRate"]["values"][2][0] = "n/a"
    source = temporal_source(tmp_path)
    snapshot = land(tmp_path / "home", source, [first, json.dumps(broken).encode()])
    with pytest.raises(SourceDataError) as info:
        read_reading_pages(snapshot, source)
    message = str(info.value)
    assert "row 4 (page 2 record 2)" in message and "field 'heartRate'" in message and "'n/a'" in message

    broken = json.loads((folder / "temporal_mintaka_09.json").read_text(encoding="utf-8"))
    broken[0]["heartRate"]["values"][0][1] = "yesterday"
    snapshot = land(tmp_path / "home2", source, [json.dumps(broken).encode()])
    with pytest.raises(SourceDataError, match=r"row 1 \(page 1 record 1\), field 'observedAt': time 'yesterday'"):
        read_reading_pages(snapshot, source)

    measurements = json.loads((payloads / "openaq_v3" / "openaq-python_measurements.json").read_text("utf-8"))
    del measurements["results"][1]["period"]
    openaq = readings_source(tmp_path / "oa", "openaq", {"endpoint": "sensors/3917/measurements"},
                             {"station_field": "sensors_id", "time_field": "period.datetimeFrom.utc",
                              "variable_field": "parameter.name", "value_field": "value", "variables": {"pm25": UG}})
    snapshot = land(tmp_path / "home3", openaq, [json.dumps(measurements).encode()])
    with pytest.raises(SourceDataError, match=r"row 2 \(page 1 record 2\), field 'period.datetimeFrom.utc': field"):
        read_reading_pages(snapshot, openaq)


def test_a_delta_chain_reads_base_pages_then_the_delta(tmp_path: Path, payloads: Path) -> None:
    folder = payloads / "fiware_ngsi_ld"
    source = temporal_source(tmp_path)
    home = tmp_path / "home"
    base = land(home, source, [(folder / "temporal_mintaka_06.json").read_bytes()])
    delta = land(home, source, [(folder / "temporal_mintaka_09.json").read_bytes()], base=base)
    assert delta.base == base.content_sha256 and delta.depth == 1 and len(delta.pages) == 2
    frame = read_reading_pages(delta, source)
    assert frame["station_id"].unique(maintain_order=True).to_list() == [
        "urn:ngsi-ld:Animal:cow001", "urn:ngsi-ld:Animal:cow021", "urn:ngsi-ld:Animal:pig003",
        "urn:ngsi-ld:Animal:pig001"]
    # Pages from two folders: the name says which snapshot each came from.
    assert frame["source_record"][-1].startswith(f"{base.content_sha256[:12]}/page-0001.json..")


def test_readings_from_api_pages_load_like_a_parquet_source(tmp_path: Path, payloads: Path) -> None:
    """OpenAQ measurement pages as a readings source of a city: load_city writes exactly the parsed
    readings (non-empty values, in canonical units) to core_readings, once per snapshot; a second
    load of the same snapshot changes nothing."""
    import duckdb
    from connectors.replay import make_city

    from pipelines.steps import load_city
    from warehouse.home import Home

    body = (payloads / "openaq_v3" / "openaq-python_measurements.json").read_bytes()
    loaded = make_city(tmp_path / "city", [{
        "id": "aq", "kind": "openaq", "openaq": {"endpoint": "sensors/3917/measurements"}, "target": "readings",
        "readings": {"station_field": "sensors_id", "time_field": "period.datetimeFrom.utc",
                     "variable_field": "parameter.name", "value_field": "value",
                     "variables": {"pm25": {"variable": "air_concentration_ugm3", "unit": "mg/m3",
                                            "data_point": "PM2.5"}}}}], country="DE", years=[2023])
    home = Home(tmp_path / "home")
    snapshot = land(home.root, loaded.config.sources[0], [body])
    expected = read_reading_pages(snapshot, loaded.config.sources[0]).filter(pl.col("value").is_not_null())

    report = load_city(home, loaded, [snapshot])
    assert report["sources"]["aq"]["mode"] == "replace"
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        rows = con.execute("""SELECT station_id, observed_at, variable, data_point, value, snapshot_id
                              FROM core_readings ORDER BY observed_at""").fetchall()
    finally:
        con.close()
    assert [(r[0], r[1].astimezone(UTC), r[4]) for r in rows] == [
        (s, t, v * 1000.0) for s, t, v in zip(expected["station_id"], expected["observed_at"], expected["value"],
                                               strict=True)]  # mg/m3 -> ug/m3
    assert {(r[2], r[3], r[5]) for r in rows} == {("air_concentration_ugm3", "PM2.5", snapshot.snapshot_id)}
    assert list((home.cache / "readings").glob(f"{snapshot.snapshot_id}-*.parquet"))
    assert load_city(home, loaded, [snapshot])["changed"] is False
