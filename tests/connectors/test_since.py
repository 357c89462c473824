"""Since-filters: append-only feeds fetched as deltas on the previous snapshot (sources/kinds/_since.py).

Each replay filters the layer's recorded records (real in ../shared, invented in the bundled layer) the
way the platform documents it (SoQL `$where`, CKAN `datastore_search_sql`, ODSQL `where`, OpenAQ
`datetime_from`, NGSI-LD `timerel=after`), and the feed grows between fetches by records copied from
the recorded ones with later timestamps.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from canonical.errors import FetchError
from connectors.replay import FAST_HTTP, ckan_package_show, fetch, json_response, make_city, snapshot_dirs
from sources.config import LoadedConfig
from sources.fetch import current_snapshot, fetch_source
from sources.parsers.readings import read_reading_pages
from warehouse.load import read_table

DATASET = "abcd-1234"


def current_sha(home: Path, source_id: str) -> str:
    snapshot = current_snapshot(home / "raw", home, "replay-city", source_id)
    assert snapshot is not None
    return snapshot.content_sha256


def meta_of(snapshot: Any) -> dict[str, Any]:
    return json.loads((snapshot.path.parent / "meta.json").read_text(encoding="utf-8"))


# ---- Socrata ----------------------------------------------------------------------------------


def bike_rows(payloads: Path) -> list[dict[str, Any]]:
    folder = payloads / "socrata"
    return [*json.loads((folder / "sodapy_resource_bike_counts_page_1.json").read_text(encoding="utf-8")),
            *json.loads((folder / "sodapy_resource_bike_counts_page_2.json").read_text(encoding="utf-8"))]


def later(row: dict[str, Any], date: str, counts: int) -> dict[str, Any]:
    return {**row, "date": date, "counts": str(counts)}


class SodaFeed:
    """SODA /resource: `$where` may hold `<field> > '<value>'` (ANDed with the configured filter)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.wheres: list[str | None] = []

    def __call__(self, request: Request) -> Response:
        where = request.args.get("$where")
        self.wheres.append(where)
        rows = self.rows
        match = re.search(r"(\w+) > '((?:[^']|'')*)'", where or "")
        if match:
            field, value = match.group(1), match.group(2).replace("''", "'")
            rows = [row for row in rows if str(row.get(field, "")) > value]
        limit, offset = int(request.args["$limit"]), int(request.args["$offset"])
        return json_response(rows[offset:offset + limit])


def soda_city(tmp_path: Path, server: HTTPServer, **socrata: Any) -> LoadedConfig:
    # Page size 1000 (the default) for every layer: the feed is served from memory, not as recorded pages.
    return make_city(tmp_path / "city", [{
        "id": "bikes", "kind": "socrata", "target": "observations", "http": FAST_HTTP,
        "socrata": {"base_url": server.url_for("/").rstrip("/"), "dataset": DATASET, "since_field": "date",
                    "since_key": ["id", "date"], **socrata},
        "observations": {"year_field": "status", "variables": {"counts": {"variable": "population",
                                                                          "unit": "person"}}}}])


