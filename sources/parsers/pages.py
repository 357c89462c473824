"""Multi-page JSON snapshots (Socrata, CKAN DataStore, OpenDataSoft records, World Bank) as one table.

Each page is one response exactly as received. The records of every page are concatenated in page
order; each row's number is its position in the whole table and also names the page and the
record, e.g. `row 1017 (page 2 record 17)`, so an error or a provenance entry points at the bytes.
Nested objects are flattened to dotted columns (`coordinates.lat`); lists become JSON text.
World Bank `[meta, data]` pages become observations: `year` (from `date`), `date`, `value` (null is
an empty cell), `indicator`, `indicator_name`, `country`, `country_name`, `countryiso3code`, ...
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sources.errors import SourceDataError
from sources.parsers.numbers import NumberFormat
from sources.parsers.tabular import TextTable, _cell_text

RECORD_KEYS = ("records", "results", "data", "value")


class PageRecord(int):
    """A row number that also says which page and record it came from (it prints as both)."""

    page: int
    record: int

    def __new__(cls, row: int, page: int, record: int) -> PageRecord:
        obj = super().__new__(cls, row)
        obj.page = page
        obj.record = record
        return obj

    def __str__(self) -> str:
        return f"{int(self)} (page {self.page} record {self.record})"

    def __format__(self, spec: str) -> str:
        return str(self) if not spec else format(int(self), spec)

    __repr__ = __str__


def display_name(paths: Sequence[Path]) -> str:
    return paths[0].name if len(paths) == 1 else f"{paths[0].name}..{paths[-1].name}"


def read_json_pages(paths: Sequence[Path], name: str | None = None) -> TextTable:
    if not paths:
        raise SourceDataError(name or "pages", "snapshot has no pages")
    name = name or display_name(paths)
    records: list[dict[str, Any]] = []
    numbers: list[int] = []
    for page_number, path in enumerate(paths, start=1):
        for index, record in enumerate(page_records(path, f"{name} page {page_number} ({path.name})"), start=1):
            records.append(_flatten(record))
            numbers.append(PageRecord(len(records), page_number, index))
    columns: list[str] = []
    seen: set[str] = set()
    for record in records:
        for key in record:
            if key not in seen:
                seen.add(key)
                columns.append(key)
    rows = [[_cell_text(record.get(c)) for c in columns] for record in records]
    return TextTable(paths[0], name, columns, rows, numbers, NumberFormat())


def page_records(path: Path, where: str) -> list[dict[str, Any]]:
    """The records of one page, whatever envelope the platform wraps them in."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceDataError(where, f"not valid JSON: {exc}") from None
    if _is_world_bank(payload):
        return [_world_bank_row(item) for item in payload[1] or [] if isinstance(item, dict)]
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
