"""A dry run of a city config: the real fetch, parse, load, derive and compute stages against a
scratch home that is thrown away, so `citykpi validate` and `citykpi coverage` report what a run
would do, with every problem found in one pass.

Local files are landed into the scratch home; API sources are read from their newest snapshot in
the user's home (or fetched into it first with `fetch=True`: landing is what a run does anyway,
and snapshots are immutable). Each source is parsed on its own, so every source's first problem is
reported, not only the first source's; the sources that parse are then loaded together (which finds
cross-source problems: two sources publishing one value, district keys matching no polygon) and the
indicators computed. Nothing in the user's warehouse or releases is read or written.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from canonical.errors import CitykpiError
from pipelines import steps
from pipelines.load_messages import load_messages
from pipelines.texttable import cut
from sources.config import LoadedConfig, SourceConfig
from sources.fetch import current_snapshot, fetch_source
from sources.landing import Snapshot
from warehouse.home import Home
from warehouse.load import parse_source

DRY_RUN_ID = "dry-run"


@dataclass
class SourceResult:
    source: SourceConfig
    problem: str | None = None        # the first problem found in this source
    not_read: str | None = None       # why the source was not read (an API source never fetched)
    feeds: list[str] = field(default_factory=list)  # what it loads as, one line per table


@dataclass
class DryRun:
    loaded: LoadedConfig
    sources: list[SourceResult]
    problems: list[str]               # every problem: per source, then the whole load
    load_report: dict[str, Any] = field(default_factory=dict)
    kpi_values: pl.DataFrame | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _snapshot(loaded: LoadedConfig, source: SourceConfig, scratch: Home, user_home: Home | None,
              fetch: bool) -> tuple[Snapshot | None, str | None]:
    """The snapshot a run would load, and why there is none."""
    if source.kind == "file":
        return fetch_source(loaded, source, scratch.raw, scratch.root), None
    if user_home is None:
        return None, "API source: no home to read its snapshot from"
    if fetch:
        user_home.ensure()
        return fetch_source(loaded, source, user_home.raw, user_home.root), None
    snapshot = current_snapshot(user_home.raw, user_home.root, loaded.city_id, source.id)
    if snapshot is None:
        return None, "never fetched: not read (`citykpi validate --fetch` fetches it first)"
    return snapshot, None


def dry_run(loaded: LoadedConfig, user_home: Home | None = None, *, fetch: bool = False) -> DryRun:
    results: list[SourceResult] = []
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="citykpi-dry-run-") as folder:
        scratch = Home(Path(folder)).ensure()
        readable: dict[str, Snapshot] = {}
        for source in loaded.config.sources:
            result = SourceResult(source)
            results.append(result)
            try:
                snapshot, result.not_read = _snapshot(loaded, source, scratch, user_home, fetch)
                if snapshot is not None:
                    parse_source(loaded, source, snapshot, scratch.cache / "readings")
                    readable[source.id] = snapshot
            except CitykpiError as exc:
                result.problem = str(exc)
                problems.append(f"source {source.id!r}: {exc}" if source.id not in str(exc) else str(exc))
        dry = DryRun(loaded, results, problems)
        if not readable:
            return dry
        good = [s for s in loaded.config.sources if s.id in readable]
        partial = loaded.model_copy(update={"config": loaded.config.model_copy(update={"sources": good})})
        try:
            dry.load_report = steps.load_city(scratch, partial, [readable[s.id] for s in good])
            steps.compute_city(scratch, partial, DRY_RUN_ID)
        except CitykpiError as exc:
            problems.append(str(exc))
            return dry
        with scratch.warehouse(read_only=True) as con:
            for result in results:
                if result.source.id in readable:
                    result.feeds = _feeds(con, loaded.city_id, result.source)
            dry.kpi_values = con.sql(
                "SELECT year, indicator_id, framework, data_point, status, status_reason FROM kpi_values "
                "WHERE city_id = ? ORDER BY indicator_id, data_point NULLS FIRST, year",
                params=[loaded.city_id]).pl()
    return dry


def _span(years: list[int]) -> str:
    return "no year" if not years else (str(years[0]) if len(years) == 1 else f"{min(years)}-{max(years)}")


def _feeds(con: Any, city_id: str, source: SourceConfig) -> list[str]:
    """One line per core table the source's rows landed in."""
    params = [city_id, source.id]
    lines = []
    rows = con.execute("""SELECT variable || coalesce('[' || data_point || ']', ''), list(DISTINCT year ORDER BY year),
                                 count(*), list(DISTINCT area_type ORDER BY area_type)
                          FROM observations WHERE city_id = ? AND source_id = ? GROUP BY ALL ORDER BY 1""",
                       params).fetchall()
    # Wide statistics tables map dozens of variables: one line per (years, level), naming a few.
    groups: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for ref, years, n, area_types in rows:
        groups.setdefault((_span(years), "/".join(area_types)), []).append((ref, n))
    for (span, level), refs in groups.items():
        values = sum(n for _, n in refs)
        if len(refs) <= 4:
            lines += [f"{ref}: {n:,} values, {span}, by {level}" for ref, n in refs]
        else:
            named = ", ".join(ref for ref, _ in refs[:4])
            lines.append(f"{len(refs)} variables ({named}, ...): {values:,} values, {span}, by {level}")
    for area_type, n in con.execute("""SELECT area_type, count(*) FROM core_areas WHERE city_id = ? AND source_id = ?
                                       GROUP BY ALL ORDER BY 1""", params).fetchall():
        lines.append(f"{n:,} {area_type} polygons")
    for point_type, n, placed in con.execute("""SELECT point_type, count(*), count(district_id) FROM core_points
                                                WHERE city_id = ? AND source_id = ? GROUP BY ALL ORDER BY 1""",
                                             params).fetchall():
        lines.append(f"{n:,} {point_type} points ({placed:,} inside a district)")
    for ref, stations, n, years in con.execute("""
            SELECT variable || coalesce('[' || data_point || ']', ''), count(DISTINCT station_id), sum(n),
                   list(DISTINCT year ORDER BY year)
            FROM core_readings_groups WHERE city_id = ? AND source_id = ? GROUP BY ALL ORDER BY 1""",
                                               params).fetchall():
        lines.append(f"{ref}: {int(n):,} readings from {stations} stations, {_span(years)}")
    n = con.execute("SELECT count(*) FROM core_transit_stops WHERE city_id = ? AND source_id = ?",
                    params).fetchall()[0][0]
    if n:
        lines.append(f"{n:,} transit stops")
    return lines or ["no rows"]


