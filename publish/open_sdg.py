"""open_sdg/: the Open SDG data and metadata files for every SDG 11 indicator (role `open_sdg`).

Laid out like an Open SDG data repository, so a site can take the folder as is:
`open_sdg/data/indicator_11-6-2.csv` and `open_sdg/meta/11-6-2.md` (YAML front matter).

Data files: `Year` first and `Value` last (Open SDG's rule), between them `Series` (the data point,
for indicators with several), `Units`, the disaggregation `City`, `GeoCode` (the city id, for
maps) and `Observation status`. Only computed values are rows. An indicator without values gets
a header-only file and `reporting_status: notstarted`, so the site lists it as not yet reported.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from kpis.catalogue import Indicator
from publish import FileEntry, PublishContext, file_entry, write_bytes
from publish.textcells import escape_cell

ROLE = "open_sdg"
FOLDER = "open_sdg"
NORMAL = "Normal value"


def slug(indicator_id: str) -> str:
    return indicator_id.replace(".", "-")


def data_rows(frame: pl.DataFrame, indicator: Indicator, context: PublishContext) -> tuple[list[str], list[list]]:
    rows = frame.filter(pl.col("indicator_id") == indicator.id, pl.col("status") == "computed",
                        pl.col("value").is_not_null())
    if rows.is_empty():
        return ["Year", "Value"], []
    with_series = bool(indicator.data_points)
    header = ["Year", *(["Series"] if with_series else []), "Units", "City", "GeoCode", "Observation status",
              "Value"]
    out = []
    for r in rows.sort("year", "city_id", "data_point", nulls_last=False).iter_rows(named=True):
        out.append([r["year"], *([r["data_point"] or ""] if with_series else []), r["unit"],
                    context.city(r["city_id"]).name, r["city_id"], NORMAL, repr(float(r["value"]))])
    return header, out


def metadata(indicator: Indicator, context: PublishContext, has_data: bool) -> dict[str, Any]:
    goal, target = indicator.id.split(".")[0], ".".join(indicator.id.split(".")[:2])
    return {
        "indicator_number": indicator.id,
        "indicator_name": indicator.name,
        "target_id": target,
        "sdg_goal": goal,
        "reporting_status": "complete" if has_data else "notstarted",
        "published": True,
        "data_non_statistical": False,
        "graph_type": "line",
        "graph_title": indicator.name,
        "computation_units": indicator.unit,
        "computation_definitions": indicator.definition,
        "computation_calculations": indicator.formula_text,
        "national_geographical_coverage": ", ".join(c.name for c in context.cities),
        "source_active_1": True,
        "source_organisation_1": "citykpi, computed from the cities' open data (see the release's datapackage.json)",
        "source_periodicity_1": "annual",
        "goal_meta_link": f"https://unstats.un.org/sdgs/metadata/?Text=&Goal={goal}&Target={target}",
        "goal_meta_link_text": "United Nations Sustainable Development Goals metadata",
    }


def _csv_bytes(header: list[str], rows: list[list]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([escape_cell(v) for v in row] for row in rows)
    return buffer.getvalue().encode("utf-8")


def write_open_sdg(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext,
                   folder: Path) -> list[FileEntry]:
    entries = []
    for indicator in (i for i in catalogue if i.framework == "sdg11"):
        header, rows = data_rows(frame, indicator, context)
        data_path = f"{FOLDER}/data/indicator_{slug(indicator.id)}.csv"
        write_bytes(folder, data_path, _csv_bytes(header, rows))
        meta_path = f"{FOLDER}/meta/{slug(indicator.id)}.md"
        front = yaml.safe_dump(metadata(indicator, context, bool(rows)), sort_keys=True, allow_unicode=True,
                               width=1000)
        write_bytes(folder, meta_path, f"---\n{front}---\n{indicator.definition}\n".encode())
        entries += [file_entry(folder, data_path, ROLE, f"Open SDG data for SDG indicator {indicator.id}"),
                    file_entry(folder, meta_path, ROLE, f"Open SDG metadata for SDG indicator {indicator.id}")]
    return entries
