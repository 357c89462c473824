"""Sensor readings from paged API snapshots: NGSI-LD temporal (Mintaka), NGSI v2 / NGSI-LD entities, OpenAQ v3.

`read_reading_pages` returns one row per reading: `station_id`, `observed_at` (UTC), `code`,
`value` (null when the source publishes none; the loader skips those), `source_record` (display
name, page, record and field, e.g. `page-0001.json..page-0002.json page 2 record 1
(urn:ngsi-ld:Animal:pig003) field 'heartRate' instance 3`).

Two shapes, chosen by the mapping (see `ReadingsMapping`):

- **NGSI entities, `variable_field: attribute`** (kinds ngsi_ld and ngsi_v2): every attribute named in
  `variables` is a reading (temporal API: each instance of its history). The value is the instance's
  `value_field` (`value`; a key-values attribute is its own value; a `temporalValues` pair is
  `[value, time]`). The time is the instance's `time_field` (`observedAt`), else that key in the
  attribute's NGSI v2 `metadata` (`TimeInstant`), else the entity's attribute of that name
  (`dateObserved`). The station is the entity's `station_field` (`id`, or a property or
  relationship such as `refPointOfInterest`). Attributes not in `variables` are not readings.
- **records in long form** (any other case, e.g. OpenAQ `sensors/<id>/measurements` with
  `time_field: period.datetimeFrom.utc`, `variable_field: parameter.name`, `value_field: value`):
  fields are dotted paths into each record. OpenAQ rows of a `<collection>/<id>/...` endpoint also
  get `<collection>_id` (e.g. `sensors_id: "3917"`), as those results carry no id of their own.

Times are ISO 8601, or read with the mapping's `time_format`; times without an offset are in its
`time_zone` (default UTC). A missing station, variable or time, an unreadable time and a value that
is not a number (unless `invalid_values: skip`: counted in `_Reader.unreadable`) are
SourceDataErrors naming the page, record and field. A record whose `flag_field` is not in
`valid_flags` is no reading (counted in `_Reader.flagged`).

The same reader takes a saved API response under `kind: file` (`as_pages`: the file is its one page):
NGSI entities when `variable_field: attribute`, records in long form otherwise.
"""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from canonical.errors import SourceDataError
from sources.config import ReadingsMapping, SourceConfig
from sources.landing import Snapshot
from sources.parsers.pages import _flatten, display_name, page_records

READING_SCHEMA: dict[str, Any] = {"station_id": pl.String, "observed_at": pl.Datetime("us", "UTC"),
                                  "code": pl.String, "value": pl.Float64, "source_record": pl.String}
ATTRIBUTE = "attribute"  # variable_field naming NGSI entity attributes as the variable codes
_ENDPOINT_ID = re.compile(r"^([a-z]+)/([0-9]+)/")


class _Reader:
    """Collects readings column by column; knows where it is, for messages."""

    def __init__(self, source: SourceConfig, mapping: ReadingsMapping, name: str) -> None:
        self.source = source
        self.mapping = mapping
        self.name = name
        self.columns: dict[str, list[Any]] = {column: [] for column in READING_SCHEMA}
        self.records = 0  # records read so far (the row number in messages)
        self.where = ""   # "page P record R" of the record being read
        self.zone = ZoneInfo(mapping.time_zone)
        self.flagged = 0      # records whose flag is not a valid one
        self.unreadable = 0   # values that are not numbers, skipped (invalid_values: skip)

    def fail(self, message: str, field: str) -> SourceDataError:
        return SourceDataError(self.name, message, row=self.records, field=field, source_id=self.source.id,
                               row_label=f"{self.records} ({self.where})")

    def add(self, station: Any, time: Any, code: Any, value: Any, record: str) -> None:
        mapping = self.mapping
        if mapping.station is not None:
            station = mapping.station
        if _empty(station):
            raise self.fail("no station id", mapping.station_field or "station")
        if _empty(code):
            raise self.fail("no variable code", mapping.variable_field or "")
        try:
            number = self.number(value, _text(code))
        except SourceDataError:
            if mapping.invalid_values != "skip":
                raise
            self.unreadable += 1
            return
        self.columns["station_id"].append(_text(station))
        self.columns["observed_at"].append(self.instant(time))
        self.columns["code"].append(_text(code))
        self.columns["value"].append(number)
        self.columns["source_record"].append(f"{self.name} {self.where} {record}")

    def instant(self, value: Any) -> datetime:
        field = self.mapping.time_field or ""
        fmt = self.mapping.time_format
        if _empty(value):
            raise self.fail("no time", field)
        text = str(value).strip()
        try:
            parsed = datetime.strptime(text, fmt) if fmt else datetime.fromisoformat(text)
        except ValueError:
            how = f"time_format {fmt!r}" if fmt else "an ISO 8601 date-time"
            raise self.fail(f"time {value!r} is not {how}", field) from None
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
        return self.local(parsed, field)

    def local(self, wall: datetime, field: str) -> datetime:
        """A wall-clock time in the mapping's zone as UTC: the first of two equal local times; an error
        for one that does not exist (clocks going forward)."""
        aware = wall.replace(tzinfo=self.zone, fold=0)
        utc = aware.astimezone(UTC)
        if utc.astimezone(self.zone).replace(tzinfo=None) != wall:
            raise self.fail(f"local time {wall:%Y-%m-%d %H:%M} does not exist in {self.mapping.time_zone} "
                            "(clocks go forward)", field)
        return utc

    def number(self, value: Any, code: str) -> float | None:
        field = (self.mapping.value_field or "") if self.mapping.variable_field != ATTRIBUTE else code
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self.fail(f"value {value!r} of {code!r} is not a number", field)
        try:
            number = float(value)
        except ValueError:
            raise self.fail(f"value {value!r} of {code!r} is not a number", field) from None
        if not math.isfinite(number):
            raise self.fail(f"value {value!r} of {code!r} is not a finite number", field)
        return number


