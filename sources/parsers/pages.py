"""Multi-page JSON snapshots (Socrata, CKAN DataStore, OpenDataSoft records, World Bank, NGSI-LD / NGSI v2
entities, OpenAQ v3) as one table.

Each page is one response exactly as received. The records of every page are concatenated in page
order; each row's number is its position in the whole table and also names the page and the
record, e.g. `row 1017 (page 2 record 17)`, so an error or a provenance entry points at the bytes.
Nested objects are flattened to dotted columns (`coordinates.lat`); lists become JSON text.
World Bank `[meta, data]` pages become observations: `year` (from `date`), `date`, `value` (null is
an empty cell), `indicator`, `indicator_name`, `country`, `country_name`, `countryiso3code`, ...
OpenAQ v3 `{meta, results}` pages: rows with a `period` (measurements, hourly/daily/yearly
aggregates) get a `year` column from `period.datetimeFrom.utc`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from canonical.errors import TOO_DEEP, SourceDataError
from sources.parsers.numbers import NumberFormat
from sources.parsers.tabular import TextTable, _cell_text

RECORD_KEYS = ("records", "results", "data", "value")


def display_name(paths: Sequence[Path]) -> str:
    """`page-0001.json..page-0003.json`; pages of a delta chain (several folders) carry their folder."""
    if len({path.parent for path in paths}) > 1:
        first, last = (f"{p.parent.name[:12]}/{p.name}" for p in (paths[0], paths[-1]))
        return f"{first}..{last}"
    return paths[0].name if len(paths) == 1 else f"{paths[0].name}..{paths[-1].name}"


def read_json_pages(paths: Sequence[Path], name: str | None = None, *, temporal: bool = False) -> TextTable:
    """Every page's records as one table; each row is labelled `<row> (page <p> record <r>)`."""
    if not paths:
        raise SourceDataError(name or "pages", "snapshot has no pages")
    name = name or display_name(paths)
    records: list[dict[str, Any]] = []
    labels: list[str] = []
    for page_number, path in enumerate(paths, start=1):
        where = f"{name} page {page_number} ({path.name})"
        page = temporal_rows(path, where) if temporal else page_records(path, where)
        for index, record in enumerate(page, start=1):
            records.append(_flatten(record))
            labels.append(f"{len(records)} (page {page_number} record {index})")
    columns: list[str] = []
    seen: set[str] = set()
    for record in records:
        for key in record:
            if key not in seen:
                seen.add(key)
                columns.append(key)
    rows = [[_cell_text(record.get(c)) for c in columns] for record in records]
    return TextTable(paths[0], name, columns, rows, list(range(1, len(rows) + 1)), NumberFormat(), labels)


def page_records(path: Path, where: str) -> list[dict[str, Any]]:
    """The records of one page, whatever envelope the platform wraps them in."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceDataError(where, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise SourceDataError(where, TOO_DEEP) from None
    if _is_world_bank(payload):
        return [_world_bank_row(item) for item in payload[1] or [] if isinstance(item, dict)]
    if _is_openaq(payload):
        return [_openaq_row(item) for item in payload["results"] if isinstance(item, dict)]
    if isinstance(payload, dict) and isinstance(payload.get("result"), dict):
        payload = payload["result"]  # CKAN action envelope
    if isinstance(payload, dict):
        for key in RECORD_KEYS:
            if isinstance(payload.get(key), list):
                payload = payload[key]
                break
    if not isinstance(payload, list) or not all(isinstance(r, dict) for r in payload):
        raise SourceDataError(where, "expected a JSON array of records (objects)")
    return payload


def temporal_rows(path: Path, where: str, time_property: str = "observedAt") -> list[dict[str, Any]]:
    """NGSI-LD temporal entities as one row per attribute instance.

    Columns: `entity`, `entity_type`, `attribute`, `observed_at`, `year`, `value`, `unit_code`.
    Both representations are read: normalised (`attr: [{"type", "value", "observedAt"}, ...]`)
    and `options=temporalValues` (`attr: {"type", "values": [[value, time], ...]}`). `observed_at`
    is the instance's `time_property`, else its observedAt or modifiedAt (a temporalValues pair
    carries the time the query asked for).
    """

    def time_of(instance: dict[str, Any]) -> Any:
        return instance.get(time_property) or instance.get("observedAt") or instance.get("modifiedAt")

    rows: list[dict[str, Any]] = []
    for entity in page_records(path, where):
        for attribute, history in entity.items():
            if attribute in ("id", "type", "@context"):
                continue
            instances: list[tuple[Any, Any, Any]] = []
            if isinstance(history, list):
                instances = [(i.get("value"), time_of(i), i.get("unitCode")) for i in history if isinstance(i, dict)]
            elif isinstance(history, dict) and isinstance(history.get("values"), list):
                instances = [(v[0], v[1], history.get("unitCode")) for v in history["values"]
                             if isinstance(v, list) and len(v) >= 2]
            elif isinstance(history, dict) and "value" in history:
                instances = [(history.get("value"), time_of(history), history.get("unitCode"))]
            for value, time, unit in instances:
                if isinstance(value, dict | list):
                    value = json.dumps(value, ensure_ascii=False)
                stamp = str(time or "")
                rows.append({"entity": entity.get("id"), "entity_type": entity.get("type"), "attribute": attribute,
                             "observed_at": stamp, "year": stamp[:4] if stamp[:4].isdigit() else "",
                             "value": value, "unit_code": unit})
    return rows


def _is_openaq(payload: Any) -> bool:
    return (isinstance(payload, dict) and isinstance(payload.get("meta"), dict)
            and payload["meta"].get("name") == "openaq-api" and isinstance(payload.get("results"), list))


def _openaq_row(item: dict[str, Any]) -> dict[str, Any]:
    """An OpenAQ v3 result; measurements and aggregates (`period`) get `year` from their start (UTC)."""
    period = item.get("period")
    start = ((period.get("datetimeFrom") or {}).get("utc") if isinstance(period, dict) else None) \
        or ((item.get("datetime") or {}).get("utc") if isinstance(item.get("datetime"), dict) else None)
    if isinstance(start, str) and start[:4].isdigit():
        return {"year": start[:4], **item}
    return item


def _is_world_bank(payload: Any) -> bool:
    return (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[0], dict)
            and "pages" in payload[0] and "page" in payload[0] and (payload[1] is None or isinstance(payload[1], list)))


def _world_bank_row(item: dict[str, Any]) -> dict[str, Any]:
    indicator = item.get("indicator") or {}
    country = item.get("country") or {}
    date = str(item.get("date") or "")
    return {
        "year": date[:4] if date[:4].isdigit() else "", "date": date, "value": item.get("value"),
        "indicator": indicator.get("id"), "indicator_name": indicator.get("value"),
        "country": country.get("id"), "country_name": country.get("value"),
        "countryiso3code": item.get("countryiso3code"), "unit": item.get("unit"),
        "obs_status": item.get("obs_status"), "decimal": item.get("decimal"),
    }


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, list):
            out[name] = json.dumps(value, ensure_ascii=False)
        else:
            out[name] = value
    return out
