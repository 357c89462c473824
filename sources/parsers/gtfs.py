"""GTFS static feeds: stops with the route types serving them and their departures on one real weekday.

Departures count the stop_times of the trips running on one service date, resolved from calendar.txt
(weekday flags within start_date..end_date) and calendar_dates.txt (exception_type 1 adds a service on
a date, 2 removes it), as the GTFS reference defines them. Counting every service with `wednesday=1`
whatever its dates counts a winter and a summer timetable twice, and a calendar_dates-only feed would
count every trip of every day. The date (`service_date`) is a typical Wednesday inside the latest
reporting year the feed's validity covers, or inside the feed's validity when it covers none of them
(the row's `service_rule` says which and why): among the candidate Wednesdays, the one whose number of
running trips is the most common (holiday Wednesdays run fewer), the earliest on ties. A feed without
any calendar file (invalid GTFS) counts every trip, and its rule says so.

`departures_06_20` counts the departures between 06:00 and 20:00 (GTFS times past 24:00 belong to the
next morning): the window of the frequency filter in kpis/spatial/transit.py ("frequent service during
peak travel times", UN SDG 11.2.1 metadata, 2021, section 2.a; 4 departures an hour over 06:00-20:00).
A stop_time without times (allowed for stops between timepoints) takes the time of the trip's last
timed stop before it.

The archive is read in memory, never extracted, and checked before any member is read: an entry
name that could escape a folder (`../`, an absolute path, a drive letter: "zip-slip") is refused,
and so is a zip bomb (a member or the whole feed inflating beyond a size limit, or a member
compressed more than any text table plausibly is). Member reads are bounded as well, in case a
header lies about its size.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path, PurePosixPath

import polars as pl

from canonical.errors import SourceDataError

REQUIRED = ("stops.txt", "routes.txt", "trips.txt", "stop_times.txt")
MAX_MEMBER_BYTES = 2 << 30      # largest uncompressed member (big cities' stop_times.txt: ~1 GB)
MAX_TOTAL_BYTES = 4 << 30       # all members together
MAX_RATIO = 200                 # CSV text deflates 5-30x; a bomb 1000x and more
RATIO_MIN_BYTES = 1 << 20       # tiny members may compress oddly; the ratio applies above this size
MAX_MEMBERS = 10_000


def check_archive(archive: zipfile.ZipFile, display_name: str) -> None:
    """Refuse zip-slip entry names and zip bombs before reading anything."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise SourceDataError(display_name, f"zip has {len(infos):,} entries (limit {MAX_MEMBERS:,})")
    total = 0
    for info in infos:
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]) or "\0" in name:
            raise SourceDataError(display_name, f"unsafe entry name {name!r} in zip (path traversal, "
                                  "'zip-slip'); refusing the archive")
        total += info.file_size
        if info.file_size > MAX_MEMBER_BYTES:
            raise SourceDataError(display_name, f"entry {name!r} inflates to {info.file_size:,} bytes "
                                  f"(limit {MAX_MEMBER_BYTES:,}); refusing a possible zip bomb")
        if info.file_size > RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            raise SourceDataError(display_name, f"entry {name!r} has compression ratio {ratio:,.0f}:1 "
                                  f"({info.compress_size:,} -> {info.file_size:,} bytes; limit {MAX_RATIO}:1); "
                                  "refusing a possible zip bomb")
    if total > MAX_TOTAL_BYTES:
        raise SourceDataError(display_name, f"zip inflates to {total:,} bytes in all (limit {MAX_TOTAL_BYTES:,}); "
                              "refusing a possible zip bomb")


def _read(archive: zipfile.ZipFile, name: str, display_name: str) -> pl.DataFrame:
    member = next((n for n in archive.namelist() if n.rsplit("/", 1)[-1] == name), None)
    if member is None:
        raise SourceDataError(display_name, f"GTFS feed lacks {name}")
    try:
        with archive.open(member) as handle:
            data = handle.read(MAX_MEMBER_BYTES + 1)  # bounded even if the header lies about the size
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise SourceDataError(f"{display_name}:{name}", f"cannot unpack: {exc}") from None
    if len(data) > MAX_MEMBER_BYTES:
        raise SourceDataError(display_name, f"entry {member!r} inflates beyond {MAX_MEMBER_BYTES:,} bytes")
    try:
        return pl.read_csv(io.BytesIO(data), infer_schema=False, encoding="utf8-lossy")
    except Exception as exc:  # polars raises ComputeError/NoDataError variants
        raise SourceDataError(f"{display_name}:{name}", f"cannot read: {exc}") from None


