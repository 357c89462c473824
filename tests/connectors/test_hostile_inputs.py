"""Hostile inputs are refused cleanly: an error naming the file, and nothing written outside the home.

- a GTFS zip whose entry names climb out of a folder ("zip-slip": `../`, absolute paths, drive letters);
- a zip bomb (a member deflated far beyond what a text table compresses to);
- a CSV line of hundreds of MB (a sparse 300 MB file; rejected by a streaming scan in constant memory);
- an XML entity bomb ("billion laughs") or an external entity in SDMX-ML (defusedxml refuses both).
"""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from canonical.errors import SourceDataError
from connectors.replay import FAST_HTTP, fetch, make_city
from sources.parsers.tabular import read_csv
from warehouse.load import parse_source, read_table

GTFS_TABLES = {
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,Main St,50.1,8.6\n",
    "routes.txt": "route_id,route_type\nR1,3\n",
    "trips.txt": "route_id,service_id,trip_id\nR1,WK,T1\n",
    "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT1,08:00:00,08:00:00,S1,1\n",
}


def gtfs_zip(extra: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in GTFS_TABLES.items():
            archive.writestr(name, text)
        for name, data in extra.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize("evil", ["../../evil.txt", "gtfs/../../../evil.txt", "/tmp/citykpi-zip-slip-evil.txt",
                                  "C:/evil.txt", "..\\..\\evil.txt"])
def test_zip_slip_entries_are_refused(tmp_path: Path, server: HTTPServer, home: Path, evil: str) -> None:
    server.expect_request("/feed.zip").respond_with_data(gtfs_zip({evil: b"pwned"}), content_type="application/zip")
    loaded = make_city(tmp_path / "city", [{"id": "transit", "kind": "http", "target": "transit_feed",
                                            "location": server.url_for("/feed.zip"), "http": FAST_HTTP}])
    outside_before = files_under(tmp_path.parent)
    snapshot = fetch(loaded, home)  # landing the bytes is fine: they are only bytes
    with pytest.raises(SourceDataError, match=r"feed\.zip: unsafe entry name .*evil\.txt.* \(path traversal, "
                                              r"'zip-slip'\); refusing the archive"):
        parse_source(loaded, loaded.config.sources[0], snapshot)
    created = files_under(tmp_path.parent) - outside_before
    assert all(home in p.parents or p == home or (tmp_path / "city") in p.parents for p in created), created
    assert not any(p.name == "evil.txt" for p in files_under(tmp_path.parent))
    assert not Path("/tmp/citykpi-zip-slip-evil.txt").exists()


def test_a_zip_bomb_is_refused_before_inflating(tmp_path: Path, home: Path) -> None:
    feed = tmp_path / "city" / "bomb.zip"
    feed.parent.mkdir(parents=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, text in GTFS_TABLES.items():
            if name != "stop_times.txt":
                archive.writestr(name, text)
        with archive.open("stop_times.txt", "w", force_zip64=True) as member:
            member.write(b"trip_id,arrival_time,departure_time,stop_id,stop_sequence\n")
            block = b"\0" * (1 << 20)
            for _ in range(64):  # 64 MiB of zeros deflate to ~64 KB: ratio ~1000:1
                member.write(block)
    feed.write_bytes(buffer.getvalue())
    loaded = make_city(tmp_path / "city", [{"id": "transit", "kind": "file", "target": "transit_feed",
                                            "location": "bomb.zip"}])
    snapshot = fetch(loaded, home)
    tracemalloc.start()
    try:
        with pytest.raises(SourceDataError, match=r"bomb\.zip: entry 'stop_times\.txt' has compression ratio "
                                                  r"[0-9,]+:1 .*refusing a possible zip bomb"):
            parse_source(loaded, loaded.config.sources[0], snapshot)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # nothing was inflated


@pytest.mark.parametrize("name", ["gtfs_kit_sample_gtfs.zip", "gtfs_kit_cairns_gtfs.zip"])
def test_recorded_gtfs_feeds_pass_the_checks(tmp_path: Path, server: HTTPServer, payloads: Path, home: Path,
                                         name: str) -> None:
    body = (payloads / "gtfs" / name).read_bytes()
    server.expect_request(f"/feeds/{name}").respond_with_data(body, content_type="application/zip")
    loaded = make_city(tmp_path / "city", [{"id": "transit", "kind": "http", "target": "transit_feed",
                                            "location": server.url_for(f"/feeds/{name}"), "http": FAST_HTTP}])
    parsed = parse_source(loaded, loaded.config.sources[0], fetch(loaded, home))
    assert parsed.frame is not None and parsed.frame.height > 0
    assert parsed.frame["departures"].sum() > 0


def test_a_csv_line_of_300_mb_is_refused_in_constant_memory(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:
        handle.write(b"year,value\n2020,1\n2021,")
        handle.truncate(300_000_000)  # sparse: the line of 300 MB costs no disk and no time to write
        handle.seek(0, 2)
        handle.write(b"\n2022,3\n")
    tracemalloc.start()
    try:
        with pytest.raises(SourceDataError, match=r"huge\.csv, row 3: line longer than 67,108,864 bytes"):
            read_csv(path, None, "huge.csv")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak  # one 1 MiB chunk at a time, never the line (memory, not wall time: load-proof)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<message:StructureSpecificData xmlns:message="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message">
 <message:DataSet><Series geo="&lol9;"><Obs TIME_PERIOD="2020" OBS_VALUE="1"/></Series></message:DataSet>
</message:StructureSpecificData>
"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE data [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<message:StructureSpecificData xmlns:message="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message">
 <message:DataSet><Series geo="&secret;"><Obs TIME_PERIOD="2020" OBS_VALUE="1"/></Series></message:DataSet>
</message:StructureSpecificData>
"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE], ids=["billion-laughs", "external-entity"])
def test_an_xml_entity_bomb_in_sdmx_ml_is_refused(tmp_path: Path, server: HTTPServer, home: Path,
                                                  body: bytes) -> None:
    server.expect_request("/sdmx/2.1/data/urb_cpop1/DE001C").respond_with_data(body, content_type="application/xml")
    loaded = make_city(tmp_path / "city", [{
        "id": "urban-audit", "kind": "eurostat", "target": "observations", "http": FAST_HTTP,
        "eurostat": {"base_url": server.url_for("/"), "dataset": "urb_cpop1", "format": "sdmx-ml",
                     "filters": {"cities": "DE001C"}},
        "observations": {"layout": "long", "year_field": "year", "variable_field": "geo", "value_field": "OBS_VALUE",
                         "variables": {"DE001C": {"variable": "population", "unit": "person"}}}}], country="DE")
    snapshot = fetch(loaded, home)
    # Refused before any expansion: the memory peak stays small (the bomb expands to gigabytes). Memory,
    # not wall time, so a loaded machine cannot break it.
    tracemalloc.start()
    try:
        with pytest.raises(SourceDataError,
                           match=r"urb_cpop1\.xml: refused unsafe XML \((DTDForbidden|EntitiesForbidden)"):
            read_table(loaded.config.sources[0], snapshot)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, peak
