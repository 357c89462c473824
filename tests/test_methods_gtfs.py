"""GTFS service on a real day (issue #15): departures are counted for one resolved service date.

The UN SDG 11.2.1 metadata (UN-Habitat, September 2021, section 2.a) asks for "frequent service during
peak travel times"; counting every service with wednesday=1 whatever its dates doubles a stop served
by a winter and a summer timetable, and a calendar_dates-only feed counted every trip of the week.
Expected figures below are worked out by hand from the feeds written here.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from shared_data import require_shared

from canonical.errors import SourceDataError
from sources.parsers.gtfs import read_gtfs_stops

DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
BASE = {
    "stops.txt": [["stop_id", "stop_name", "stop_lat", "stop_lon"], ["S", "Square", "51.0", "7.0"],
                  ["T", "Terminus", "51.01", "7.01"]],
    "routes.txt": [["route_id", "route_type"], ["R", "3"]],
}


def write_feed(tmp_path: Path, files: dict[str, list[list[str]]]) -> Path:
    path = tmp_path / "feed.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for member, rows in {**BASE, **files}.items():
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows(rows)
            archive.writestr(member, out.getvalue())
    return path


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}:00"


def service_trips(service: str, count: int, first_minute: int, step: int) -> tuple[list[list[str]], list[list[str]]]:
    """`count` trips of `service` calling at S then T, the first at `first_minute`, every `step` minutes."""
    trips, times = [], []
    for i in range(count):
        trip = f"{service}{i}"
        trips.append(["R", service, trip])
        times.append([trip, hhmm(first_minute + i * step), "S", "1"])
        times.append([trip, hhmm(first_minute + i * step + 10), "T", "2"])
    return trips, times


def feed(services: dict[str, tuple[int, int, int]]) -> dict[str, list[list[str]]]:
    trips: list[list[str]] = [["route_id", "service_id", "trip_id"]]
    times: list[list[str]] = [["trip_id", "departure_time", "stop_id", "stop_sequence"]]
    for service, (count, first, step) in services.items():
        t, s = service_trips(service, count, first, step)
        trips += t
        times += s
    return {"trips.txt": trips, "stop_times.txt": times}


def calendar_row(service: str, days: str, start: str, end: str) -> list[str]:
    return [service, *days, start, end]


CAL_HEADER = ["service_id", *DAYS, "start_date", "end_date"]


def departures(stops: pl.DataFrame, stop: str = "S") -> tuple[int, int]:
    row = stops.filter(pl.col("stop_id") == stop).row(0, named=True)
    return row["departures"], row["departures_06_20"]


def test_two_seasonal_calendars_count_one_timetable(tmp_path: Path) -> None:
    # Winter and summer timetables both run on Wednesdays, each with 30 trips from 05:00 every 30 min
    # (05:00 ... 19:30). Counting wednesday=1 whatever the dates gave 60 at S; the real Wednesday has 30,
    # 28 of them between 06:00 and 20:00 (05:00 and 05:30 are earlier). 2024-01-03 is a holiday: winter
    # service removed, a 5-trip holiday service added, so the typical Wednesday (30 trips, the most common
    # count) is the next one, 2024-01-10.
    files = feed({"WIN": (30, 300, 30), "SUM": (30, 300, 30), "HOL": (5, 600, 60)})
    files["calendar.txt"] = [CAL_HEADER, calendar_row("WIN", "1111100", "20231001", "20240331"),
                             calendar_row("SUM", "1111100", "20240401", "20240930")]
    files["calendar_dates.txt"] = [["service_id", "date", "exception_type"], ["WIN", "20240103", "2"],
                                   ["HOL", "20240103", "1"]]
    stops = read_gtfs_stops(write_feed(tmp_path, files), "feed.zip", [2023, 2024])
    assert departures(stops) == (30, 28)
    assert departures(stops, "T") == (30, 28)  # 10 minutes later: 05:10, 05:40 early; 19:40 the last
    assert stops["service_date"].unique().to_list() == [date(2024, 1, 10)]
    rule = stops["service_rule"][0]
    assert "2024-01-10 (Wednesday), in reporting year 2024" in rule and "30 running trips" in rule


def test_calendar_dates_only_feed_counts_the_weekday(tmp_path: Path) -> None:
    # No calendar.txt: WK (30 trips) is added on every Monday-Friday of 2024, WE (35 trips) on every
    # Saturday and Sunday. Counting every trip gave 65 at S; a Wednesday has 30.
    files = feed({"WK": (30, 360, 20), "WE": (35, 360, 20)})
    dates = [["service_id", "date", "exception_type"]]
    day = date(2024, 1, 1)
    while day.year == 2024:
        dates.append(["WK" if day.weekday() < 5 else "WE", day.strftime("%Y%m%d"), "1"])
        day += timedelta(days=1)
    files["calendar_dates.txt"] = dates
    stops = read_gtfs_stops(write_feed(tmp_path, files), "feed.zip", [2024])
    # 06:00 + 20 min x 29 = 15:40 for the last: all 30 inside 06:00-20:00.
    assert departures(stops) == (30, 30)
    assert stops["service_date"][0] == date(2024, 1, 3)  # the first Wednesday of 2024


def test_latest_covered_reporting_year_else_the_feed_validity(tmp_path: Path) -> None:
    files = feed({"A": (4, 480, 60)})
    files["calendar.txt"] = [CAL_HEADER, calendar_row("A", "0010000", "20230101", "20241231")]
    path = write_feed(tmp_path, files)
    stops = read_gtfs_stops(path, "feed.zip", [2022, 2023, 2024])
    assert stops["service_date"][0] == date(2024, 1, 3)
    stops = read_gtfs_stops(path, "feed.zip", [2030])
    assert stops["service_date"][0] == date(2023, 1, 4)  # the feed's first Wednesday
    assert "covers none of the reporting years 2030" in stops["service_rule"][0]
    assert departures(stops) == (4, 4)


def test_weekday_fallback_when_no_wednesday_runs(tmp_path: Path) -> None:
    files = feed({"TH": (3, 480, 60)})
    files["calendar.txt"] = [CAL_HEADER, calendar_row("TH", "0001000", "20240101", "20241231")]
    stops = read_gtfs_stops(write_feed(tmp_path, files), "feed.zip", [2024])
    assert stops["service_date"][0] == date(2024, 1, 4)  # the first Thursday
    assert "no Wednesday has service" in stops["service_rule"][0]


def test_times_past_midnight_and_untimed_stops(tmp_path: Path) -> None:
    files = {"trips.txt": [["route_id", "service_id", "trip_id"], ["R", "A", "late"], ["R", "A", "day"]],
             "stop_times.txt": [["trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence"],
                                ["late", "25:30:00", "25:30:00", "S", "1"],  # 01:30 the next morning
                                ["day", "19:50:00", "19:50:00", "S", "1"],
                                ["day", "", "", "T", "2"]],  # untimed: takes 19:50 from S
             "calendar.txt": [CAL_HEADER, calendar_row("A", "1111111", "20240101", "20241231")]}
    stops = read_gtfs_stops(write_feed(tmp_path, files), "feed.zip", [2024])
    assert departures(stops) == (2, 1)
    assert departures(stops, "T") == (1, 1)


def test_feed_without_calendar_files_says_every_trip_counted(tmp_path: Path) -> None:
    stops = read_gtfs_stops(write_feed(tmp_path, feed({"A": (3, 480, 60)})), "feed.zip", [2024])
    assert departures(stops) == (3, 3)
    assert stops["service_date"][0] is None
    assert "neither calendar.txt nor calendar_dates.txt" in stops["service_rule"][0]


@pytest.mark.parametrize(("member", "rows", "field", "row"), [
    ("calendar.txt", [CAL_HEADER, calendar_row("A", "1111100", "2024-01-01", "20241231")], "start_date", 2),
    ("calendar_dates.txt", [["service_id", "date", "exception_type"], ["A", "20240101", "1"],
                            ["A", "20240102", "3"]], "exception_type", 3),
])
def test_bad_calendar_values_name_file_row_and_field(tmp_path: Path, member: str, rows: list[list[str]],
                                                     field: str, row: int) -> None:
    with pytest.raises(SourceDataError) as info:
        read_gtfs_stops(write_feed(tmp_path, {**feed({"A": (1, 480, 60)}), member: rows}), "feed.zip", [2024])
    assert (info.value.path, info.value.row, info.value.field) == (f"feed.zip:{member}", row, field)


def _independent_count(feed_path: Path, day: date) -> tuple[int, int]:
    """stop_times rows of the trips running on `day`, with the csv module (no polars), and the old
    wednesday=1 count for comparison."""
    with zipfile.ZipFile(feed_path) as archive:
        names = {n.rsplit("/", 1)[-1]: n for n in archive.namelist()}

        def rows(name: str) -> list[dict[str, str]]:
            if name not in names:
                return []
            return list(csv.DictReader(io.StringIO(archive.read(names[name]).decode("utf-8-sig"))))

        ymd = day.strftime("%Y%m%d")
        weekday = DAYS[day.weekday()]
        calendar = rows("calendar.txt")
        running = {r["service_id"] for r in calendar
                   if r["start_date"] <= ymd <= r["end_date"] and r[weekday].strip() == "1"}
        for r in rows("calendar_dates.txt"):
            if r["date"] == ymd:
                (running.add if r["exception_type"].strip() == "1" else running.discard)(r["service_id"])
        wednesday = {r["service_id"] for r in calendar if r["wednesday"].strip() == "1"}
        trips = rows("trips.txt")
        on_day = {r["trip_id"] for r in trips if r["service_id"] in running}
        old = {r["trip_id"] for r in trips if r["service_id"] in wednesday}
        times = rows("stop_times.txt")
        return sum(r["trip_id"] in on_day for r in times), sum(r["trip_id"] in old for r in times)


@pytest.mark.parametrize(("relative", "year"), [("fixtures/payloads/gtfs/gtfs_kit_cairns_gtfs.zip", 2014),
                                                ("fixtures/cities/new_york/nyc_subway_gtfs.zip", 2024)])
def test_real_feeds_count_the_chosen_day(relative: str, year: int) -> None:
    path = require_shared(relative)
    stops = read_gtfs_stops(path, path.name, [year])
    day = stops["service_date"][0]
    assert day.year == year and day.weekday() == 2
    new, old = _independent_count(path, day)
    assert stops["departures"].sum() == new
    assert 0 < stops["departures_06_20"].sum() < new
    assert new <= old  # the wednesday=1 count (every Wednesday timetable at once) is never lower


def test_warehouse_frequency_filter_reads_the_window_and_names_the_date(tmp_path: Path) -> None:
    """The parsed columns land in core_transit_stops (migration 0008); the frequency filter counts the
    06:00-20:00 departures and the derived rows' label names the service date."""
    from kpis.spatial.derive import _stops
    from kpis.spatial.projection import LocalProjection
    from warehouse.db import connect, migrate
    from warehouse.load import insert_frame

    files = feed({"A": (70, 240, 15)})  # 04:00 + 15 min x 69 = 21:15: 56 of 70 inside 06:00-20:00
    files["calendar.txt"] = [CAL_HEADER, calendar_row("A", "1111100", "20240101", "20241231")]
    stops = read_gtfs_stops(write_feed(tmp_path, files), "feed.zip", [2024]).with_columns(
        pl.lit("c").alias("city_id"), pl.lit("gtfs").alias("source_id"), pl.lit("snap").alias("snapshot_id"))
    assert departures(stops) == (70, 56)
    con = connect(tmp_path / "w.duckdb")
    migrate(con)
    insert_frame(con, "core_transit_stops", stops)
    found = _stops(con, "c", LocalProjection(7.0, 51.0))
    assert sorted(found.departures.tolist()) == [56, 56]
    assert found.label == "GTFS snapshot snap; departures 06:00-20:00 on 2024-01-03"
