"""Release formats: one module per format, each a pure function of the release frame.

Every writer has the signature ``write_<format>(frame, catalogue, context, folder) -> list[FileEntry]``:
`frame` is the canonical release table (`publish.releases.release_frame`), `catalogue` the
indicator catalogue, `context` what a release knows besides its rows (cities, sources, the
previous release), `folder` the staging folder. A writer writes only below `folder` and returns
one entry per file, which becomes a manifest `files` entry.

Two kinds of files (see docs/releases.md):
- data files (`DATA_WRITERS`) depend only on the frame, the catalogue, the city/source facts and
  the benchmarking tables (`context.benchmarks`),
  never on the release id or the clock, so unchanged inputs and code give byte-identical files;
  the release id's short hash is taken over them;
- release documents (`DOCUMENT_WRITERS`: the report, CHANGES.md, the GX Data Docs, the DuckDB snapshot) talk about
  this release and the previous one, so they are written after the id is known.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl

from kpis.catalogue import Indicator
from publish.pieces import PieceCache


@dataclass(frozen=True)
class FileEntry:
    """One file of a release, as listed in the manifest."""

    path: str  # relative to the release folder, '/'-separated
    role: str
    description: str
    sha256: str
    bytes: int

    def as_manifest(self) -> dict[str, Any]:
        return {"path": self.path, "role": self.role, "description": self.description, "sha256": self.sha256,
                "bytes": self.bytes}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(folder: Path, relative: str, role: str, description: str) -> FileEntry:
    path = folder / relative
    return FileEntry(relative, role, description, sha256_of(path), path.stat().st_size)


def write_bytes(folder: Path, relative: str, data: bytes) -> Path:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@dataclass(frozen=True)
class City:
    id: str
    name: str
    country: str
    reporting_years: tuple[int, ...]


@dataclass(frozen=True)
class SourceInfo:
    """What a release says about one input source: config facts plus the snapshot it was read from.

    `data_quality` and `data_origin` are the U4SSC template's vocabulary; they are filled when the
    city config declares them (issue #5) and left empty otherwise."""

    city_id: str
    source_id: str
    description: str = ""
    license: str | None = None
    kind: str = ""
    location: str = ""
    format: str = ""
    snapshot_id: str = ""
    content_sha256: str = ""
    data_quality: str | None = None
    data_origin: str | None = None


@dataclass(frozen=True)
class PreviousRelease:
    release_id: str
    frame: pl.DataFrame


@dataclass(frozen=True)
class PublishContext:
    cities: tuple[City, ...]
    sources: tuple[SourceInfo, ...] = ()
    previous: PreviousRelease | None = None
    quality: Any = None  # the manifest's `quality` summary, when the run produced one
    # The quality_results rows the summary counts (with each check's GX result), for the Data Docs.
    quality_results: pl.DataFrame | None = None
    cache_dir: Path | None = None  # where the report may keep its JavaScript bundle between runs
    # The benchmarking tables (kpi_scores, kpi_rollups, kpi_progress) of the release's cities, as
    # `kpis.benchmarking.store.release_frames` gives them; None: no benchmarking in this release.
    benchmarks: Mapping[str, pl.DataFrame] | None = None
    # The release's district polygons (core_areas: city_id, area_type, area_id, name, geometry_wkb) for the
    # report's maps; None: no polygons known (the report then draws no map).
    areas: pl.DataFrame | None = None
    # The data files already written (documents only: the report links every file of the release).
    files: tuple[FileEntry, ...] = ()
    # Known only after the data files are written (the id hashes them): documents only.
    release_id: str | None = None
    created_at: str | None = None
    # Per-city pieces (workbooks, report page bodies) kept between releases (publish/pieces.py); None: made each time.
    pieces: PieceCache | None = field(default=None, compare=False)

    # Indexed once per context (writers look a city or source up per row; a linear scan made publishing
    # grow with cities x rows). cached_property writes the instance's __dict__, which frozen allows.
    @cached_property
    def _cities_by_id(self) -> dict[str, City]:
        return {c.id: c for c in reversed(self.cities)}  # reversed: the first of duplicate ids wins, as before

    @cached_property
    def _sources_by_key(self) -> dict[tuple[str, str], SourceInfo]:
        return {(s.city_id, s.source_id): s for s in reversed(self.sources)}

    @cached_property
    def _sources_by_city(self) -> dict[str, tuple[SourceInfo, ...]]:
        grouped: dict[str, list[SourceInfo]] = {}
        for s in self.sources:
            grouped.setdefault(s.city_id, []).append(s)
        return {city: tuple(found) for city, found in grouped.items()}

    def city(self, city_id: str) -> City:
        return self._cities_by_id.get(city_id) or City(city_id, city_id, "", ())

    def city_sources(self, city_id: str) -> tuple[SourceInfo, ...]:
        """The city's sources, in the release's order."""
        return self._sources_by_city.get(city_id, ())

    def benchmark(self, table: str) -> pl.DataFrame | None:
        """One benchmarking table, or None when the release has none."""
        return None if self.benchmarks is None else self.benchmarks.get(table)

    def source(self, city_id: str, source_id: str) -> SourceInfo | None:
        return self._sources_by_key.get((city_id, source_id))


Writer = Callable[[pl.DataFrame, Sequence[Indicator], PublishContext, Path], list[FileEntry]]


def data_writers() -> list[Writer]:
    """Writers of the data files, in manifest order (imported here so `import publish` stays light)."""
    from publish import datapackage, kpi_csv, kpi_parquet, ngsi_ld, open_sdg, scores, sdmx, u4ssc_workbook

    # The package describes files written before it: kpi_values.csv and the benchmarking CSVs.
    return [kpi_parquet.write_parquet, kpi_csv.write_csv, scores.write_scores, datapackage.write_datapackage,
            sdmx.write_sdmx_csv, open_sdg.write_open_sdg, ngsi_ld.write_ngsi_ld, u4ssc_workbook.write_u4ssc_workbooks]


Starter = Callable[[pl.DataFrame, Sequence[Indicator], PublishContext], None]


def piece_starters() -> list[Starter]:
    """What hands the per-city pieces (workbooks, city page bodies) to the worker processes before the first
    file is written, in the order the writers need them: the workers make them while this process writes
    the files before them (publish/pieces.py: PieceCache.start)."""
    from publish import report_html, u4ssc_workbook

    return [u4ssc_workbook.start_u4ssc_workbooks, report_html.start_report_html]


def document_writers() -> list[Writer]:
    from publish import changes, data_docs, report_html, snapshot_db

    return [changes.write_changes, data_docs.write_data_docs, report_html.write_report_html,
            snapshot_db.write_snapshot_db]


def content_hash(entries: Sequence[FileEntry]) -> str:
    """SHA-256 over the data files' paths and hashes: equal data files, equal hash."""
    digest = hashlib.sha256()
    for entry in sorted(entries, key=lambda e: e.path):
        digest.update(f"{entry.sha256}  {entry.path}\n".encode())
    return digest.hexdigest()
