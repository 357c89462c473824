"""The release's HTML report (role `report_html`): one page per city plus an overview, Vega bundled once.

- one city in the release: `report.html` is that city's report;
- several cities: `report.html` is a small overview (aggregates, distributions, direction-aware
  rankings; side by side for a handful of cities) and `report/<city>.html` is each city's report.

Every page loads `report/vega.js` (Vega, Vega-Lite, vega-embed; written once per release from the
cache in `<home>/cache/`) with a relative script tag: the report opens offline and fetches
nothing. Charts are fed aggregates only (publish/report/charts.py), so no city count
makes a chart exceed Altair's row limit. The pieces live in publish/report/.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from kpis.catalogue import Indicator
from publish import FileEntry, PublishContext, file_entry, write_bytes
from publish.pieces import PieceCache, PieceJob, split_by
from publish.report.bundle import prefetch_bundle, vega_bundle
from publish.report.city import BODY, CityData, body_job, city_page
from publish.report.display import Directions
from publish.report.overview import overview_page
from publish.report.page import Page
from publish.report.sections import FileLink, release_files

NAME = "report.html"
ROLE = "report_html"
FOLDER = "report"
BUNDLE = f"{FOLDER}/vega.js"
CHUNK = 32  # cities whose page bodies are made (in worker processes) and written at a time
MAP_TOLERANCE_DEG = 0.0001  # about 10 m: district outlines stay recognisable, the page stays small

__all__ = ["BUNDLE", "NAME", "ROLE", "city_file", "prefetch_bundle", "vega_bundle", "write_report_html"]


def city_file(city_id: str) -> str:
    """The city's page inside the release (ids are usually safe file names; others are made safe)."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}", city_id):
        return f"{FOLDER}/{city_id}.html"
    import hashlib

    safe = re.sub(r"[^A-Za-z0-9]+", "-", city_id).strip("-")[:60] or "city"
    return f"{FOLDER}/{safe}-{hashlib.sha256(city_id.encode()).hexdigest()[:8]}.html"


def _directions(context: PublishContext, catalogue: Sequence[Indicator]) -> Directions:
    """The catalogue's directions; the scores' target directions only where the catalogue has no side."""
    scores = context.benchmark("kpi_scores")
    city_rows: Any = [] if scores is None else scores.filter(pl.col("direction").is_not_null()).select(
        "city_id", "indicator_id", "data_point", "direction").unique().iter_rows(named=True)
    return Directions.build(catalogue, city_rows)


def _geometries(areas: pl.DataFrame | None) -> dict[str, dict[str, tuple[str, dict[str, Any]]]]:
    """Per city: area id -> (name, simplified GeoJSON geometry with clockwise outer rings, as d3-geo wants)."""
    if areas is None or areas.is_empty():
        return {}
    import shapely
    from shapely.geometry import mapping

    out: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {}
    shapes = shapely.from_wkb(areas["geometry_wkb"].to_list())
    shapes = shapely.orient_polygons(shapely.simplify(shapes, MAP_TOLERANCE_DEG, preserve_topology=True),
                                     exterior_cw=True)
    shapes = shapely.set_precision(shapes, 1e-5)
    for row, shape in zip(areas.select("city_id", "area_id", "name").iter_rows(named=True), shapes, strict=True):
        if shape is None or shape.is_empty:
            continue
        out.setdefault(row["city_id"], {})[row["area_id"]] = (row["name"] or row["area_id"], dict(mapping(shape)))
    return out


def _split(frame: pl.DataFrame | None) -> dict[str, pl.DataFrame]:
    if frame is None or frame.is_empty():
        return {}
    return {str(key[0]): part for key, part in split_by(frame, "city_id").items()}


class _OwnFiles:
    """The files a city's page lists: the release's files without other cities' workbooks and pages.
    Indexed once per release: filtering every file for every city was quadratic in the cities (10 s of
    a 1,000-city release)."""

    def __init__(self, files: Sequence[FileLink]) -> None:
        self.files = files
        self.shared = [i for i, f in enumerate(files) if f.role != "u4ssc_workbook" and not _city_page(f)]
        workbooks = sorted((Path(f.path).name, i) for i, f in enumerate(files) if f.role == "u4ssc_workbook")
        self.workbook_names = [name for name, _ in workbooks]
        self.workbook_index = [i for _, i in workbooks]
        self.pages: dict[str, list[int]] = {}
        for i, f in enumerate(files):
            if _city_page(f):
                self.pages.setdefault(f.path, []).append(i)

    def of(self, city_id: str, page: str) -> list[FileLink]:
        """In release order: the shared files, the workbooks named `<city id>-...`, the city's own page."""
        prefix = f"{city_id}-"
        picked = list(self.shared) + self.pages.get(page, [])
        k = bisect.bisect_left(self.workbook_names, prefix)  # names with the prefix sort together from here
        while k < len(self.workbook_names) and self.workbook_names[k].startswith(prefix):
            picked.append(self.workbook_index[k])
            k += 1
        return [self.files[i] for i in sorted(picked)]


