"""Hostile source data through `citykpi run`: exit 2 with one line naming the source or file, and
the baseline city's rows and releases untouched. (The parser-level defences are tested one by one
in tests/connectors/test_hostile_inputs.py; here each goes through the whole command.)"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from conftest import subprocess_env
from pytest_httpserver import HTTPServer

from hostile.conftest import Baseline

OBS = {"year_field": "year", "variables": {"value": {"variable": "population", "unit": "person"}}}
GTFS = {"stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,Main,50.1,8.6\n",
        "routes.txt": "route_id,route_type\nR1,3\n", "trips.txt": "route_id,service_id,trip_id\nR1,WK,T1\n",
        "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT1,08:00:00,08:00:00,S1,1\n"}


def _zip(extra: dict[str, bytes], *, bomb: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, text in GTFS.items():
            if not (bomb and name == "stop_times.txt"):
                archive.writestr(name, text)
        for name, data in extra.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
        if bomb:
            with archive.open("stop_times.txt", "w", force_zip64=True) as member:
                member.write(GTFS["stop_times.txt"].encode())
                for _ in range(32):
                    member.write(b"\0" * (1 << 20))
    return buffer.getvalue()


def _deep_json() -> bytes:
    return b'{"records": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def _deep_geojson() -> bytes:
    return (b'{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": "01", "x": '
            + b"[" * 100_000 + b"]" * 100_000 + b'}, "geometry": null}]}')


# name -> (file name, bytes, extra source keys, expected error)
CASES: dict[str, tuple[str, Callable[[], bytes], dict[str, Any], str]] = {
    "nul-bytes": ("pop.csv", lambda: b"year,value\n2023,1\x00\x002\n2024,3\n", {},
                  r"pop\.csv, row 2: the file holds NUL characters"),
    "ragged-rows": ("pop.csv", lambda: b"year,value\n2023,1\n2024,2,3,4\n", {}, r"pop\.csv, row 3"),
    "truncated-json": ("pop.json", lambda: b'[{"year": 2023, "value": 1}, {"year": 20', {"format": "json"},
                       r"pop\.json: not valid JSON"),
    # Numbers follow the locale only: NaN / Infinity are refused at the load, naming the row and field.
    "nan-infinity": ("pop.json", lambda: b'[{"year": 2023, "value": NaN}, {"year": 2024, "value": Infinity}]',
                     {"format": "json"}, r"source 'data': pop\.json, row \d+, field 'value': .* is not a number"),
    "deep-json": ("pop.json", _deep_json, {"format": "json"}, r"pop\.json: nested deeper than citykpi reads"),
    "deep-geojson": ("districts.geojson", _deep_geojson, {"target": "areas", "areas": {"id_field": "code"}},
                     r"districts\.geojson: nested deeper than citykpi reads"),
    "zip-slip": ("feed.zip", lambda: _zip({"../../evil.txt": b"pwned"}), {"target": "transit_feed"},
                 r"feed\.zip: unsafe entry name .*zip-slip"),
    "zip-bomb": ("feed.zip", lambda: _zip({}, bomb=True), {"target": "transit_feed"},
                 r"feed\.zip: entry 'stop_times\.txt' has compression ratio .*zip bomb"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_files_are_rejected_in_one_line(guard: Baseline, case: str) -> None:
    filename, payload, extra, match = CASES[case]
    source: dict[str, Any] = {"id": "data", "kind": "file", "location": filename, "target": "observations",
                              "observations": OBS, **extra}
    if source["target"] != "observations":
        del source["observations"]
    config = guard.city(case, [source])
    (config.parent / filename).write_bytes(payload())
    line = guard.assert_rejected(guard.run("run", "--strict", config), match)
    assert "internal error" not in line
    assert not (guard.root / "evil.txt").exists() and not (guard.home.parent.parent / "evil.txt").exists()


def test_html_served_as_json_is_rejected(guard: Baseline, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/pop.json").respond_with_data("<!doctype html><html><body>Login</body></html>",
                                                             content_type="text/html")
    config = guard.city("html", [{"id": "data", "kind": "http", "location": httpserver.url_for("/pop.json"),
                                  "target": "observations", "observations": OBS,
                                  "http": {"attempts": 1, "timeout": 5}}])
    guard.assert_rejected(guard.run("run", config), r"source 'data': GET http://.*/pop\.json: served an HTML page")


def test_a_secret_with_a_trailing_newline_is_refused_unshown(guard: Baseline, httpserver: HTTPServer) -> None:
    token = "trailing-newline-token-5a4b3c"
    httpserver.expect_request("/pop.json").respond_with_json([{"year": 2023, "value": 1}])
    config = guard.city("secret", [{"id": "data", "kind": "http", "location": httpserver.url_for("/pop.json"),
                                    "target": "observations", "observations": OBS,
                                    "http": {"attempts": 1, "headers": {"Authorization": "${HOSTILE_TOKEN}"}}}])
    result = guard.run("run", config, env=subprocess_env(guard.home, HOSTILE_TOKEN=token + "\n"))
    guard.assert_rejected(result, r"environment variable HOSTILE_TOKEN ends with a control character \(U\+000A; "
                                  r"a trailing newline\?\)")
    assert token not in result.stderr + result.stdout
    assert not httpserver.log
    assert token not in "".join(p.read_text(errors="replace") for p in guard.home.rglob("*.json"))


def test_landed_bytes_of_a_rejected_source_stay_out_of_the_warehouse(guard: Baseline) -> None:
    """Nothing of a rejected city reaches the warehouse tables (NaN / Infinity are refused at the load too)."""
    import duckdb

    con = duckdb.connect(str(guard.home / "warehouse.duckdb"), read_only=True)
    try:
        cities = {r[0] for r in con.execute("SELECT DISTINCT city_id FROM observations").fetchall()}
    finally:
        con.close()
    assert cities == {"demo-city"}, cities
