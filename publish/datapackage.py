"""datapackage.json: a Frictionless (Tabular) Data Package describing the release (role `datapackage`).

Resources: `kpi_values` (the CSV, with a typed table schema, its SHA-256 and size, and a foreign
key into the catalogue), `indicators` (the catalogue inline: names, units, dimensions,
core/advanced, formulas, where each fact was read) and, when the release carries benchmarking,
`kpi_scores`, `kpi_rollups` and `kpi_progress` (their CSVs, with size, hash, schema, keys and
foreign keys into kpi_values and the catalogue). Column types come from the written tables'
dtypes (`frictionless_type`, the one mapping). Units vary per indicator, so the table carries
them in its `unit` column and the catalogue resource documents each indicator's unit. Licenses
and sources come from the city configs and the snapshots the warehouse was loaded from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import polars as pl

from kpis.benchmarking.progress import Method
from kpis.benchmarking.scoring import BANDS, LEVELS, POINTS_MAX
from kpis.catalogue import DIRECTION_WORDS, Indicator
from publish import FileEntry, PublishContext, file_entry, write_bytes
from publish.kpi_csv import LIST_SEPARATOR, csv_frame
from publish.kpi_csv import NAME as CSV_NAME

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
# kpi_progress.status (0003_scores.sql CHECK): the four progress classes and the three other statuses.
PROGRESS_STATUSES = ["on_track", "acceleration_needed", "limited_progress", "deterioration", "target_achieved",
                     "trend_only", "not_assessed"]


def _field(name: str, type_: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "description": description, **extra}


# ---- table schemas from the written tables' dtypes -------------------------------------------------

# Polars dtype -> Table Schema type: the one mapping every table resource uses. Integer and float
# dtypes are classified by `is_integer()` / `is_float()`; lists only occur in Parquet (CSV has none),
# so a list column must be turned into text before it is described.
_DTYPE_TYPES: dict[type[pl.DataType], str] = {
    pl.Boolean: "boolean", pl.String: "string", pl.Categorical: "string", pl.Enum: "string",
    pl.Decimal: "number", pl.Date: "date", pl.Datetime: "datetime", pl.Time: "time",
    pl.List: "array", pl.Array: "array", pl.Struct: "object", pl.Null: "any",
}


def frictionless_type(dtype: pl.DataType) -> str:
    """The Table Schema type of a column of this dtype (a TypeError for dtypes CSV cannot carry)."""
    if dtype.is_integer():
        return "integer"
    if dtype.is_float():
        return "number"
    base = dtype.base_type()
    if base in _DTYPE_TYPES:
        return _DTYPE_TYPES[base]
    raise TypeError(f"no Table Schema type for the dtype {dtype}")


@dataclass(frozen=True)
class Column:
    """What a table schema says about one column besides its name and dtype."""

    description: str
    constraints: Mapping[str, Any] = field(default_factory=dict)
    type: str | None = None  # only where the CSV text holds another type than the dtype (JSON arrays)


def _col(description: str, type_: str | None = None, **constraints: Any) -> Column:
    return Column(description, constraints, type_)


def schema_fields(frame: pl.DataFrame, columns: Mapping[str, Column]) -> list[dict[str, Any]]:
    """Table Schema fields of `frame` as written: every column in order, typed from its dtype, with
    the description and constraints of `columns` (a column missing there gets no description)."""
    fields = []
    for name, dtype in frame.schema.items():
        column = columns.get(name)
        type_ = column.type if column and column.type else frictionless_type(dtype)
        entry: dict[str, Any] = {"name": name, "type": type_}
        if column:
            entry["description"] = column.description
            if column.constraints:
                entry["constraints"] = dict(column.constraints)
        fields.append(entry)
    return fields


KPI_COLUMNS = {
    "city_id": _col("City slug from the city config (see the cities in manifest.json).", required=True),
    "year": _col("Reporting year.", required=True),
    "framework": _col("u4ssc (ITU-T Y.4903 U4SSC KPIs) or sdg11 (UN SDG 11 indicators).",
                      required=True, enum=["u4ssc", "sdg11"]),
    "indicator_id": _col("Indicator code, e.g. EC:ICT:ICT:1C or 11.6.2; see the indicators resource.",
                         required=True),
    "data_point": _col("Sub-series of an indicator with several data points (e.g. 3G, PM2.5); "
                       "empty for single-valued indicators."),
    "value": _col("Indicator value in the unit of the `unit` column; empty unless computed."),
    "unit": _col("Unit of `value`, as the methodology states it.", required=True),
    "status": _col("computed, missing (inputs or formula missing), failed_check (an input failed a "
                   "blocking check) or not_applicable.", required=True, enum=STATUSES),
    "status_reason": _col("Why a value is missing or failed; for computed values, a caveat about "
                          "deviations from the official method."),
    "numerator": _col("Numerator of a ratio indicator, in the inputs' canonical units."),
    "denominator": _col("Denominator of a ratio indicator (after scaling, e.g. population/100000)."),
    "missing_inputs": _col(f"Canonical variables that were missing, '{LIST_SEPARATOR}'-separated."),
    # JSON text in the CSV: Table Schema's `array` type reads it as a JSON array.
    "inputs": _col("JSON list of the inputs used: variable, value, unit, source, landing-zone "
                   "snapshot and source record (file, row, field).", type_="array"),
    "formula": _col("The formula as evaluated."),
    "formula_version": _col("Version of the formula; bumped whenever the formula changes."),
    "confidence": _col("How much of the official method the formula was read from (the catalogue's confidence): "
                       "formula_read, metadata_read, page_partly_read, corroborated, name_unit_read, "
                       "from_knowledge or inferred; see docs/releases.md.",
                       enum=["formula_read", "metadata_read", "page_partly_read", "corroborated", "name_unit_read",
                             "from_knowledge", "inferred"]),
    "method_variant": _col("How the inputs were made: their derivations (name@version, e.g. city_annual_mean@2), "
                           "and 'as published' for inputs taken from a source as they are; empty without inputs."),
    "caveats": _col("The formula's known deviation from the official method (the catalogue's caveat), if any."),
}

_CITY = "City slug from the city config (see the cities in manifest.json)."
_KPI = "U4SSC KPI code, e.g. EC:ICT:ICT:1C; see the indicators resource."
_DATA_POINT = ("Data point of an indicator with several (e.g. PM2.5); empty for single-valued indicators, so "
               "the table's key cannot be a Table Schema primaryKey (see the resource description).")
_TARGET = ("Target in force, in the indicator's unit: a citykpi default from a public reference or the city's "
           "own (target_source); never the official U4SSC benchmark (not public).")
_BAND = "U4SSC band of the share of target: <33, 33-66, 66-95 or 95+ (% of target)."
_BAND_LABEL = "The band as the U4SSC City Snapshot words it."
_DIRECTION = "Whether a higher or a lower value is better."

# The benchmarking tables' columns (warehouse/migrations/0003_scores.sql; `run_id` and `computed_at`
# are not released). Enums and bounds are the migration's CHECK constraints; required = NOT NULL.
SCORE_COLUMNS: dict[str, dict[str, Column]] = {
    "kpi_scores": {
        "city_id": _col(_CITY, required=True),
        "year": _col("Reporting year.", required=True),
        "indicator_id": _col(_KPI, required=True),
        "data_point": _col(_DATA_POINT),
        "dimension": _col("U4SSC dimension of the KPI.", required=True),
        "subdimension": _col("U4SSC sub-dimension of the KPI.", required=True),
        "category": _col("U4SSC category of the KPI.", required=True),
        "value": _col("The KPI value scored (kpi_values.value); empty when none was computed."),
        "unit": _col("Unit of value, target and worst."),
        "target": _col(_TARGET),
        "direction": _col(_DIRECTION, enum=["higher", "lower"]),
        "worst": _col("Lower-is-better only: the value that scores 0 % of target."),
        "deadline": _col("Year the target is due."),
        "share_pct": _col("Share of target in %, uncapped: value / target (higher is better) or "
                          "(worst - value) / (worst - target) (lower is better)."),
        "share_capped_pct": _col("Share of target clamped to [0, 100] %: the value banded.", minimum=0, maximum=100),
        "points": _col("U4SSC points of the band: 1 (<33 %) to 4 (95 %+).", minimum=1, maximum=POINTS_MAX),
        "band": _col(_BAND, enum=[b.code for b in BANDS]),
        "band_label": _col(_BAND_LABEL),
        "official_u4ssc_benchmark": _col("true only for a target the city has from its U4SSC verifier; false for "
                                         "citykpi's public references."),
        "target_source": _col("Table the target came from: 'default: kpis/targets/default.csv' or 'city: <path>'."),
        "target_citation": _col("The public reference the target is taken from."),
        "status": _col("scored, or excluded (no computed value, no target or no worst value).",
                       required=True, enum=["scored", "excluded"]),
        "status_reason": _col("Why the data point was excluded; for scored rows, a caveat about the scoring."),
    },
    "kpi_rollups": {
        "city_id": _col(_CITY, required=True),
        "year": _col("Reporting year.", required=True),
        "level": _col("Level of the U4SSC hierarchy rolled up to.", required=True, enum=list(LEVELS)),
        "group_path": _col("The group as a path of names, e.g. 'Economy / ICT / Water and Sanitation'.",
                           required=True),
        "dimension": _col("U4SSC dimension of the group.", required=True),
        "subdimension": _col("U4SSC sub-dimension of the group; empty at dimension level."),
        "category": _col("U4SSC category of the group; empty above category level."),
        "n_kpis": _col("U4SSC KPIs in the group.", required=True, minimum=0),
        "n_scored_kpis": _col("KPIs of the group with at least one scored data point.", required=True, minimum=0),
        "n_scored_data_points": _col("Scored data points of the group's KPIs.", required=True, minimum=0),
        "points_sum": _col("Sum of the scored KPIs' points (a KPI with several data points: their mean); empty "
                           "when none was scored."),
        "max_points": _col("4 x scored KPIs.", required=True, minimum=0),
        "score_pct": _col("points_sum / max_points in %; empty when no KPI of the group was scored."),
        "band": _col(_BAND, enum=[b.code for b in BANDS]),
        "band_label": _col(_BAND_LABEL),
    },
    "kpi_progress": {
        "city_id": _col(_CITY, required=True),
        "framework": _col("u4ssc or sdg11.", required=True, enum=["u4ssc", "sdg11"]),
        "indicator_id": _col("Indicator code; see the indicators resource.", required=True),
        "data_point": _col(_DATA_POINT),
        "method": _col("un (UN Statistics Division Progress Chart cut-offs) or eurostat (Eurostat / Open SDG "
                       "cut-offs).", required=True, enum=list(get_args(Method))),
        "base_year": _col("First year since 2015 with a computed value."),
        "base_value": _col("Value in the base year."),
        "latest_year": _col("Latest year with a computed value."),
        "latest_value": _col("Value in the latest year."),
        "n_years": _col("Years with a computed value since 2015.", required=True, minimum=0),
        "target": _col(_TARGET),
        "direction": _col(_DIRECTION, enum=["higher", "lower"]),
        "deadline": _col("Year the target is due."),
        "target_source": _col("Table the target came from: 'default: kpis/targets/default.csv' or 'city: <path>'."),
        "cagr_actual": _col("Compound annual growth rate from the base to the latest year."),
        "cagr_required": _col("Compound annual growth rate needed from the base year to reach the target by the "
                              "deadline."),
        "ratio": _col("cagr_actual / cagr_required as the method defines it."),
        "trend": _col("Direction of change from the base to the latest value.", enum=["up", "down", "flat"]),
        "status": _col("Progress class of the method, or target_achieved, trend_only (no usable target) or "
                       "not_assessed (fewer than two years).", required=True, enum=PROGRESS_STATUSES),
        "label": _col("The status as the method words it."),
        "reason": _col("Why the status was given (e.g. what made the series trend-only or not assessed)."),
    },
}

_BENCHMARK_NOTE = ("Targets are citykpi defaults from public references or the city's own table, never the "
                   "official U4SSC benchmarks (not public): scores computed with them are not U4SSC verification "
                   "results.")
_NULL_KEY_NOTE = ("data_point is empty for single-valued indicators and Table Schema primary keys cannot hold "
                  "empty values, so no primaryKey is declared.")

# table -> (title, description, primaryKey, foreign keys); the key columns are the warehouse's unique keys
# (0003_scores.sql) and the order of the rows (kpis.benchmarking.store.RELEASE_ORDER).
SCORE_RESOURCES: dict[str, tuple[str, str, list[str], list[dict[str, Any]]]] = {
    "kpi_scores": (
        "U4SSC scores against targets",
        "One row per city, year, U4SSC KPI and data point: scored against the target in force (share of target, "
        "points 1-4, band) or excluded with the reason (no computed value, no target, no worst value). Unique key: "
        f"city_id, year, indicator_id, data_point; {_NULL_KEY_NOTE} {_BENCHMARK_NOTE}",
        [],
        [{"fields": ["city_id", "year", "indicator_id", "data_point"],
          "reference": {"resource": "kpi_values", "fields": ["city_id", "year", "indicator_id", "data_point"]}},
         {"fields": "indicator_id", "reference": {"resource": "indicators", "fields": "id"}}]),
    "kpi_rollups": (
        "U4SSC score roll-ups",
        "Sum of points / (4 x scored KPIs) per city, year, level (dimension, subdimension, category) and group, with "
        "the band; score empty when no KPI of the group was scored. " + _BENCHMARK_NOTE,
        ["city_id", "year", "level", "group_path"],
        [{"fields": ["city_id", "year"], "reference": {"resource": "kpi_values", "fields": ["city_id", "year"]}}]),
    "kpi_progress": (
        "Progress towards the targets",
        "Progress towards the target per city, indicator, data point and method (un, eurostat), from the first "
        "year since 2015 to the latest year with a computed value: actual against required compound annual "
        "growth rate. Unique key: city_id, indicator_id, data_point, method; "
        f"{_NULL_KEY_NOTE} {_BENCHMARK_NOTE}",
        [],
        [{"fields": ["city_id", "framework", "indicator_id", "data_point"],
          "reference": {"resource": "kpi_values", "fields": ["city_id", "framework", "indicator_id", "data_point"]}},
         {"fields": "indicator_id", "reference": {"resource": "indicators", "fields": "id"}}]),
}


def score_resources(benchmarks: Mapping[str, pl.DataFrame], folder: Path) -> list[dict[str, Any]]:
    """The three benchmarking tables as tabular resources of their CSV files (written before the
    package by `publish.scores`, see data_writers(), so their bytes are hashed as they are)."""
    resources = []
    for table, (title, description, primary_key, foreign_keys) in SCORE_RESOURCES.items():
        rows = benchmarks[table]
        written = file_entry(folder, f"{table}.csv", "", "")
        schema: dict[str, Any] = {"fields": schema_fields(rows, SCORE_COLUMNS[table]), "missingValues": [""]}
        if primary_key:
            schema["primaryKey"] = primary_key
        schema["foreignKeys"] = foreign_keys
        resources.append({"name": table, "path": f"{table}.csv", "profile": "tabular-data-resource",
                          "format": "csv", "mediatype": "text/csv", "encoding": "utf-8", "bytes": written.bytes,
                          "hash": f"sha256:{written.sha256}", "title": title,
                          "description": f"{description} {table}.parquet holds the same rows, typed.",
                          "schema": schema})
    return resources


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
    _field("direction", "string", "Which way is better: higher_is_better, lower_is_better, target_band (near a "
           "reference point is best), neutral (a context figure).",
           constraints={"required": True, "enum": list(DIRECTION_WORDS)}),
    _field("direction_note", "string", "Why, where the direction is a judgement (or the band for target_band)."),
    _field("data_point_directions", "object", "Data point -> its own direction where it differs from `direction`."),
]


def indicator_rows(catalogue: Sequence[Indicator]) -> list[dict[str, Any]]:
    return [{"id": i.id, "framework": i.framework, "name": i.name, "unit": i.unit, "dimension": i.dimension,
             "subdimension": i.subdimension, "category": i.category, "type": i.type,
             "data_points": list(i.data_points), "sdg_targets": list(i.sdg_targets), "definition": i.definition,
             "formula_text": i.formula_text, "has_formula": i.compute is not None, "source": i.source,
             "direction": i.direction, "direction_note": i.direction_note,
             "data_point_directions": dict(i.data_point_directions)}
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
                csv_entry: FileEntry, folder: Path) -> dict[str, Any]:
    cities = ", ".join(c.name for c in context.cities)
    years = sorted({int(y) for y in frame["year"].unique()})
    span = f"{years[0]}-{years[-1]}" if years else "no years"
    benchmarks = context.benchmarks
    scores_note = "" if benchmarks is None else (
        " With the U4SSC scores of every KPI against its target, their roll-ups per category, sub-dimension and "
        "dimension, and progress towards the targets. " + _BENCHMARK_NOTE)
    return {
        "profile": "tabular-data-package",
        "name": "citykpi-kpi-values",
        "title": f"U4SSC smart sustainable city KPIs and UN SDG 11 indicators: {cities} ({span})",
        "description": "Every indicator of the U4SSC KPIs (ITU-T Y.4903) and the UN SDG 11 indicators for each "
                       "city, reporting year and data point, computed by citykpi from the cities' open data. Each "
                       "row carries its status, formula and version, numerator and denominator and the exact "
                       "inputs with their source records. A missing value names what is missing." + scores_note,
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
             "schema": {"fields": schema_fields(csv_frame(frame), KPI_COLUMNS), "missingValues": [""],
                        "foreignKeys": [{"fields": "indicator_id",
                                         "reference": {"resource": "indicators", "fields": "id"}}]}},
            {"name": "indicators", "profile": "tabular-data-resource", "title": "Indicator catalogue",
             "description": "The U4SSC KPIs and SDG 11 indicators with names, units, definitions and formulas.",
             "data": indicator_rows(catalogue),
             "schema": {"fields": INDICATOR_FIELDS, "primaryKey": ["id"]}},
            *([] if benchmarks is None else score_resources(benchmarks, folder)),
        ],
    }


def write_datapackage(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext,
                      folder: Path) -> list[FileEntry]:
    csv_entry = file_entry(folder, CSV_NAME, "", "")  # written before by kpi_csv (data_writers order)
    package = datapackage(frame, catalogue, context, csv_entry, folder)
    write_bytes(folder, NAME, (json.dumps(package, indent=2, ensure_ascii=False) + "\n").encode())
    return [file_entry(folder, NAME, ROLE, "Frictionless Data Package: table schema (types, descriptions, units), "
                                           "licenses and sources of kpi_values.csv and the benchmarking "
                                           "tables' CSVs, and the indicator catalogue")]