def _city_page(f: FileLink) -> bool:
    return f.role == ROLE and f.path.startswith(f"{FOLDER}/") and f.path.endswith(".html")


def _write_city_page(data: CityData, body: Page, catalogue: Sequence[Indicator], context: PublishContext,
                     directions: Directions, files: _OwnFiles, links: dict[str, str], folder: Path, *,
                     several: bool) -> list[FileEntry]:
    city = data.city
    own = files.of(city.id, links[city.id])
    if several:
        title, page = city_page(data, catalogue, context, directions, own, root="../", overview=f"../{NAME}",
                                body=body)
        write_bytes(folder, links[city.id], page.render(title, "vega.js").encode("utf-8"))
        return [file_entry(folder, links[city.id], ROLE, f"the report of {city.name} ({city.id})")]
    title, page = city_page(data, catalogue, context, directions, own, root="", overview=None, body=body)
    write_bytes(folder, NAME, page.render(title, BUNDLE).encode("utf-8"))
    return []


@dataclass(frozen=True)
class _BodyPlan:
    """The city pages' bodies of a release: each city's data and body job, in the order of the cities."""

    directions: Directions
    cities: list[CityData]
    jobs: list[PieceJob]


def _plan_bodies(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext,
                 pieces: PieceCache) -> _BodyPlan:
    directions = _directions(context, catalogue)
    rows, geometries = _split(frame), _geometries(context.areas)
    scores, rollups, progress = (_split(context.benchmark(t)) for t in ("kpi_scores", "kpi_rollups", "kpi_progress"))
    digest = pieces.catalogue_digest(catalogue)
    cities = [CityData(city, rows.get(city.id, frame.clear()), scores.get(city.id), rollups.get(city.id),
                       progress.get(city.id), geometries.get(city.id, {})) for city in context.cities]
    return _BodyPlan(directions, cities, [body_job(data, catalogue, directions, digest) for data in cities])


def start_report_html(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext) -> None:
    """Hand the city page bodies not in the piece cache to the worker processes before any file is written
    (a body names no release, so it can be made before the release id is known)."""
    if context.pieces is not None and len(context.cities) > 1:
        pieces = context.pieces
        pieces.start(BODY, pieces.planned(BODY, frame, lambda: _plan_bodies(frame, catalogue, context, pieces)).jobs)


def write_report_html(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext,
                      folder: Path) -> list[FileEntry]:
    entries: list[FileEntry] = []
    write_bytes(folder, BUNDLE, vega_bundle(context.cache_dir).encode("utf-8"))
    cities = [c for c in context.cities]
    several = len(cities) > 1
    links = {c.id: city_file(c.id) for c in cities}
    documents = [FileLink(NAME, ROLE, "the report: " + ("release overview" if several else "the city's report"))]
    documents += [FileLink(links[c.id], ROLE, f"{c.name}'s report") for c in cities if several]
    documents.append(FileLink(BUNDLE, ROLE, "Vega JavaScript for the report's charts (shared by every page)"))
    if (folder / "CHANGES.md").is_file():
        documents.insert(0, FileLink("CHANGES.md", "changes", "changes against the previous release"))
    files = release_files(context.files, documents)

    pieces = context.pieces or PieceCache(None)  # without a cache: every body made, still in parallel
    plan = pieces.planned(BODY, frame, lambda: _plan_bodies(frame, catalogue, context, pieces))
    own_files = _OwnFiles(files)
    try:
        for start in range(0, len(plan.cities), CHUNK):
            chunk = plan.cities[start:start + CHUNK]
            bodies = pieces.get_many(BODY, plan.jobs[start:start + CHUNK])
            for data, body in zip(chunk, bodies, strict=True):
                entries += _write_city_page(data, Page.from_bytes(body), catalogue, context, plan.directions,
                                            own_files, links, folder, several=several)
    finally:
        if pieces is not context.pieces:
            pieces.close()
    if several:
        title, page = overview_page(frame, catalogue, context, plan.directions, links, files,
                                    context.benchmark("kpi_rollups"))
        write_bytes(folder, NAME, page.render(title, BUNDLE).encode("utf-8"))
    elif not cities:
        raise ValueError("report: the release names no city")
    entries.insert(0, file_entry(folder, NAME, ROLE, "HTML report (" + (
        "release overview; one page per city under report/" if several else "the city's report")
        + "): City Snapshot, one section per indicator with its formula and inputs, charts; opens offline"))
    entries.append(file_entry(folder, BUNDLE, ROLE, "Vega, Vega-Lite and vega-embed JavaScript used by every "
                                                    "page of the report (bundled once per release)"))
    return entries
