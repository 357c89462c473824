"""Since-filters for append-only feeds: fetch only the records newer than the newest one landed.

A kind with `since_field` (or NGSI-LD `temporal.since`) first plans a delta: the current snapshot
must be record pages fetched with the same query (a fingerprint of the kind's options block is
recorded in `meta.json` under `request.since.query`) and fewer than `since_max_deltas` deltas deep;
the newest value of the field is read from every landed page of its chain. The kind then asks the
platform only for records with a larger value and hands the pages to `land_delta`:

- no records: no new snapshot; the current one is returned (`new` False, CURRENT unchanged);
- a record whose key (`since_key`, else the kind's record id, else the whole record) is already
  landed: the feed is not append-only (a record updated in place, or an inclusive filter); the
  delta is refused (`None`) and the kind fetches the source in full instead of duplicating rows;
- otherwise the pages land as a delta snapshot on the current one (`sources/landing.py`).

Anything that prevents a plan (first fetch, changed query, chain too long, no value of the field in
the landed records) means a full fetch, never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sources.config import SourceConfig
from sources.kinds._session import SourceFetch
from sources.landing import Snapshot
from sources.parsers.pages import _flatten, page_records

log = logging.getLogger("citykpi.http")

Records = Callable[[Path, str], list[dict[str, Any]]]
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


@dataclass(frozen=True)
class Since:
    """A planned delta: records with `field` above `after` (as published), on top of `base`."""

    base: Snapshot
    field: str
    after: Any
    keys: frozenset[str]
    key_fields: tuple[str, ...] | None


def flat_records(path: Path, where: str) -> list[dict[str, Any]]:
    """A page's records with nested objects as dotted fields (what since_field / since_key name)."""
    return [_flatten(record) for record in page_records(path, where)]


def query_fingerprint(source: SourceConfig) -> str:
    """What the landed records were asked with; a delta only continues a chain with the same query."""
    block = getattr(source, source.kind)
    text = json.dumps({"location": source.location, "options": block.model_dump(mode="json")}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def since_request(source: SourceConfig, field: str | None) -> dict[str, Any]:
    """The `since` entry of a full fetch's request record (nothing when the source has no since-filter)."""
    if field is None:
        return {}
    return {"since": {"field": field, "query": query_fingerprint(source)}}


def record_key(record: dict[str, Any], key_fields: Sequence[str] | None) -> str:
    if key_fields:
        return json.dumps([record.get(name) for name in key_fields], sort_keys=True, default=str)
    return json.dumps(record, sort_keys=True, default=str)


def parse_instant(value: Any) -> datetime | None:
    """An ISO 8601 date or time (`Z` or an offset; naive means UTC), else None."""
    if not isinstance(value, str) or _NUMBER.match(value.strip()):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def order_key(value: Any) -> tuple[int, Any] | None:
    """How values of a since field compare: numbers, then instants, then text; None is no value."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    if isinstance(value, int | float):
        return (0, float(value))
    text = str(value).strip()
    if _NUMBER.match(text):
        return (0, float(text))
    instant = parse_instant(text)
    return (1, instant) if instant is not None else (2, text)


def is_number(value: Any) -> bool:
    key = order_key(value)
    return key is not None and key[0] == 0


def plan(session: SourceFetch, *, field: str | None, key_fields: Sequence[str] | None, max_deltas: int,
         records: Records = flat_records) -> Since | None:
    """The delta to ask for, or None when this fetch must be a full one."""
    base = session.previous
    source = session.source
    if field is None or base is None:
        return None
    why = None
    if not base.paged:
        why = "the current snapshot is not record pages"
    elif (base.request.get("since") or {}).get("query") != query_fingerprint(source):
        why = "the current snapshot was fetched with another query or without since_field"
    elif base.depth >= max_deltas:
        why = f"{base.depth} deltas since the last full fetch (since_max_deltas {max_deltas})"
    if why is not None:
        log.info("source %r: full fetch: %s", source.id, why)
        return None
    newest: tuple[tuple[int, Any], Any] | None = None
    keys: set[str] = set()
    for number, path in enumerate(base.pages, start=1):
        for record in records(path, f"{base.snapshot_id} page {number} ({path.name})"):
            keys.add(record_key(record, key_fields))
            order = order_key(record.get(field))
            if order is not None and (newest is None or order > newest[0]):
                newest = (order, record.get(field))
    if newest is None:
        log.info("source %r: full fetch: no landed record has a value of %r", source.id, field)
        return None
    return Since(base, field, newest[1], frozenset(keys), tuple(key_fields) if key_fields else None)


def land_delta(session: SourceFetch, since: Since, *, records: Records = flat_records,
               **request: Any) -> Snapshot | None:
    """Land the pages fetched for `since` as a delta; the base when there is nothing new; None to refuse."""
    source = session.source
    rows: list[dict[str, Any]] = []
    for number, path in enumerate(session.staged(), start=1):
        rows.extend(records(path, f"source {source.id!r} delta page {number} ({path.name})"))
    if not rows:
        log.info("source %r: no records with %s after %s; %s stays current", source.id, since.field,
                 since.after, since.base.snapshot_id)
        return since.base
    repeated = [row for row in rows if record_key(row, since.key_fields) in since.keys]
    if repeated:
        shown = {name: repeated[0].get(name) for name in since.key_fields} if since.key_fields else repeated[0]
        log.warning("source %r: the since-fetch after %s repeats %d landed record(s), e.g. %s: the feed is not "
                    "append-only (updated records, or an inclusive filter); fetching in full instead",
                    source.id, since.after, len(repeated), json.dumps(shown, default=str)[:200])
        return None
    entry = {"field": since.field, "query": query_fingerprint(source), "after": since.after,
             "base": since.base.content_sha256, "records": len(rows)}
    return session.land(paged=True, base=since.base, since=entry, **request)


def and_where(where: str | None, condition: str) -> str:
    """A filter with the since condition added to the configured one."""
    return f"({where}) AND {condition}" if where else condition


def quoted(value: Any, quote: str = "'") -> str:
    """A string literal with the quote doubled (SoQL, SQL); the value comes from landed data."""
    return quote + str(value).replace(quote, quote * 2) + quote