def as_pages(snapshot: Snapshot) -> Snapshot:
    """A single-file snapshot (a saved API response under `kind: file`) as a snapshot of one page."""
    if snapshot.paged:
        return snapshot
    return dataclasses.replace(snapshot, pages=(snapshot.path,), paged=True)


def read_reading_pages(snapshot: Snapshot, source: SourceConfig, counts: dict[str, int] | None = None
                       ) -> pl.DataFrame:
    """Every reading in a paged snapshot (its delta chain included), in page and record order.
    `counts` receives `flagged_invalid` and `unreadable_values` (records that are no reading)."""
    mapping = source.readings
    if mapping is None:
        raise ValueError(f"source {source.id!r} has no readings mapping")
    if not snapshot.paged or not snapshot.pages:
        raise SourceDataError(snapshot.path.name, "readings from an API are read from record pages; this snapshot "
                              "holds a file", source_id=source.id)
    if mapping.layout != "long":
        raise SourceDataError(snapshot.path.name, f"layout {mapping.layout!r} is read from CSV, Excel or Parquet; "
                              "JSON records and API responses hold readings in long form", source_id=source.id)
    name = display_name(snapshot.pages)
    reader = _Reader(source, mapping, name)
    entities = mapping.variable_field == ATTRIBUTE and source.kind in ("ngsi_ld", "ngsi_v2", "file", "http")
    extra = _endpoint_ids(source)
    for page_number, path in enumerate(snapshot.pages, start=1):
        records = page_records(path, f"{name} page {page_number} ({path.name})")
        for index, record in enumerate(records, start=1):
            reader.records += 1
            reader.where = f"page {page_number} record {index}"
            if entities:
                _entity_readings(reader, record)
            else:
                _record_reading(reader, {**extra, **_flatten(record)})
    if counts is not None:
        counts.update(flagged_invalid=reader.flagged, unreadable_values=reader.unreadable)
    return pl.DataFrame(reader.columns, schema=READING_SCHEMA)


def _record_reading(reader: _Reader, record: dict[str, Any]) -> None:
    mapping = reader.mapping
    fields = [f for f in (mapping.station_field, mapping.time_field, mapping.variable_field, mapping.value_field,
                          mapping.flag_field) if f is not None]
    for field in fields:
        if field not in record:
            raise reader.fail(f"field {field!r} not found; the record has {sorted(record)[:20]}", field)
    if mapping.flag_field is not None and _text(record[mapping.flag_field]) not in mapping.valid_flags:
        reader.flagged += 1
        return
    station = record[mapping.station_field] if mapping.station_field else mapping.station
    assert mapping.time_field and mapping.variable_field and mapping.value_field
    reader.add(station, record[mapping.time_field], record[mapping.variable_field],
               record[mapping.value_field], f"field {mapping.value_field!r}")


def _entity_readings(reader: _Reader, entity: dict[str, Any]) -> None:
    mapping = reader.mapping
    entity_id = entity.get("id")
    station = _plain(entity.get(mapping.station_field)) if mapping.station_field else mapping.station
    value_field, time_field = mapping.value_field or "value", mapping.time_field or ""
    for attribute in mapping.variables:
        if attribute not in entity:
            continue
        instances = _instances(entity[attribute], mapping)
        for number, instance in enumerate(instances, start=1):
            if value_field not in instance:
                raise reader.fail(f"attribute {attribute!r} of {entity_id} has no {value_field!r}",
                                  attribute)
            time = _time_of(instance, entity, time_field)
            suffix = f" instance {number}" if len(instances) > 1 or isinstance(entity[attribute], list) else ""
            reader.add(station, time, attribute, instance[value_field],
                       f"({entity_id}) field {attribute!r}{suffix}")


def _instances(attribute: Any, mapping: ReadingsMapping) -> list[dict[str, Any]]:
    """An attribute as instances: a temporal history (normalised or temporalValues), one normalised
    attribute, or a key-values value."""
    value_field, time_field = mapping.value_field or "value", mapping.time_field or ""
    if isinstance(attribute, list):  # temporal, normalised: [{"type", "value", "observedAt"}, ...]
        return [item if isinstance(item, dict) else {value_field: item} for item in attribute]
    if isinstance(attribute, dict) and isinstance(attribute.get("values"), list):  # temporalValues
        return [{value_field: pair[0], time_field: pair[1]} for pair in attribute["values"]
                if isinstance(pair, list) and len(pair) >= 2]
    if isinstance(attribute, dict) and ("value" in attribute or value_field in attribute):
        return [attribute]
    return [{value_field: attribute}]  # key-values: the attribute is its value


def _time_of(instance: dict[str, Any], entity: dict[str, Any], field: str) -> Any:
    if not _empty(instance.get(field)):
        return instance[field]
    metadata = instance.get("metadata")
    if isinstance(metadata, dict) and field in metadata:  # NGSI v2 attribute metadata (TimeInstant)
        return _plain(metadata[field])
    return _plain(entity.get(field))


def _plain(value: Any) -> Any:
    """An NGSI attribute's plain value: `value` of a property, `object` of a relationship, else itself."""
    if isinstance(value, dict):
        if "value" in value:
            return value["value"]
        if "object" in value:
            return value["object"]
    return value


def _endpoint_ids(source: SourceConfig) -> dict[str, str]:
    """OpenAQ results of `sensors/3917/measurements` carry no sensor id: take it from the endpoint."""
    if source.openaq is None:
        return {}
    match = _ENDPOINT_ID.match(source.openaq.endpoint + "/")
    return {f"{match.group(1)}_id": match.group(2)} if match else {}


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