def test_socrata_delta_then_nothing_new_then_offline(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                     expected: dict[str, Any], home: Path) -> None:
    soda = expected["socrata"]
    newest = soda["last_row"][1]
    feed = SodaFeed(bike_rows(payloads))
    assert len(feed.rows) == soda["rows"]
    server.expect_request(f"/resource/{DATASET}.json").respond_with_handler(feed)
    loaded = soda_city(tmp_path, server)
    full = fetch(loaded, home)
    assert full.new and full.base is None and meta_of(full)["request"]["since"]["field"] == "date"
    # shared: 1000 + 1 rows in two pages, bundled: 81 rows in one short page; no filter yet
    assert feed.wheres == [None] * (1 + soda["rows"] // 1000)

    feed.rows = [*feed.rows, later(feed.rows[-1], "2016-10-02T02:00:00.000", 7),
                 later(feed.rows[-1], "2016-10-02T02:15:00.000", 9)]
    delta = fetch(loaded, home)
    assert feed.wheres[-1] == f"date > '{newest}'"
    assert delta.new and delta.base == full.content_sha256 and delta.depth == 1
    assert [p.name for p in delta.own_pages] == ["page-0001.json"]
    assert delta.pages == (*full.pages, *delta.own_pages)
    meta = meta_of(delta)
    assert meta["base"] == full.content_sha256 and meta["request"]["since"]["after"] == newest
    assert meta["request"]["since"]["records"] == 2 and meta["request"]["rows"] == 2
    # The hash covers the own listing and the base, so it names the whole chain.
    listing = "".join(f"{p['sha256']}  {p['file']}\n" for p in meta["pages"]) + f"base {full.content_sha256}\n"
    assert delta.content_sha256 == hashlib.sha256(listing.encode()).hexdigest()
    table = read_table(loaded.config.sources[0], delta)
    assert len(table.rows) == soda["rows"] + 2 and [r[2] for r in table.rows[-2:]] == ["7", "9"]
    assert table.row_label(-1).endswith(f"(page {len(full.pages) + 1} record 2)")

    again = fetch(loaded, home)  # nothing newer: no new snapshot, CURRENT stays on the delta
    assert feed.wheres[-1] == "date > '2016-10-02T02:15:00.000'"
    assert not again.new and again.content_sha256 == delta.content_sha256
    assert len(snapshot_dirs(home, "replay-city", "bikes")) == 2

    offline = fetch_source(loaded, loaded.config.sources[0], home / "raw", home, offline=True)
    assert offline.pages == delta.pages
    assert read_table(loaded.config.sources[0], offline).rows == table.rows


def test_socrata_chain_is_bounded_and_a_changed_query_fetches_in_full(tmp_path: Path, server: HTTPServer,
                                                                      payloads: Path, home: Path) -> None:
    feed = SodaFeed(bike_rows(payloads)[:3])
    server.expect_request(f"/resource/{DATASET}.json").respond_with_handler(feed)
    loaded = soda_city(tmp_path, server, since_max_deltas=2)
    depths = []
    for minute in range(4):
        feed.rows = [*feed.rows, later(feed.rows[-1], f"2016-10-03T00:0{minute}:00.000", minute)]
        snapshot = fetch(loaded, home)
        depths.append(snapshot.depth)
    assert depths == [0, 1, 2, 0]  # the 1st fetch is full, then two deltas, then full again
    assert current_sha(home, "bikes") == snapshot.content_sha256
    assert len(read_table(loaded.config.sources[0], snapshot).rows) == 7  # 3 + 4, none twice

    changed = soda_city(tmp_path, server, since_max_deltas=2, where="status = '0'")
    feed.rows = [*feed.rows, later(feed.rows[-1], "2016-10-04T00:00:00.000", 1)]
    full = fetch(changed, home)
    assert full.depth == 0 and feed.wheres[-1] == "status = '0'"


def test_a_failed_delta_fetch_keeps_the_previous_snapshot(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                          home: Path) -> None:
    feed = SodaFeed(bike_rows(payloads)[:5])
    broken = {"on": False}

    def handle(request: Request) -> Response:
        if broken["on"]:
            return json_response({"message": "Unknown column `date`", "error": True}, status=400)
        return feed(request)

    server.expect_request(f"/resource/{DATASET}.json").respond_with_handler(handle)
    loaded = soda_city(tmp_path, server)
    full = fetch(loaded, home)
    broken["on"] = True
    with pytest.raises(FetchError, match=r"source 'bikes': GET http://127\.0\.0\.1:\d+/resource/abcd-1234\.json\?"
                                         r".*%24where=date\+%3E.*HTTP 400"):
        fetch(loaded, home)
    assert current_sha(home, "bikes") == full.content_sha256
    assert snapshot_dirs(home, "replay-city", "bikes") == [full.content_sha256]


# ---- OpenDataSoft: a record updated in place is refused as a delta --------------------------------


def ods_rows(payloads: Path) -> list[dict[str, Any]]:
    body = json.loads((payloads / "opendatasoft" / "ods-openapi-v2.1_example_records-v2.1.json")
                      .read_text(encoding="utf-8"))
    return list(body["results"])


class OdsFeed:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.wheres: list[str | None] = []

    def __call__(self, request: Request) -> Response:
        where = request.args.get("where")
        self.wheres.append(where)
        rows = self.rows
        if where:
            match = re.search(r"(\w+) > date'([^']*)'", where)
            assert match, where
            rows = [row for row in rows if str(row[match.group(1)]) > match.group(2)]
        limit, offset = int(request.args["limit"]), int(request.args["offset"])
        return json_response({"total_count": len(rows), "results": rows[offset:offset + limit]})


def test_opendatasoft_delta_and_update_in_place_falls_back_to_a_full_fetch(
        tmp_path: Path, server: HTTPServer, payloads: Path, home: Path) -> None:
    rows = ods_rows(payloads)
    feed = OdsFeed(sorted(rows, key=lambda r: r["modification_date"]))
    server.expect_request("/api/explore/v2.1/catalog/datasets/geonames/records").respond_with_handler(feed)
    loaded = make_city(tmp_path / "city", [{
        "id": "places", "kind": "opendatasoft", "target": "observations", "http": FAST_HTTP,
        "opendatasoft": {"base_url": server.url_for("/").rstrip("/"), "dataset": "geonames", "mode": "records",
                         "since_field": "modification_date", "since_key": ["geoname_id"]},
        "observations": {"year_field": "dem", "variables": {"population": {"variable": "population",
                                                                            "unit": "person"}}}}])
    full = fetch(loaded, home)
    newest = max(r["modification_date"] for r in rows)
    added = {**rows[0], "geoname_id": "9999999", "modification_date": "2030-01-01"}
    feed.rows = [*feed.rows, added]
    delta = fetch(loaded, home)
    assert feed.wheres[-1] == f"modification_date > date'{newest}'"
    assert delta.base == full.content_sha256 and len(read_table(loaded.config.sources[0], delta).rows) == len(rows) + 1

    # A landed place is corrected: its modification date moves on, its id stays. Not append-only.
    corrected = {**rows[1], "population": 1, "modification_date": "2030-02-01"}
    feed.rows = [r for r in feed.rows if r["geoname_id"] != rows[1]["geoname_id"]] + [corrected]
    refetched = fetch(loaded, home)
    assert refetched.new and refetched.base is None and refetched.depth == 0
    assert feed.wheres[-2:] == ["modification_date > date'2030-01-01'", None]
    table = read_table(loaded.config.sources[0], refetched)
    ids = [row[table.columns.index("geoname_id")] for row in table.rows]
    assert len(ids) == len(set(ids)) == len(rows) + 1  # the corrected place once, not twice


# ---- CKAN DataStore via datastore_search_sql --------------------------------------------------------


def test_ckan_since_uses_datastore_search_sql(tmp_path: Path, server: HTTPServer, payloads: Path,
                                              new_york: Path, expected: dict[str, Any], home: Path) -> None:
    from connectors.replay import ckan_datastore
    from connectors.test_ckan import laus_records

    package, resource, resource_name = (expected["ckan"][k] for k in ("package", "resource_id", "resource_name"))

    records = laus_records(new_york)
    package_body = ckan_package_show(payloads, server)
    server.expect_request("/api/3/action/package_show").respond_with_json(package_body)
    server.expect_request("/api/3/action/datastore_search").respond_with_handler(ckan_datastore(resource, records))
    sqls: list[str] = []
    grown = [*records, {**records[-1], "_id": len(records) + 1, "Month": "13"}]

    def sql(request: Request) -> Response:
        text = request.args["sql"]
        sqls.append(text)
        match = re.fullmatch(r'SELECT \* FROM "([^"]+)" WHERE "_id" > \'(\d+)\' ORDER BY "_id" LIMIT (\d+) '
                             r"OFFSET (\d+)", text)
        assert match and match.group(1) == resource, text
        after, limit, offset = (int(match.group(i)) for i in (2, 3, 4))
        rows = [r for r in grown if r["_id"] > after][offset:offset + limit]
        return json_response({"success": True, "result": {"fields": [{"id": "_id", "type": "int"}],
                                                          "records": rows}})

    server.expect_request("/api/3/action/datastore_search_sql").respond_with_handler(sql)
    loaded = make_city(tmp_path / "city", [{
        "id": "laus", "kind": "ckan", "target": "observations", "http": FAST_HTTP,
        "ckan": {"base_url": server.url_for("/").rstrip("/"), "package": package, "resource": resource_name,
                 "page_size": 50, "since_field": "_id"},
        "observations": {"year_field": "Year", "variables": {"Unemployed": {"variable": "unemployed_persons",
                                                                            "unit": "person"}}}}])
    full = fetch(loaded, home)
    delta = fetch(loaded, home)
    assert sqls == [f'SELECT * FROM "{resource}" WHERE "_id" > \'{len(records)}\' ORDER BY "_id" LIMIT 50 OFFSET 0']
    assert delta.base == full.content_sha256 and meta_of(delta)["request"]["mode"] == "datastore_sql"
    assert len(read_table(loaded.config.sources[0], delta).rows) == len(records) + 1


def test_ckan_with_sql_search_disabled_is_a_clear_error(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                        new_york: Path, expected: dict[str, Any], home: Path) -> None:
    from connectors.replay import ckan_datastore
    from connectors.test_ckan import laus_records

    package, resource, resource_name = (expected["ckan"][k] for k in ("package", "resource_id", "resource_name"))

    server.expect_request("/api/3/action/package_show").respond_with_json(ckan_package_show(payloads, server))
    server.expect_request("/api/3/action/datastore_search").respond_with_handler(
        ckan_datastore(resource, laus_records(new_york)))
    server.expect_request("/api/3/action/datastore_search_sql").respond_with_json(
        {"success": False, "error": {"__type": "Authorization Error",
                                     "message": "Access denied: datastore_search_sql is not enabled"}}, status=403)
    loaded = make_city(tmp_path / "city", [{
        "id": "laus", "kind": "ckan", "target": "observations", "http": FAST_HTTP,
        "ckan": {"base_url": server.url_for("/").rstrip("/"), "package": package, "resource": resource_name,
                 "since_field": "_id"},
        "observations": {"year_field": "Year", "variables": {"Unemployed": {"variable": "unemployed_persons",
                                                                            "unit": "person"}}}}])
    full = fetch(loaded, home)
    with pytest.raises(FetchError, match=r"source 'laus': GET .*/datastore_search_sql\?sql=SELECT.*HTTP 403"):
        fetch(loaded, home)
    assert current_sha(home, "laus") == full.content_sha256


# ---- OpenAQ measurements ------------------------------------------------------------------------


def test_openaq_measurements_delta_with_datetime_from_just_after_the_newest(
        tmp_path: Path, server: HTTPServer, payloads: Path, expected: dict[str, Any], home: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    facts = expected["openaq"]
    monkeypatch.setenv("OPENAQ_API_KEY", "k-123")
    body = json.loads((payloads / "openaq_v3" / "openaq-python_measurements.json").read_text(encoding="utf-8"))
    results = list(body["results"])
    froms: list[str | None] = []
    honour = {"filter": True}

    def handle(request: Request) -> Response:
        start = request.args.get("datetime_from")
        froms.append(start)
        rows = results
        if start and honour["filter"]:  # inclusive, as OpenAQ's bound is
            rows = [r for r in rows if r["period"]["datetimeFrom"]["utc"] >= start.replace("Z", "+00:00")]
        return json_response({"meta": {**body["meta"], "found": len(rows)}, "results": rows})

    server.expect_request("/v3/sensors/3917/measurements").respond_with_handler(handle)
    loaded = make_city(tmp_path / "city", [{
        "id": "pm25", "kind": "openaq", "target": "readings", "http": FAST_HTTP,
        "openaq": {"base_url": server.url_for("/v3"), "endpoint": "sensors/3917/measurements",
                   "since_field": "period.datetimeFrom.utc"},
        "readings": {"station_field": "sensors_id", "time_field": "period.datetimeFrom.utc",
                     "variable_field": "parameter.name", "value_field": "value",
                     "variables": {"pm25": {"variable": "air_concentration_ugm3", "unit": "ug/m3",
                                            "data_point": "PM2.5"}}}}])
    full = fetch(loaded, home)
    unchanged = fetch(loaded, home)
    assert froms == [None, facts["after_newest"]] and unchanged.content_sha256 == full.content_sha256
    assert not unchanged.new

    def hours_later(period: dict[str, Any], hours: int) -> dict[str, str]:
        return {key: (datetime.fromisoformat(value) + timedelta(hours=hours)).isoformat()
                for key, value in period["datetimeFrom"].items()}

    hour = json.loads(json.dumps(results[-1]))  # the next hour, as the feed would publish it
    hour["period"]["datetimeFrom"] = hours_later(results[-1]["period"], 1)
    hour["value"] = 9.25
    results.append(hour)
    delta = fetch(loaded, home)
    assert delta.base == full.content_sha256
    frame = read_reading_pages(delta, loaded.config.sources[0])
    assert frame["value"].to_list() == [*facts["values"], 9.25] and frame["station_id"].unique().to_list() == ["3917"]

    # A server ignoring the filter repeats landed measurements: refused, fetched in full, no duplicates.
    honour["filter"] = False
    results.append({**hour, "period": {**hour["period"], "datetimeFrom": hours_later(hour["period"], 1)}})
    refetched = fetch(loaded, home)
    after_hour = (datetime.fromisoformat(hour["period"]["datetimeFrom"]["utc"]) + timedelta(seconds=1))
    assert refetched.base is None and froms[-2:] == [after_hour.strftime("%Y-%m-%dT%H:%M:%SZ"), None]
    assert read_reading_pages(refetched, loaded.config.sources[0]).height == len(facts["values"]) + 2


# ---- NGSI-LD temporal (Mintaka) ------------------------------------------------------------------


def test_ngsi_ld_temporal_since_asks_after_the_newest_instance(tmp_path: Path, server: HTTPServer, payloads: Path,
                                                               expected: dict[str, Any], home: Path) -> None:
    entities = json.loads((payloads / "fiware_ngsi_ld" / "temporal_mintaka_06.json").read_text(encoding="utf-8"))
    asked: list[tuple[str, str]] = []

    def handle(request: Request) -> Response:
        timerel, time_at = request.args["timerel"], request.args["timeAt"]
        asked.append((timerel, time_at))
        assert timerel == "after" and "endTimeAt" not in request.args and "lastN" not in request.args
        page = []
        for entity in entities:
            kept = {k: v for k, v in entity.items() if k in ("id", "type")}
            for name, attr in entity.items():
                if isinstance(attr, dict) and "values" in attr:
                    values = [pair for pair in attr["values"] if pair[1] > time_at]  # strictly after
                    if values:
                        kept[name] = {**attr, "values": values}
            if len(kept) > 2:
                page.append(kept)
        return Response(json.dumps(page), status=200, content_type="application/ld+json")

    server.expect_request("/temporal/entities").respond_with_handler(handle)
    loaded = make_city(tmp_path / "city", [{
        "id": "heart", "kind": "ngsi_ld", "target": "readings", "http": FAST_HTTP,
        "ngsi_ld": {"base_url": server.url_for("/"), "type": "Animal",
                    "temporal": {"url": server.url_for("/temporal/entities"), "attrs": "heartRate",
                                 "timerel": "after", "time_at": "2021-09-16T00:00:00Z", "since": True}},
        "readings": {"station_field": "id", "time_field": "observedAt", "variable_field": "attribute",
                     "value_field": "value", "variables": {"heartRate": {"variable": "air_concentration_ugm3",
                                                                         "unit": "ug/m3"}}}}], country="DE")
    full = fetch(loaded, home)
    same = fetch(loaded, home)
    assert asked[-1] == ("after", expected["fiware"]["temporal"]["newest"])
    assert same.content_sha256 == full.content_sha256

    entities[0]["heartRate"]["values"].insert(0, [55.0, "2021-09-16T11:00:04.100Z"])
    delta = fetch(loaded, home)
    assert delta.base == full.content_sha256 and meta_of(delta)["request"]["since"]["records"] == 1
    frame = read_reading_pages(delta, loaded.config.sources[0])
    assert frame.height == 7 and frame.row(-1)[3] == 55.0


def test_a_delta_whose_base_is_gone_fails_offline_and_refetches_in_full(tmp_path: Path, server: HTTPServer,
                                                                         payloads: Path, home: Path) -> None:
    import shutil

    feed = SodaFeed(bike_rows(payloads)[:4])
    server.expect_request(f"/resource/{DATASET}.json").respond_with_handler(feed)
    loaded = soda_city(tmp_path, server)
    full = fetch(loaded, home)
    feed.rows = [*feed.rows, later(feed.rows[-1], "2016-10-09T00:00:00.000", 5)]
    delta = fetch(loaded, home)
    assert delta.base == full.content_sha256
    base_dir = full.path.parent
    base_dir.chmod(0o755)
    shutil.rmtree(base_dir)
    with pytest.raises(FetchError, match=r"source 'bikes' of 'replay-city': current snapshot unreadable: .*base "
                                         r"snapshot of a delta is missing"):
        fetch_source(loaded, loaded.config.sources[0], home / "raw", home, offline=True)
    again = fetch(loaded, home)  # a damaged chain is not continued: a full fetch repairs it
    assert again.base is None and len(read_table(loaded.config.sources[0], again).rows) == 5