def _require(frame: pl.DataFrame, columns: list[str], where: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SourceDataError(where, f"missing column(s) {missing}")


WINDOW_START_S = 6 * 3600   # departures_06_20: 06:00 <= time < 20:00 on the service day
WINDOW_END_S = 20 * 3600
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MAX_CANDIDATE_DAYS = 366    # a feed "valid" for decades is searched over its first year


@dataclass(frozen=True)
class ServiceDay:
    """The date whose trips are counted, the services running on it and the rule that chose it."""
    date: date | None
    services: frozenset[str] | None  # None: every trip (a feed without calendar files)
    rule: str


def _gtfs_date(text: str | None, where: str, row: int, field: str) -> date:
    value = (text or "").strip()
    try:
        if len(value) != 8 or not value.isdigit():
            raise ValueError
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise SourceDataError(where, f"{field} {value!r} is not a GTFS date (YYYYMMDD)", row=row,
                              field=field) from None


class _Calendar:
    """calendar.txt and calendar_dates.txt resolved: which services run on a date."""

    def __init__(self, calendar: pl.DataFrame | None, dates: pl.DataFrame | None, display_name: str) -> None:
        self.weekly: list[tuple[str, date, date, tuple[bool, ...]]] = []
        self.added: dict[date, set[str]] = {}
        self.removed: dict[date, set[str]] = {}
        if calendar is not None:
            where = f"{display_name}:calendar.txt"
            _require(calendar, ["service_id", *_DAYS, "start_date", "end_date"], where)
            for row, rec in enumerate(calendar.iter_rows(named=True), start=2):
                flags = tuple((rec[d] or "").strip() == "1" for d in _DAYS)
                self.weekly.append((rec["service_id"], _gtfs_date(rec["start_date"], where, row, "start_date"),
                                    _gtfs_date(rec["end_date"], where, row, "end_date"), flags))
        if dates is not None:
            where = f"{display_name}:calendar_dates.txt"
            _require(dates, ["service_id", "date", "exception_type"], where)
            for row, rec in enumerate(dates.iter_rows(named=True), start=2):
                day = _gtfs_date(rec["date"], where, row, "date")
                kind = (rec["exception_type"] or "").strip()
                if kind not in ("1", "2"):
                    raise SourceDataError(where, f"exception_type {kind!r} is neither 1 (added) nor 2 (removed)",
                                          row=row, field="exception_type")
                (self.added if kind == "1" else self.removed).setdefault(day, set()).add(rec["service_id"])

    def validity(self) -> tuple[date, date] | None:
        """First and last date any service runs (calendar ranges and added dates)."""
        starts = [w[1] for w in self.weekly] + list(self.added)
        ends = [w[2] for w in self.weekly] + list(self.added)
        return (min(starts), max(ends)) if starts else None

    def services_on(self, day: date) -> set[str]:
        weekday = day.weekday()
        running = {sid for sid, start, end, flags in self.weekly if start <= day <= end and flags[weekday]}
        return (running | self.added.get(day, set())) - self.removed.get(day, set())


def choose_service_day(calendar: _Calendar, trips_per_service: dict[str, int], years: Sequence[int]) -> ServiceDay:
    """A typical Wednesday (else Monday-Friday) in the latest reporting year the feed covers, else in the
    feed's validity: the one whose running-trip count is the most common, the earliest on ties."""
    validity = calendar.validity()
    if validity is None:
        return ServiceDay(None, None, "the feed has neither calendar.txt nor calendar_dates.txt: every trip "
                          "counted, whatever its day (invalid GTFS)")
    first, last = validity
    span = f"{first.isoformat()}..{last.isoformat()}"
    windows: list[tuple[date, date, str]] = []
    for year in sorted(set(years), reverse=True):
        lo, hi = max(first, date(year, 1, 1)), min(last, date(year, 12, 31))
        if lo <= hi:
            windows.append((lo, hi, f"in reporting year {year} (feed valid {span})"))
    if years and not windows:
        note = (f"inside the feed's validity {span}, which covers none of the reporting years "
                f"{', '.join(map(str, sorted(set(years))))}")
    else:
        note = f"inside the feed's validity {span}"
    windows.append((first, last, note))
    for lo, hi, where in windows:
        hi = min(hi, lo + timedelta(days=_MAX_CANDIDATE_DAYS - 1))
        days = [lo + timedelta(days=i) for i in range((hi - lo).days + 1)]
        for label, weekdays in (("Wednesday", {2}), ("weekday (Monday-Friday; no Wednesday has service)",
                                                       {0, 1, 2, 3, 4})):
            counts = {d: sum(trips_per_service.get(s, 0) for s in calendar.services_on(d))
                      for d in days if d.weekday() in weekdays}
            counts = {d: n for d, n in counts.items() if n > 0}
            if not counts:
                continue
            tally = Counter(counts.values())
            typical = max(tally, key=lambda n: (tally[n], n))  # most common count; the larger on ties
            chosen = min(d for d, n in counts.items() if n == typical)
            rule = (f"service on {chosen.isoformat()} ({chosen.strftime('%A')}), {where}: the {label} whose "
                    f"{typical} running trips are the most common count among {len(counts)} candidate days "
                    f"with service (earliest on ties); calendar.txt and calendar_dates.txt resolved for that date")
            return ServiceDay(chosen, frozenset(calendar.services_on(chosen)), rule)
    return ServiceDay(None, frozenset(), f"no weekday {windows[0][2]} has any service: no departures counted")


def _seconds(column: str) -> pl.Expr:
    """GTFS 'H:MM:SS' / 'HH:MM:SS' (hours may pass 24) as seconds; null when empty or malformed."""
    parts = pl.col(column).str.strip_chars().str.extract_groups(r"^(\d{1,3}):([0-5]\d):([0-5]\d)$")
    return (parts.struct.field("1").cast(pl.Int64) * 3600 + parts.struct.field("2").cast(pl.Int64) * 60
            + parts.struct.field("3").cast(pl.Int64))


def _departure_seconds(stop_times: pl.DataFrame) -> pl.Expr:
    """Each stop_time's time in seconds; untimed intermediate stops take the trip's last timed stop before."""
    own = pl.coalesce(_seconds("departure_time") if "departure_time" in stop_times.columns else pl.lit(None),
                      _seconds("arrival_time") if "arrival_time" in stop_times.columns else pl.lit(None))
    return own.forward_fill().over("trip_id", order_by="_sequence")


def read_gtfs_stops(path: Path, display_name: str, years: Sequence[int] = ()) -> pl.DataFrame:
    """Columns: stop_id, name, lon, lat, location_type, parent_station, departures, departures_06_20,
    route_types, service_date, service_rule. `years`: the city's reporting years (the service date is chosen in the
    latest one the feed covers)."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise SourceDataError(display_name, "not a zip file (GTFS feeds are zip archives)") from None
    with archive:
        check_archive(archive, display_name)
        stops, routes, trips, stop_times = (_read(archive, n, display_name) for n in REQUIRED)
        members = {n.rsplit("/", 1)[-1] for n in archive.namelist()}
        calendar, calendar_dates = (_read(archive, n, display_name) if n in members else None
                                    for n in ("calendar.txt", "calendar_dates.txt"))
    _require(stops, ["stop_id", "stop_lat", "stop_lon"], f"{display_name}:stops.txt")
    _require(routes, ["route_id", "route_type"], f"{display_name}:routes.txt")
    _require(trips, ["route_id", "service_id", "trip_id"], f"{display_name}:trips.txt")
    _require(stop_times, ["trip_id", "stop_id"], f"{display_name}:stop_times.txt")
    trips_per_service = dict(trips.group_by("service_id").len().iter_rows())
    day = choose_service_day(_Calendar(calendar, calendar_dates, display_name), trips_per_service, years)
    if day.services is not None:
        trips = trips.filter(pl.col("service_id").is_in(sorted(day.services)))
    sequence = (pl.col("stop_sequence").str.strip_chars().cast(pl.Int64, strict=False)
                if "stop_sequence" in stop_times.columns else pl.int_range(pl.len()))
    timed = (stop_times.join(trips.select("trip_id", "route_id"), on="trip_id", how="inner")
             .with_columns(sequence.alias("_sequence"))
             .with_columns(_departure_seconds(stop_times).alias("_seconds")))
    served = (
        timed.join(routes.select("route_id", "route_type"), on="route_id", how="inner")
        .group_by("stop_id")
        .agg(pl.len().alias("departures"),
             pl.col("_seconds").is_between(WINDOW_START_S, WINDOW_END_S, closed="left").sum()
             .alias("departures_06_20"),
             pl.col("route_type").unique().sort().str.join(",").alias("route_types"))
    )
    name = pl.col("stop_name") if "stop_name" in stops.columns else pl.lit(None, pl.String)
    location_type = (pl.col("location_type").replace("", "0").fill_null("0")
                     if "location_type" in stops.columns else pl.lit("0"))
    # The station a platform-level stop belongs to (stops.txt parent_station; empty = none): the stop
    # total of EC:ICT:T:1C counts stations, not each platform (issue #15).
    parent = (pl.col("parent_station").str.strip_chars().replace("", None)
              if "parent_station" in stops.columns else pl.lit(None, pl.String))
    # File line of each stop (header is line 1), numbered before any join can reorder rows.
    table = stops.with_row_index("row", offset=2).select(
        pl.col("row"), pl.col("stop_id"), name.alias("name"),
        pl.col("stop_lon").str.strip_chars().cast(pl.Float64, strict=False).alias("lon"),
        pl.col("stop_lat").str.strip_chars().cast(pl.Float64, strict=False).alias("lat"),
        location_type.cast(pl.Int32, strict=False).alias("location_type"),
        parent.alias("parent_station"),
    )
    bad = table.filter(pl.col("lon").is_null() | pl.col("lat").is_null() | ~pl.col("lon").is_between(-180, 180)
                       | ~pl.col("lat").is_between(-90, 90)).sort("row")
    if bad.height:
        first = bad.row(0, named=True)
        raise SourceDataError(f"{display_name}:stops.txt",
                              f"stop {first['stop_id']!r} has no valid coordinates", row=first["row"],
                              field="stop_lat/stop_lon")
    return (table.drop("row").join(served, on="stop_id", how="left")
            .with_columns(pl.col("departures").fill_null(0).cast(pl.Int32),
                          pl.col("departures_06_20").fill_null(0).cast(pl.Int32),
                          pl.lit(day.date, pl.Date).alias("service_date"),
                          pl.lit(day.rule, pl.String).alias("service_rule"))
            .sort("stop_id"))


def feed_validity(path: Path, display_name: str) -> tuple[date | None, date | None, str]:
    """(first day, last day, basis) the feed describes: feed_info.txt's feed_start_date / feed_end_date
    where given, else the span of its calendar files; (None, None, ...) when it says nothing."""
    with zipfile.ZipFile(path) as archive:
        check_archive(archive, display_name)
        members = {n.rsplit("/", 1)[-1] for n in archive.namelist()}
        info = _read(archive, "feed_info.txt", display_name) if "feed_info.txt" in members else None
        calendar, calendar_dates = (_read(archive, n, display_name) if n in members else None
                                    for n in ("calendar.txt", "calendar_dates.txt"))
    if info is not None and info.height:
        where = f"{display_name}:feed_info.txt"
        record = info.row(0, named=True)
        start, end = ((_gtfs_date(record[f], where, 2, f) if (record.get(f) or "").strip() else None)
                      for f in ("feed_start_date", "feed_end_date"))
        if start is not None or end is not None:
            return start, end, "GTFS feed_info.txt feed_start_date/feed_end_date"
    span = _Calendar(calendar, calendar_dates, display_name).validity()
    if span is not None:
        return span[0], span[1], "GTFS calendar dates"
    return None, None, "the feed states no dates"
