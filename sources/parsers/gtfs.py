"""GTFS static feeds: stops with the route types serving them and their weekday departures.

Departures count stop_times of trips whose service runs on a Wednesday (calendar.txt), the usual
"typical weekday" for service-frequency filters (SDG 11.2.1). Feeds with only calendar_dates.txt
count every trip.

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
from pathlib import Path, PurePosixPath

import polars as pl

from sources.errors import SourceDataError

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


def read_gtfs_stops(path: Path, display_name: str) -> pl.DataFrame:
    """Columns: stop_id, name, lon, lat, location_type, route_types, departures."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise SourceDataError(display_name, "not a zip file (GTFS feeds are zip archives)") from None
    with archive:
        check_archive(archive, display_name)
        stops, routes, trips, stop_times = (_read(archive, n, display_name) for n in REQUIRED)
        has_calendar = any(n.rsplit("/", 1)[-1] == "calendar.txt" for n in archive.namelist())
        calendar = _read(archive, "calendar.txt", display_name) if has_calendar else None
    _require(stops, ["stop_id", "stop_lat", "stop_lon"], f"{display_name}:stops.txt")
    _require(routes, ["route_id", "route_type"], f"{display_name}:routes.txt")
    _require(trips, ["route_id", "service_id", "trip_id"], f"{display_name}:trips.txt")
    _require(stop_times, ["trip_id", "stop_id"], f"{display_name}:stop_times.txt")
    if calendar is not None and "wednesday" in calendar.columns:
        weekday = calendar.filter(pl.col("wednesday").str.strip_chars() == "1").select("service_id")
        trips = trips.join(weekday, on="service_id", how="semi")
    served = (
        stop_times.select("trip_id", "stop_id")
        .join(trips.select("trip_id", "route_id"), on="trip_id", how="inner")
        .join(routes.select("route_id", "route_type"), on="route_id", how="inner")
        .group_by("stop_id")
        .agg(pl.len().alias("departures"),
             pl.col("route_type").unique().sort().str.join(",").alias("route_types"))
    )
    name = pl.col("stop_name") if "stop_name" in stops.columns else pl.lit(None, pl.String)
    location_type = (pl.col("location_type").replace("", "0").fill_null("0")
                     if "location_type" in stops.columns else pl.lit("0"))
    # File line of each stop (header is line 1), numbered before any join can reorder rows.
    table = stops.with_row_index("row", offset=2).select(
        pl.col("row"), pl.col("stop_id"), name.alias("name"),
        pl.col("stop_lon").str.strip_chars().cast(pl.Float64, strict=False).alias("lon"),
        pl.col("stop_lat").str.strip_chars().cast(pl.Float64, strict=False).alias("lat"),
        location_type.cast(pl.Int32, strict=False).alias("location_type"),
    )
    bad = table.filter(pl.col("lon").is_null() | pl.col("lat").is_null() | ~pl.col("lon").is_between(-180, 180)
                       | ~pl.col("lat").is_between(-90, 90)).sort("row")
    if bad.height:
        first = bad.row(0, named=True)
        raise SourceDataError(f"{display_name}:stops.txt",
                              f"stop {first['stop_id']!r} has no valid coordinates", row=first["row"],
                              field="stop_lat/stop_lon")
    return (table.drop("row").join(served, on="stop_id", how="left")
            .with_columns(pl.col("departures").fill_null(0).cast(pl.Int32)).sort("stop_id"))
