"""ngsi_ld/key_performance_indicators.jsonld: Smart Data Models KeyPerformanceIndicator entities (role `ngsi_ld`).

One entity per city, indicator, data point and year with a computed value, in the key-values
JSON-LD form the Smart Data Models schema describes (each entity carries its @context). Missing
indicators have no entity: the model has no way to say "not reported", and kpi_values says why.

`upsert` sends them to a context broker (`citykpi publish --ngsi-ld URL`): the batch upsert
endpoint takes the normalized form, so each attribute becomes a Property there.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from kpis.catalogue import Indicator
from publish import City, FileEntry, PublishContext, file_entry
from publish.pieces import CitySlice, PieceCache, PieceJob

NAME = "ngsi_ld/key_performance_indicators.jsonld"
ROLE = "ngsi_ld"
CONTEXT = [
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
    "https://raw.githubusercontent.com/smart-data-models/dataModel.KeyPerformanceIndicator/master/context.jsonld",
]
UPSERT_PATH = "/ngsi-ld/v1/entityOperations/upsert"
KIND = "ngsi_ld_city"  # the piece kind of a city's entity lines
CHUNK = 64  # cities whose lines are looked up (or made) at a time
BATCH_SIZE = 100  # brokers cap batch operations (Orion-LD and Scorpio accept at least 100 entities)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


def entity_id(city_id: str, indicator_id: str, data_point: str | None, year: int) -> str:
    parts = [city_id, _slug(indicator_id), *([_slug(data_point)] if data_point else []), str(year)]
    return "urn:ngsi-ld:KeyPerformanceIndicator:" + ":".join(parts)


def entities(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext) -> list[dict[str, Any]]:
    return list(iter_entities(frame, catalogue, context))


def iter_entities(frame: pl.DataFrame, catalogue: Sequence[Indicator],
                  context: PublishContext) -> Iterator[dict[str, Any]]:
    """The entities one at a time (a release of many cities has millions: the file is written as they come)."""
    by_id = {i.id: i for i in catalogue}
    for r in frame.filter(pl.col("status") == "computed", pl.col("value").is_not_null()).iter_rows(named=True):
        yield _entity(r, by_id.get(r["indicator_id"]), context.city(r["city_id"]))


def _entity(r: dict[str, Any], indicator: Indicator | None, city: City) -> dict[str, Any]:
    name = indicator.name if indicator else r["indicator_id"]
    label = f"{name} ({r['data_point']})" if r["data_point"] else name
    framework = "U4SSC KPI" if r["framework"] == "u4ssc" else "SDG indicator"
    definition = indicator.definition if indicator else ""
    entity: dict[str, Any] = {
        "id": entity_id(r["city_id"], r["indicator_id"], r["data_point"], r["year"]),
        "type": "KeyPerformanceIndicator",
        "name": label,
        "alternateName": r["indicator_id"] + (f" [{r['data_point']}]" if r["data_point"] else ""),
        "description": f"{definition} Unit: {r['unit']}.".strip(),
        "category": ["quantitative"],
        "organization": city.name,
        "process": f"{framework} {r['indicator_id']}: {name}",
        "calculatedBy": "citykpi",
        "calculationMethod": "automatic",
        "calculationFrequency": "yearly",
        "calculationFormula": r["formula"] or (indicator.formula_text if indicator else ""),
        "calculationPeriod": {"from": f"{r['year']}-01-01", "to": f"{r['year']}-12-31"},
        "kpiValue": float(r["value"]),
        "address": {"addressLocality": city.name, **({"addressCountry": city.country} if city.country else {})},
        "dataProvider": "citykpi",
        "@context": CONTEXT,
    }
    return entity


def write_ngsi_ld(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext,
                  folder: Path) -> list[FileEntry]:
    # One entity per line of the JSON array, written city by city: a release of many cities has millions
    # of entities (one list and one indented text of them all held 1 GB at 300 cities; json's indenting is
    # pure Python). Each city's lines are a piece kept between releases (publish/pieces.py): a release
    # where one city changed makes only that city's lines again.
    path = folder / NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    pieces = context.pieces or PieceCache(None)
    digest = pieces.catalogue_digest(catalogue)
    slices = pieces.observed_by_city(frame)
    try:
        with path.open("wb") as out:
            first = True
            for start in range(0, len(slices), CHUNK):
                chunk = slices[start:start + CHUNK]
                jobs = [_city_job(part, catalogue, context.city(part.city_id), digest) for part in chunk]
                for lines in pieces.get_many(KIND, jobs, local=True):
                    out.write(b"[\n" if first else b",\n")
                    out.write(lines)
                    first = False
            out.write(b"[]\n" if first else b"\n]\n")
    finally:
        if pieces is not context.pieces:
            pieces.close()
    return [file_entry(folder, NAME, ROLE, "NGSI-LD KeyPerformanceIndicator entities (Smart Data Models, "
                                           "key-values JSON-LD), one per city, indicator, data point and year")]


def _city_job(part: CitySlice, catalogue: Sequence[Indicator], city: City, catalogue_digest: str) -> PieceJob:
    # Everything the lines are made of: the city's computed values, its name and country, the catalogue.
    return PieceJob(part.city_id, (catalogue_digest, part.digest, json.dumps([city.name, city.country])),
                    city_lines, (part.rows, catalogue, city))


def city_lines(rows: pl.DataFrame, catalogue: Sequence[Indicator], city: City) -> bytes:
    """A city's entities, one JSON text per line, joined by ',\\n' (no separator after the last)."""
    by_id = {i.id: i for i in catalogue}
    return ",\n".join(json.dumps(_entity(r, by_id.get(r["indicator_id"]), city), ensure_ascii=False)
                      for r in rows.iter_rows(named=True)).encode("utf-8")


def normalized(entity: dict[str, Any]) -> dict[str, Any]:
    """The normalized NGSI-LD form: every attribute a Property with its value."""
    keep = {"id", "type", "@context"}
    return {k: (v if k in keep else {"type": "Property", "value": v}) for k, v in entity.items()}


@dataclass
class UpsertResult:
    sent: int
    batches: int
    errors: list[str]


def upsert_url(broker: str) -> str:
    base = broker.rstrip("/")
    return base if base.endswith(UPSERT_PATH) else base + UPSERT_PATH


def upsert(items: Sequence[dict[str, Any]], broker: str, *, tenant: str | None = None,
           timeout: float = 30.0) -> UpsertResult:
    """POST the entities in batches to the broker's batch upsert; collect per-entity errors (207)."""
    url = upsert_url(broker)
    headers = {"Content-Type": "application/ld+json", "Accept": "application/json"}
    if tenant:
        headers["NGSILD-Tenant"] = tenant
    errors: list[str] = []
    batches = 0
    for start in range(0, len(items), BATCH_SIZE):
        body = json.dumps([normalized(e) for e in items[start:start + BATCH_SIZE]]).encode("utf-8")
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        batches += 1
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as exc:
            errors.append(f"batch {batches}: HTTP {exc.code}: {exc.read()[:500].decode('utf-8', 'replace')}")
            continue
        if status == 207:  # multi-status: some entities failed
            report = json.loads(payload or b"{}")
            errors += [f"{e.get('entityId')}: {e.get('error', e)}" for e in report.get("errors", [])]
    return UpsertResult(len(items), batches, errors)