def format_dry_run(dry: DryRun) -> str:
    """What `citykpi validate` prints for one config after its keys passed."""
    lines = []
    for result in dry.sources:
        head = f"  {result.source.id} ({result.source.kind} -> {result.source.target})"
        if result.problem:
            lines.append(f"{head}: PROBLEM: {result.problem}")
        elif result.not_read:
            lines.append(f"{head}: {result.not_read}")
        else:
            lines.append(f"{head}:")
            lines += [f"      {line}" for line in result.feeds]
    warnings = load_messages(dry.load_report) if dry.load_report else []
    if warnings:
        lines.append("  warnings (rows not turned into values, and why):")
        lines += [f"      {line}" for line in warnings]
    if dry.kpi_values is not None and dry.kpi_values.height:
        counts = dict(dry.kpi_values.group_by("status").len().iter_rows())
        lines.append("  indicator rows (indicator x data point x year): "
                     + ", ".join(f"{status} {counts[status]:,}" for status in sorted(counts))
                     + " (`citykpi coverage CONFIG` lists them)")
    return "\n".join(lines)


def format_coverage(dry: DryRun, *, only: str | None = None) -> str:
    """Per indicator and data point: the years a run computes, or why it cannot (from the dry run)."""
    years = ", ".join(map(str, dry.loaded.config.city.reporting_years))
    lines = [f"{dry.loaded.city_id}: indicator coverage for {years} (a dry run of the config's sources)"]
    lines += [f"  problem: {p}" for p in dry.problems]
    lines += [f"  not read: {r.source.id}: {r.not_read}" for r in dry.sources if r.not_read]
    if dry.kpi_values is None or dry.kpi_values.height == 0:
        lines.append("no indicator rows: no source could be loaded")
        return "\n".join(lines)
    from kpis.catalogue import load_catalogue

    names = {i.id: i.name for i in load_catalogue()}
    counts: dict[str, int] = {}
    grouped = dry.kpi_values.group_by(["indicator_id", "data_point"], maintain_order=True).agg(
        pl.col("year").filter(pl.col("status") == "computed").alias("computed_years"),
        pl.col("status").alias("statuses"), pl.col("status_reason").alias("reasons"))
    for row in grouped.iter_rows(named=True):
        computed = row["computed_years"]
        status = "computed" if computed else ("not_applicable" if set(row["statuses"]) == {"not_applicable"}
                                             else "missing")
        counts[status] = counts.get(status, 0) + 1
        if only is not None and status != only:
            continue
        label = row["indicator_id"] + (f" [{row['data_point']}]" if row["data_point"] else "")
        missing_years = len(row["statuses"]) - len(computed)
        if computed:
            detail = f"{_span(computed)}" + (f" ({missing_years} year(s) missing)" if missing_years else "")
        else:
            detail = next((r for r in row["reasons"] if r), "")
        name = names.get(row["indicator_id"], "")
        lines.append(f"  {status:<15} {cut(label, 32):<32} {cut(name, 60)}: {detail}")
    lines.append("total (indicator x data point): " + ", ".join(
        f"{s} {counts.get(s, 0)}" for s in ("computed", "missing", "failed_check", "not_applicable")))
    return "\n".join(lines)
