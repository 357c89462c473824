"""The pipeline's stages as plain functions (Dagster assets and tests call exactly these).

Each stage opens the warehouse itself and writes in one transaction, so stages can run in
separate processes one after another, and a failure leaves the previous state.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import duckdb

from sources.config import LoadedConfig
from sources.fetch import fetch_source, point_current_at
from sources.landing import Snapshot
from warehouse.db import scalar, transaction
from warehouse.derive import derive_city
from warehouse.home import Home
from warehouse.load import check_cross_source_conflicts, parse_source, write_parsed
from warehouse.quality import CheckResult, QualitySettings, SuiteContext
from warehouse.quality.run import Stage, run_stage
from warehouse.quality.store import QualityGateError, blocking_failures, quality_summary
from warehouse.releases import Release, publish_release, reconcile_releases
from warehouse.store import record_snapshots, snapshot_records


def fetch_one(home: Home, loaded: LoadedConfig, source_id: str, *, offline: bool = False) -> Snapshot:
    source = next(s for s in loaded.config.sources if s.id == source_id)
    return fetch_source(loaded, source, home.raw, home.root, offline=offline)


def fetch_city(home: Home, loaded: LoadedConfig, *, offline: bool = False) -> list[Snapshot]:
    home.ensure()
    return [fetch_one(home, loaded, s.id, offline=offline) for s in loaded.config.sources]


def load_city(home: Home, loaded: LoadedConfig, snapshots: list[Snapshot]) -> dict[str, Any]:
    """Parse every snapshot, then replace the city's core rows and derived observations atomically."""
    by_id = {s.source_id: s for s in snapshots}
    try:
        parsed = [parse_source(loaded, source, by_id[source.id]) for source in loaded.config.sources]
        check_cross_source_conflicts(parsed)
    except BaseException:
        _restore_current_pointers(home, loaded)
        raise
    try:
        with home.warehouse() as con:
            with transaction(con):
                record_snapshots(con, snapshots)
                write_parsed(con, loaded.city_id, parsed)
                derived = derive_city(con, loaded.city_id, loaded.config.city.reporting_years)
            observations = scalar(con, "SELECT count(*) FROM observations WHERE city_id = ?", [loaded.city_id])
    except BaseException:
        _restore_current_pointers(home, loaded)
        raise
    return {"sources": {p.source.id: p.report for p in parsed}, "derived": derived,
            "observations": observations}


def _restore_current_pointers(home: Home, loaded: LoadedConfig) -> None:
    """After a failed load, point each source's CURRENT back at the snapshot the warehouse still
    reflects, so `--offline` keeps recomputing from the last good data instead of the bad fetch."""
    if not home.warehouse_path.exists():
        return
    try:
        with home.warehouse(read_only=True) as con:
            rows = con.execute("""SELECT s.source_id, n.content_sha256 FROM core_source_state s
                                  JOIN source_snapshots n USING (snapshot_id) WHERE s.city_id = ?""",
                               [loaded.city_id]).fetchall()
    except duckdb.Error:
        return  # unreadable warehouse: the pointers stay where the fetch left them
    for source_id, content_sha256 in rows:
        point_current_at(home.raw, loaded.city_id, source_id, content_sha256)


def compute_city(home: Home, loaded: LoadedConfig, run_id: str) -> dict[str, int]:
    from kpis.store import compute_and_store

    with home.warehouse() as con:
        values = compute_and_store(con, loaded.city_id, loaded.config.city.reporting_years, run_id)
    return {status: int(n) for status, n in values.group_by("status").len().sort("status").iter_rows()}


def benchmark_city(home: Home, loaded: LoadedConfig, run_id: str) -> dict[str, int]:
    """Score the city's U4SSC KPIs against the targets in force and assess progress (after compute_city).

    Replaces the city's rows in kpi_scores, kpi_rollups and kpi_progress in one transaction; returns
    counts (scored, excluded, progress_<status> of the UN method) for the run summary."""
    from kpis.benchmarking.store import benchmark_and_store

    with home.warehouse() as con:
        return benchmark_and_store(con, loaded, run_id)


def quality_context(loaded: LoadedConfig, settings: QualitySettings | None = None) -> SuiteContext:
    city = loaded.config.city
    return SuiteContext(city.id, city.country, tuple(city.reporting_years), settings or QualitySettings.from_env())


def check_city(home: Home, loaded: LoadedConfig, run_id: str, stage: Stage,
               settings: QualitySettings | None = None) -> list[CheckResult]:
    """Run the quality suites of one stage for a city and store the results, in one transaction.

    stage "core" (after load_city): source tables, core tables and observations; marks the
    observations failing blocking checks so that compute_city makes their KPIs `failed_check`.
    stage "kpis" (after compute_city): kpi_values and the U4SSC plausibility rules.
    """
    with home.warehouse() as con, transaction(con):
        return run_stage(con, quality_context(loaded, settings), run_id, stage)


def enforce_strict(run_id: str, city_id: str, results: list[CheckResult]) -> None:
    """--strict: stop at the first stage with a blocking failure (before anything downstream is written)."""
    failures = [f"{city_id}/{r.check.table}.{r.check.name} ({r.failing or 0:,} failing)"
                for r in results if r.blocking_failure]
    if failures:
        raise QualityGateError(run_id, failures)


def city_record(loaded: LoadedConfig) -> dict[str, Any]:
    city = loaded.config.city
    return {"id": city.id, "name": city.name, "country": city.country, "reporting_years": city.reporting_years,
            "config": str(loaded.path), "config_sha256": hashlib.sha256(loaded.path.read_bytes()).hexdigest()}


def publish(home: Home, configs: list[LoadedConfig], run_id: str, extra: dict[str, Any] | None = None, *,
            strict: bool = False) -> Release:
    """Write a release with the run's quality summary; with `strict`, refuse when a blocking check failed."""
    with home.warehouse() as con:
        city_ids = [c.city_id for c in configs]
        failures = blocking_failures(con, run_id, city_ids)
        if strict and failures:
            raise QualityGateError(run_id, failures)
        reconcile_releases(con, home)
        cities = [city_record(c) for c in configs]
        snapshots = snapshot_records(con, city_ids)
        extra = {**(extra or {}), "quality": quality_summary(con, run_id, city_ids)}
        return publish_release(con, home, cities=cities, snapshots=snapshots, run_id=run_id, extra=extra)


@dataclass
class RunResult:
    run_id: str
    release: Release
    kpi_status: dict[str, dict[str, int]]
    loads: dict[str, dict[str, Any]]


def run_plain(home: Home, configs: list[LoadedConfig], run_id: str, *, offline: bool = False,
              strict: bool = False) -> RunResult:
    """Every stage in sequence without Dagster (the baseline for orchestration overhead).

    With `strict`, a blocking quality failure stops the run where Dagster's blocking asset checks
    stop it: after the stage that failed, with no release written.
    """
    loads, status = {}, {}
    for loaded in configs:
        snapshots = fetch_city(home, loaded, offline=offline)
        loads[loaded.city_id] = load_city(home, loaded, snapshots)
        core = check_city(home, loaded, run_id, "core")
        if strict:
            enforce_strict(run_id, loaded.city_id, core)
        status[loaded.city_id] = compute_city(home, loaded, run_id)
        kpis = check_city(home, loaded, run_id, "kpis")
        if strict:
            enforce_strict(run_id, loaded.city_id, kpis)
        benchmark_city(home, loaded, run_id)
    release = publish(home, configs, run_id, extra={"loads": loads}, strict=strict)
    return RunResult(run_id, release, status, loads)
