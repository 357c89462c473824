"""Eurostat dissemination API: one dataset (urban audit `urb_*` tables with city codes, ...).

JSON-stat 2.0 from `statistics/1.0/data/<dataset>?format=JSON&lang=EN&<dim>=<code>...`, or SDMX
(`sdmx/2.1/data/<dataset>/<key>`) as SDMX-CSV or SDMX-ML. Filters repeat a dimension parameter for
several codes (JSON-stat) or join codes with '+' in the key position (SDMX; dimensions not named
are wildcards, in the order given). One file per snapshot; the readers in
`sources/parsers/eurostat.py` turn it into rows with a `year` column.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from sources.config import LoadedConfig, SourceConfig
from sources.http import Expect
from sources.kinds._session import SourceFetch
from sources.landing import Snapshot

DESCRIPTION = "Eurostat dataset (e.g. urban audit urb_cpop1) as JSON-stat 2.0, SDMX-CSV or SDMX-ML, filtered"


def request_url(source: SourceConfig) -> str:
    options = source.eurostat
    assert options is not None
    query: list[tuple[str, str]] = []
    if options.format == "jsonstat":
        query += [("format", "JSON"), ("lang", "EN")]
        for dim, codes in options.filters.items():
            query += [(dim, code) for code in ([codes] if isinstance(codes, str) else codes)]
        if options.since:
            query.append(("sinceTimePeriod", options.since))
        if options.until:
            query.append(("untilTimePeriod", options.until))
        return f"{source.location}?{urllib.parse.urlencode(query)}"
    key = ".".join("+".join([codes] if isinstance(codes, str) else codes) for codes in options.filters.values())
    query.append(("format", "SDMX-CSV" if options.format == "sdmx-csv" else "structurespecificdata"))
    if options.since:
        query.append(("startPeriod", options.since))
    if options.until:
        query.append(("endPeriod", options.until))
    return f"{source.location}/{urllib.parse.quote(key or 'all', safe='+.')}?{urllib.parse.urlencode(query)}"


def fetch(loaded: LoadedConfig, source: SourceConfig, raw_root: Path, home_root: Path) -> Snapshot:
    options = source.eurostat
    assert options is not None
    http = source.http
    expect = Expect.for_format(source.resolved_format, http.content_types if http else None)
    suffix = {"json": "json", "csv": "csv", "xml": "xml"}[source.resolved_format]
    with SourceFetch(loaded, source, raw_root, home_root) as session:
        fetched = session.download(request_url(source), expect=expect, filename=f"{options.dataset}.{suffix}")
        if expect.is_json and isinstance(fetched.data, dict) and "error" in fetched.data \
                and "value" not in fetched.data:
            raise session.error(fetched.url, f"Eurostat error: {fetched.data['error']}")
        return session.land(paged=False, dataset=options.dataset, data_format=options.format)
