"""Any URL to a single file (CSV, Excel, Parquet, JSON, GeoJSON, GTFS zip), landed as received."""

from __future__ import annotations

from pathlib import Path

from sources.config import LoadedConfig, SourceConfig
from sources.http import Expect
from sources.kinds._session import SourceFetch
from sources.landing import Snapshot

DESCRIPTION = ("One file from a URL (CSV, Excel, Parquet, JSON, GeoJSON, GTFS zip); conditional requests "
               "via ETag / Last-Modified")


def fetch(loaded: LoadedConfig, source: SourceConfig, raw_root: Path, home_root: Path) -> Snapshot:
    options = source.http
    expect = Expect.for_format(source.resolved_format, options.content_types if options else None)
    with SourceFetch(loaded, source, raw_root, home_root) as session:
        session.download(source.location, expect=expect)
        return session.land(paged=False)
