"""datapackage.json: a Frictionless (Tabular) Data Package describing the release (role `datapackage`).

Two resources: `kpi_values` (the CSV, with a typed table schema, its SHA-256 and size, and a
foreign key into the catalogue) and `indicators` (the catalogue inline: names, units, dimensions,
core/advanced, formulas, where each fact was read). Units vary per indicator, so the table carries
them in its `unit` column and the catalogue resource documents each indicator's unit. Licenses
and sources come from the city configs and the snapshots the warehouse was loaded from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from kpis.catalogue import Indicator
from warehouse.publish import FileEntry, PublishContext, file_entry, write_bytes
from warehouse.publish.kpi_csv import LIST_SEPARATOR
from warehouse.publish.kpi_csv import NAME as CSV_NAME

NAME = "datapackage.json"
ROLE = "datapackage"

# Well-known licence ids a city config may name, with the page a reader can follow.
LICENSE_URLS = {
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "ODbL-1.0": "https://opendatacommons.org/licenses/odbl/1-0/",
    "ODC-BY-1.0": "https://opendatacommons.org/licenses/by/1-0/",
    "PDDL-1.0": "https://opendatacommons.org/licenses/pddl/1-0/",
    "DL-DE-BY-2.0": "https://www.govdata.de/dl-de/by-2-0",
    "DL-DE-ZERO-2.0": "https://www.govdata.de/dl-de/zero-2-0",
    "OGL-UK-3.0": "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/",
}

STATUSES = ["computed", "missing", "failed_check", "not_applicable"]


def _field(name: str, type_: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "description": description, **extra}


KPI_FIELDS = [
    _field("city_id", "string", "City slug from the city config (see the cities in manifest.json).",
           constraints={"required": True}),
    _field("year", "integer", "Reporting year.", constraints={"required": True}),
    _field("framework", "string", "u4ssc (ITU-T Y.4903 U4SSC KPIs) or sdg11 (UN SDG 11 indicators).",
           constraints={"required": True, "enum": ["u4ssc", "sdg11"]}),
    _field("indicator_id", "string", "Indicator code, e.g. EC:ICT:ICT:1C or 11.6.2; see the indicators resource.",
           constraints={"required": True}),
    _field("data_point", "string", "Sub-series of an indicator with several data points (e.g. 3G, PM2.5); "
                                   "empty for single-valued indicators."),
    _field("value", "number", "Indicator value in the unit of the `unit` column; empty unless computed."),
    _field("unit", "string", "Unit of `value`, as the methodology states it.", constraints={"required": True}),
    _field("status", "string", "computed, missing (inputs or formula missing), failed_check (an input failed a "
                               "blocking check) or not_applicable.",
           constraints={"required": True, "enum": STATUSES}),
    _field("status_reason", "string", "Why a value is missing or failed; for computed values, a caveat about "
                                      "deviations from the official method."),
    _field("numerator", "number", "Numerator of a ratio indicator, in the inputs' canonical units."),
    _field("denominator", "number", "Denominator of a ratio indicator (after scaling, e.g. population/100000)."),
    _field("missing_inputs", "string", f"Canonical variables that were missing, '{LIST_SEPARATOR}'-separated."),
    _field("inputs", "array", "JSON list of the inputs used: variable, value, unit, source, landing-zone "
                              "snapshot and source record (file, row, field)."),
    _field("formula", "string", "The formula as evaluated."),
    _field("formula_version", "string", "Version of the formula; bumped whenever the formula changes."),
]

INDICATOR_FIELDS = [
    _field("id", "string", "Indicator code.", constraints={"required": True, "unique": True}),
    _field("framework", "string", "u4ssc or sdg11.", constraints={"required": True}),
    _field("name", "string", "Indicator name."),
    _field("unit", "string", "Unit the indicator is reported in."),
    _field("dimension", "string", "U4SSC dimension (Economy, Environment, Society and Culture)."),
    _field("subdimension", "string", "U4SSC sub-dimension."),
    _field("category", "string", "U4SSC category."),
    _field("type", "string", "U4SSC core or advanced.", constraints={"enum": ["core", "advanced"]}),
    _field("data_points", "array", "Data points the indicator is reported for (empty: one value)."),
    _field("sdg_targets", "array", "SDG targets and indicators the indicator relates to."),
    _field("definition", "string", "Definition."),
    _field("formula_text", "string", "The formula as the methodology states it."),
    _field("has_formula", "boolean", "Whether citykpi computes the indicator."),
    _field("source", "string", "Where the facts and formula were read."),
]


def indicator_rows(catalogue: Sequence[Indicator]) -> list[dict[str, Any]]:
    return [{"id": i.id, "framework": i.framework, "name": i.name, "unit": i.unit, "dimension": i.dimension,
             "subdimension": i.subdimension, "category": i.category, "type": i.type,
             "data_points": list(i.data_points), "sdg_targets": list(i.sdg_targets), "definition": i.definition,
             "formula_text": i.formula_text, "has_formula": i.compute is not None, "source": i.source}
            for i in catalogue]


def _licenses(context: PublishContext) -> list[dict[str, str]]:
    names = sorted({s.license for s in context.sources if s.license})
    if not names:
        # A package should name a licence: say plainly that none was declared (Open Definition id).
        return [{"name": "notspecified", "title": "License not specified in the city configs: the sources' own "
                                                  "terms apply"}]
    return [_license(n) for n in names]


def _license(text: str) -> dict[str, str]:
    """A licence entry from what a config says: an id (CC0-1.0), a URL, or free text."""
    if text.startswith(("http://", "https://")):
        return {"name": "other", "path": text, "title": text}
    # Frictionless wants an id-like name ([-a-zA-Z0-9._]); free text keeps its wording in the title.
    name = re.sub(r"[^-a-zA-Z0-9._]+", "-", text).strip("-") or "other"
    return {"name": name, "title": text, **({"path": LICENSE_URLS[text]} if text in LICENSE_URLS else {})}


def _sources(context: PublishContext) -> list[dict[str, str]]:
    sources = []
    for s in sorted(context.sources, key=lambda s: (s.city_id, s.source_id)):
        city = context.city(s.city_id).name
        title = f"{city}: {s.description or s.source_id} [{s.city_id}/{s.source_id}]"
        entry = {"title": title}
        if s.location.startswith(("http://", "https://")):
            entry["path"] = s.location
        if s.content_sha256:
            entry["version"] = f"sha256:{s.content_sha256}"  # the landing-zone snapshot the values came from
        sources.append(entry)
    return sources


def datapackage(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext,
                csv_entry: FileEntry) -> dict[str, Any]:
    cities = ", ".join(c.name for c in context.cities)
    years = sorted({int(y) for y in frame["year"].unique()})
    span = f"{years[0]}-{years[-1]}" if years else "no years"
    return {
        "profile": "tabular-data-package",
        "name": "citykpi-kpi-values",
        "title": f"U4SSC smart sustainable city KPIs and UN SDG 11 indicators: {cities} ({span})",
        "description": "Every indicator of the U4SSC KPIs (ITU-T Y.4903) and the UN SDG 11 indicators for each "
                       "city, reporting year and data point, computed by citykpi from the cities' open data. Each "
                       "row carries its status, formula and version, numerator and denominator and the exact "
                       "inputs with their source records. A missing value names what is missing.",
        "keywords": ["U4SSC", "ITU-T Y.4903", "SDG 11", "smart sustainable cities", "key performance indicators",
                     *sorted(c.id for c in context.cities)],
        "licenses": _licenses(context),
        "sources": _sources(context),
        "resources": [
            {"name": "kpi_values", "path": CSV_NAME, "profile": "tabular-data-resource", "format": "csv",
             "mediatype": "text/csv", "encoding": "utf-8", "bytes": csv_entry.bytes,
             "hash": f"sha256:{csv_entry.sha256}",
             "title": "Indicator values",
             "description": "One row per city, year, indicator and data point (the key; data_point may be empty). "
                            "kpi_values.parquet holds the same rows with missing_inputs as a list.",
             "schema": {"fields": KPI_FIELDS, "missingValues": [""],
                        "foreignKeys": [{"fields": "indicator_id",
                                         "reference": {"resource": "indicators", "fields": "id"}}]}},
            {"name": "indicators", "profile": "tabular-data-resource", "title": "Indicator catalogue",
             "description": "The U4SSC KPIs and SDG 11 indicators with names, units, definitions and formulas.",
             "data": indicator_rows(catalogue),
             "schema": {"fields": INDICATOR_FIELDS, "primaryKey": ["id"]}},
        ],
    }


def write_datapackage(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext,
                      folder: Path) -> list[FileEntry]:
    csv_entry = file_entry(folder, CSV_NAME, "", "")  # written before by kpi_csv (data_writers order)
    package = datapackage(frame, catalogue, context, csv_entry)
    write_bytes(folder, NAME, (json.dumps(package, indent=2, ensure_ascii=False) + "\n").encode())
    return [file_entry(folder, NAME, ROLE, "Frictionless Data Package: table schema (types, descriptions, units), "
                                           "licenses and sources of kpi_values.csv, and the indicator catalogue")]
