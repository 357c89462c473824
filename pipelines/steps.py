"""The pipeline's stages as plain functions (Dagster assets and tests call exactly these).

Each stage opens the warehouse itself and writes in one transaction, so stages can run in
separate processes one after another, and a failure leaves the previous state.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import duckdb

from canonical.errors import CitykpiError
from canonical.listing import first_and_more
from canonical.workers import worker_processes
from kpis.spatial.derive import derive_spatial, derive_spatial_from_rows
from kpis.state import Stage as KpiStage
from pipelines.ordered_work import Call, OrderedWork, results_in_order
from publish.releases import Release, publish_release, reconcile_releases
from quality import CheckResult, QualitySettings, SuiteContext
from quality.run import Stage, run_cities
from quality.store import QualityGateError, blocking_failures, quality_summary
from sources.config import LoadedConfig, SourceConfig
from sources.fetch import current_snapshot, fetch_source, point_current_at
from sources.landing import Snapshot
from warehouse.area_keys import check_area_keys
from warehouse.db import scalar, transaction
from warehouse.derive import AirRules, SpatialDerivation, derive_is_current, observation_digest, refresh_derived
from warehouse.home import Home
from warehouse.load import (
    LoadPlan,
    ParsedSource,
    mismatched_groups,
    parse_changed,
    parse_changed_or_none,
    plan_load,
    plan_reports,
    readings_read_as_is,
    stored_observation_keys,
    write_changes,
)
from warehouse.store import load_reports, record_derive_report, record_snapshots, snapshot_records

if TYPE_CHECKING:
    import polars as pl

    from kpis.benchmarking.store import Scored

_Made = TypeVar("_Made")


def fetch_one(home: Home, loaded: LoadedConfig, source_id: str, *, offline: bool = False) -> Snapshot:
    source = next(s for s in loaded.config.sources if s.id == source_id)
    return fetch_source(loaded, source, home.raw, home.root, offline=offline)


def fetch_city(home: Home, loaded: LoadedConfig, *, offline: bool = False) -> list[Snapshot]:
    home.ensure()
    return [fetch_one(home, loaded, s.id, offline=offline) for s in loaded.config.sources]


@dataclass
class FetchReport:
    """What a tolerant fetch of a city did: the snapshots landed and the sources that failed."""

    snapshots: list[Snapshot]
    failures: dict[str, str]    # source id -> error message (names the URL)

    @property
    def new_snapshots(self) -> list[str]:
        return [s.source_id for s in self.snapshots if s.new]


def fetch_sources(home: Home, loaded: LoadedConfig, *, offline: bool = False,
                  every: str | None = None) -> FetchReport:
    """Fetch the city's sources pulled on schedule `every` (daily / weekly / monthly; None: all).

    One failing source does not stop the others: each is tried, and the failures are returned
    for the caller to report (the previous good snapshot of a failed source stays CURRENT)."""
    home.ensure()
    snapshots, failures = [], {}
    for source in loaded.config.sources:
        if every is not None and source.fetch_every != every:
            continue
        try:
            snapshots.append(fetch_one(home, loaded, source.id, offline=offline))
        except CitykpiError as exc:
            failures[source.id] = str(exc)
    return FetchReport(snapshots, failures)


def current_snapshot_map(home: Home, loaded: LoadedConfig) -> dict[str, Snapshot | None]:
    """{source id: its CURRENT snapshot, or None when never fetched} for every source of the city."""
    return {s.id: current_snapshot(home.raw, home.root, loaded.city_id, s.id) for s in loaded.config.sources}


def current_snapshots(home: Home, loaded: LoadedConfig) -> list[Snapshot]:
    """The CURRENT snapshot of every source of the city; an error names the sources never fetched."""
    found = current_snapshot_map(home, loaded)
    missing = [source_id for source_id, snapshot in found.items() if snapshot is None]
    if missing:
        raise CitykpiError(f"{loaded.city_id}: no snapshot of source(s) {', '.join(missing)} yet; fetch them first "
                           "(the raw asset, or `citykpi run`)")
    return [snapshot for snapshot in found.values() if snapshot is not None]


PLAN_ATTEMPTS = 3


def air_rules(loaded: LoadedConfig) -> AirRules:
    """The city config's rules for annual means of readings."""
    return AirRules(min_coverage=loaded.config.air_quality.min_coverage_pct / 100)


def load_city(home: Home, loaded: LoadedConfig, snapshots: list[Snapshot]) -> dict[str, Any]:
    """Load what changed since the warehouse's state, atomically, and derive again what it touches.

    A source whose snapshot and configuration equal those in core_source_state is neither parsed nor
    rewritten; readings are appended when the new snapshot extends the stored one (warehouse/load.py).
    The report says what happened: `changed` (False: nothing was written, downstream can skip),
    `observations_changed` and `changed_years` (the years whose observations differ: what compute_city
    has to recompute), per source its report (`unchanged`, or the readings `mode` append/replace)."""
    try:
        for _ in range(PLAN_ATTEMPTS):
            with home.warehouse() as con:
                planned = _plan_city(con, loaded, snapshots)
                if isinstance(planned, dict):
                    return planned
                if not planned.needs_parsing:
                    return _write_city(con, planned, _parse_city(home, planned))  # e.g. a new day of Parquet
            # Parse without holding the warehouse, so that other cities' stages write meanwhile.
            parsed = _parse_city(home, planned)
            with home.warehouse() as con:
                if plan_load(con, loaded, planned.by_id) != planned.plan:
                    continue  # another run loaded this city in the meantime: plan again
                return _write_city(con, planned, parsed)
        raise CitykpiError(f"{loaded.city_id}: the city's sources changed in the warehouse {PLAN_ATTEMPTS} times "
                           "while this load parsed them (other runs loading the same city); run it again")
    except BaseException:
        _restore_current_pointers(home, loaded)
        raise


@dataclass
class _PlannedLoad:
    """A city whose sources changed: what to parse and write (from `_plan_city`)."""

    loaded: LoadedConfig
    snapshots: list[Snapshot]
    plan: LoadPlan
    stored: Any  # the unchanged observation sources' keys (warehouse.load.stored_observation_keys)

    @property
    def by_id(self) -> dict[str, Snapshot]:
        return {s.source_id: s for s in self.snapshots}

    @property
    def needs_parsing(self) -> bool:
        by_id = self.by_id
        return not all(_nothing_to_parse(source, by_id[source.id]) for source in self.plan.changed)


def _plan_city(con: duckdb.DuckDBPyConnection, loaded: LoadedConfig, snapshots: list[Snapshot],
               mismatched: set[str] | None = None) -> dict[str, Any] | _PlannedLoad:
    """The report of a city with nothing to load, or what its load has to parse and write."""
    by_id = {s.source_id: s for s in snapshots}
    years = loaded.config.city.reporting_years
    plan = plan_load(con, loaded, by_id, mismatched)
    if not plan.sources_changed and derive_is_current(con, loaded.city_id, years, air_rules(loaded)):
        return _load_report(con, loaded.city_id, plan_reports(plan), {"mode": "none"}, [], changed=False)
    stored = stored_observation_keys(con, loaded.city_id,
                                     [s.id for s in plan.unchanged if s.target == "observations"])
    return _PlannedLoad(loaded, snapshots, plan, stored)


def _parse_city(home: Home, planned: _PlannedLoad) -> list[ParsedSource]:
    return parse_changed(planned.loaded, planned.plan, planned.by_id, home.cache / "readings", planned.stored)


def _write_city(con: duckdb.DuckDBPyConnection, planned: _PlannedLoad, parsed: list[ParsedSource],
                spatial_rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Write a city's parsed sources and derive again what they touch, in one transaction; its load report.
    `spatial_rows`: the spatial derivation already made from these rows (`parse_in_worker`)."""
    loaded, plan = planned.loaded, planned.plan
    years = loaded.config.city.reporting_years
    before = observation_digest(con, loaded.city_id)
    spatial = derive_spatial if spatial_rows is None else _made(spatial_rows)
    with transaction(con):
        record_snapshots(con, planned.snapshots)
        change = write_changes(con, loaded, plan, parsed)
        check_area_keys(con, loaded.city_id)
        derived = refresh_derived(con, loaded.city_id, years, change, air_rules(loaded), spatial=spatial)
        record_derive_report(con, loaded.city_id, derived)
    after = observation_digest(con, loaded.city_id)
    changed_years = sorted(y for y in before.keys() | after.keys() if before.get(y) != after.get(y))
    return _load_report(con, loaded.city_id, change.reports, derived, changed_years,
                        changed=change.wrote or derived["mode"] != "none")


def _made(rows: list[dict[str, Any]]) -> SpatialDerivation:
    """The spatial derivation as the worker made it (for the config's reporting years, as `_write_city` asks)."""
    def spatial(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int]) -> list[dict[str, Any]]:
        return [dict(row) for row in rows]
    return spatial


def first_load(plan: LoadPlan) -> bool:
    """The warehouse holds nothing of the city yet (no source state): its parsed rows are all its rows."""
    return not plan.previous and not plan.removed and not plan.regroup and not plan.unchanged


def parse_in_worker(loaded: LoadedConfig, plan: LoadPlan, snapshots: dict[str, Snapshot], cache_dir: Path | None,
                    stored: Any) -> tuple[list[ParsedSource], list[dict[str, Any]] | None] | None:
    """What a load's worker process does for one city: parse its changed sources and, for a city loaded the
    first time, its spatial derivation from the parsed rows (the costliest derivation, otherwise made by
    the one writing process). None when parsing raises (the writer parses again, raising the error); no
    spatial rows when the derivation raises (the writer derives again, raising it there)."""
    parsed = parse_changed_or_none(loaded, plan, snapshots, cache_dir, stored)
    if parsed is None or not first_load(plan):
        return None if parsed is None else (parsed, None)
    rows: dict[str, list[Any]] = {}
    for item in parsed:
        if item.frame is not None:
            rows.setdefault(item.table, []).append(item.frame)
        for table, frame in item.extra.items():
            rows.setdefault(table, []).append(frame)
    try:
        return parsed, derive_spatial_from_rows(loaded.city_id, loaded.config.city.reporting_years, rows)
    except Exception:
        return parsed, None


def _nothing_to_parse(source: SourceConfig, snapshot: Snapshot) -> bool:
    """Long UTC Parquet readings are read by DuckDB while writing: parsing them first costs nothing
    (any other readings shape is converted first, without holding the warehouse)."""
    return source.target == "readings" and not snapshot.paged and readings_read_as_is(source)


def _load_report(con: duckdb.DuckDBPyConnection, city_id: str, sources: dict[str, Any], derived: dict[str, Any],
                 changed_years: list[int], *, changed: bool) -> dict[str, Any]:
    observations = scalar(con, "SELECT count(*) FROM observations WHERE city_id = ?", [city_id])
    return {"sources": sources, "derived": derived, "observations": observations, "changed": changed,
            "observations_changed": bool(changed_years), "changed_years": changed_years}


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


def compute_city(home: Home, loaded: LoadedConfig, run_id: str, years: Sequence[int] | None = None) -> dict[str, int]:
    """KPI values of every reporting year (replacing the city's rows), or of `years` only (replacing
    exactly those years' rows: a city-year partition)."""
    return compute_cities(home, [(loaded, years)], run_id, keep_unchanged=False)[loaded.city_id].counts


def benchmark_city(home: Home, loaded: LoadedConfig, run_id: str, years: Sequence[int] | None = None) -> dict[str, int]:
    """Score the city's U4SSC KPIs against the targets in force and assess progress (after compute_city).

    Replaces the city's rows in kpi_scores, kpi_rollups (only `years` when given) and kpi_progress in
    one transaction; returns counts (scored, excluded, progress_<status> of the UN method)."""
    return score_cities(home, [(loaded, years)], run_id, keep_unchanged=False)[loaded.city_id].counts


# ---- the batched stages: one warehouse session per stage for every city of a run ------------------------
#
# The Dagster assets (pipelines/city_assets.py, for `citykpi run` and the deployment alike) and run_plain
# call exactly these, with the cities of a run (a partition range). Per-city fixed costs (opening the
# warehouse under the lock, fingerprints, Dagster events) are paid once per stage, not once per city.

# The one order of the stages. The Dagster graph encodes it in its dependencies (a test compares them);
# run_plain follows it step by step.
STAGE_ORDER = ("fetch", "load", "check_core", "compute", "check_kpis", "scores", "publish")

CityWork = tuple[LoadedConfig, Sequence[int] | None]   # a city and the years to compute (None: all, kept if current)


@dataclass
class StageOutcome:
    """What a compute or scores stage did for one city: counts, or the run it kept the rows from."""

    counts: dict[str, int]
    kept_from: str | None = None
    years: list[int] | None = None      # None: every reporting year


def whole_city_years(loaded: LoadedConfig, years: Sequence[int], partition_years: Sequence[int]) -> list[int] | None:
    """None (compute the whole city, keeping unchanged results) when `years` hold every reporting year
    of the city that is a partition year, else the reported years among `years` (a city-year run)."""
    reporting = set(loaded.config.city.reporting_years)
    if reporting & set(partition_years) <= set(years):
        return None
    return sorted(reporting & set(years))


def fetch_cities(home: Home, configs: Sequence[LoadedConfig], *, offline: bool = False,
                 every: str | None = None) -> dict[str, FetchReport]:
    """Fetch every city's sources (tolerant: see fetch_sources); the caller reports the failures."""
    return {loaded.city_id: _naming_city(loaded.city_id, "fetching", fetch_sources, home, loaded,
                                         offline=offline, every=every)
            for loaded in configs}


def fetch_failures(reports: dict[str, FetchReport]) -> dict[str, str]:
    """{"<city>/<source>": message} of every source that failed to fetch."""
    return {f"{city_id}/{source}": message for city_id, report in reports.items()
            for source, message in report.failures.items()}


class FetchFailedError(CitykpiError):
    """Sources failed to fetch; the message names each city/source and why."""

    SHOWN = 10  # past this many, the first ones and a count (a run of 1,000 cities with no snapshots
    # yet would otherwise print 9,000 reasons; the CLI prints one error line)

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = failures
        if len(failures) <= self.SHOWN:
            super().__init__("failed sources: " + "; ".join(f"{k}: {v}" for k, v in failures.items()))
            return
        cities = {key.split("/", 1)[0] for key in failures}
        listed = first_and_more([f"{k}: {v}" for k, v in failures.items()], self.SHOWN)
        super().__init__(f"{len(failures):,} sources of {len(cities):,} cities failed to fetch; the first "
                         f"{self.SHOWN}: {listed}")


def load_cities(home: Home, configs: Sequence[LoadedConfig], on_progress: Callable[[int], None] | None = None
                ) -> dict[str, dict[str, Any]]:
    """Load each city's CURRENT snapshots (load_city: per source, only what changed); {city: report}.

    Each city's load stays its own transaction: a bad source fails the run naming its city and
    leaves the cities loaded before it committed (what an incremental rerun then skips). With many
    cities (`parallel_loads`), the cities are planned and written in batches of LOAD_BATCH per
    warehouse session, and their files are parsed in worker processes while the previous batch is
    written (`ParallelLoads`); the rows are the same as one city at a time. `on_progress` gets the count
    of cities loaded so far after each city or batch."""
    workers = load_workers()
    if workers == 0 or len(configs) < PARALLEL_MIN_CITIES:
        reports = {}
        for loaded in configs:
            reports[loaded.city_id] = _naming_city(loaded.city_id, "loading", _load_current, home, loaded)
            if on_progress is not None:
                on_progress(len(reports))
        return reports
    with ParallelLoads(home, workers) as loads:
        return loads.run(configs, on_progress)


LOAD_BATCH = 16            # cities planned and written per warehouse session by load_cities
PARALLEL_MIN_CITIES = 4    # fewer cities: one at a time (starting worker processes costs about a second)


def load_workers() -> int:
    """Worker processes that parse sources while the warehouse is written ($CITYKPI_WORKERS, else one less
    than the CPUs: the writing process needs one); 0: every city parsed in the run's own process."""
    return worker_processes(main_busy=True)


class ParallelLoads:
    """load_cities over many cities: plan a batch in one warehouse session, hand its parsing to worker
    processes, and write the previous batch meanwhile (one session per batch, one transaction per city,
    in the cities' order). A parse that fails in a worker is done again in this process, so its error is
    raised as one city at a time would raise it, naming the city, after the cities before it committed.

    When the city to write is not parsed yet, this process does not wait idle: `OrderedWork` has it
    take the next parse no worker has started and do it itself. Parsing and deriving a city costs more
    than writing it, so otherwise the writer idles while the workers lag."""

    def __init__(self, home: Home, workers: int) -> None:
        self.home = home
        self.work = OrderedWork(workers, imports=(__name__,))

    def __enter__(self) -> ParallelLoads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.work.__exit__(*exc)

    def run(self, configs: Sequence[LoadedConfig], on_progress: Callable[[int], None] | None = None
            ) -> dict[str, dict[str, Any]]:
        batches = [list(configs[i:i + LOAD_BATCH]) for i in range(0, len(configs), LOAD_BATCH)]
        reports: dict[str, dict[str, Any]] = {}
        # One scan of the readings for every city (per batch, each query scanned them all again). A batch's
        # writes touch only its own cities; a city another run loads meanwhile is planned again at its
        # write (`_write_city` compares its plan with a fresh one, which asks the warehouse itself).
        with self.home.warehouse() as con:
            mismatched = mismatched_groups(con, [loaded.city_id for loaded in configs])
        ahead = self._plan(batches[0], mismatched)
        for index in range(len(batches)):
            current = ahead
            if index + 1 < len(batches):
                # parsed by the workers while this batch is written
                ahead = self._plan(batches[index + 1], mismatched)
            reports.update(self._write(current))
            if on_progress is not None:
                on_progress(len(reports))
        return reports

    def _plan(self, batch: list[LoadedConfig], mismatched: dict[str, set[str]]) -> list[tuple[LoadedConfig, Any, Any]]:
        """(config, plan or report or the error planning raised, the parse's future or None) per city."""
        planned: list[tuple[LoadedConfig, Any, Any]] = []
        with self.home.warehouse() as con:
            for loaded in batch:
                try:
                    outcome: Any = _plan_city(con, loaded, current_snapshots(self.home, loaded),
                                              mismatched[loaded.city_id])
                except Exception as exc:  # raised at the city's turn, after the cities before it are written
                    outcome = exc
                future = None
                if isinstance(outcome, _PlannedLoad) and outcome.needs_parsing:
                    with contextlib.suppress(BrokenProcessPool):  # a lost worker: parsed in this process
                        future = self.work.submit(parse_in_worker, loaded, outcome.plan, outcome.by_id,
                                                  self.home.cache / "readings", outcome.stored)
                planned.append((loaded, outcome, future))
        return planned

    def _write(self, planned: list[tuple[LoadedConfig, Any, Any]]) -> dict[str, dict[str, Any]]:
        if all(isinstance(outcome, dict) for _, outcome, _ in planned):
            # Nothing to write (a run where these cities did not change): no warehouse session to open.
            return {loaded.city_id: outcome for loaded, outcome, _ in planned}
        reports: dict[str, dict[str, Any]] = {}
        stale: list[LoadedConfig] = []
        failed: tuple[LoadedConfig, BaseException] | None = None
        with self.home.warehouse() as con:
            for loaded, outcome, future in planned:
                try:
                    reports[loaded.city_id] = _naming_city(loaded.city_id, "loading", self._write_city, con, loaded,
                                                           outcome, future, stale)
                except BaseException as exc:
                    failed = (loaded, exc)
                    break
        if failed is not None:  # the session is closed: the pointers can be read and put back
            _restore_current_pointers(self.home, failed[0])
            raise failed[1]
        for loaded in stale:  # another run loaded these cities meanwhile: plan, parse and write them again
            reports[loaded.city_id] = _naming_city(loaded.city_id, "loading", _load_current, self.home, loaded)
        return reports

    def _write_city(self, con: duckdb.DuckDBPyConnection, loaded: LoadedConfig, outcome: Any, future: Any,
                    stale: list[LoadedConfig]) -> dict[str, Any]:
        if isinstance(outcome, BaseException):
            raise outcome
        if isinstance(outcome, dict):
            return outcome
        done = None
        if future is not None:
            with contextlib.suppress(Exception):  # a lost worker or a bad source: parsed in this process below
                done = self.work.result(future)
        # A bad source: parsed again here, where its error is raised as is.
        parsed, spatial_rows = done if done is not None else (_parse_city(self.home, outcome), None)
        if plan_load(con, loaded, outcome.by_id) != outcome.plan:
            stale.append(loaded)
            return {}
        return _write_city(con, outcome, parsed, spatial_rows)


def _load_current(home: Home, loaded: LoadedConfig) -> dict[str, Any]:
    return load_city(home, loaded, current_snapshots(home, loaded))


def check_cities(home: Home, configs: Sequence[LoadedConfig], run_id: str, stage: Stage,
                 settings: QualitySettings | None = None) -> dict[str, list[CheckResult]]:
    """The quality suites of one stage for every city, stored, in one transaction: one GX validation
    per table for all cities at once (quality.run.run_cities). A city whose checked tables, settings
    and code are unchanged since its last check of the stage keeps those results (quality/state.py)."""
    with home.warehouse() as con, transaction(con):
        return run_cities(con, [quality_context(loaded, settings) for loaded in configs], run_id, stage,
                          keep_unchanged=True)


def compute_cities(home: Home, work: Sequence[CityWork], run_id: str, *,
                   keep_unchanged: bool = True) -> dict[str, StageOutcome]:
    """kpi_values of each city, in one warehouse session. A whole-city entry (years None) whose inputs
    fingerprint equals the one its rows were computed from keeps them (`keep_unchanged`); a city-year
    entry replaces exactly those years' rows. From PARALLEL_COMPUTE_MIN cities to compute, worker
    processes compute them (`OrderedWork`) while this process reads the next cities' inputs and stores
    each city's rows in order; a computation that failed in a worker is done again here, raising as
    one city at a time would."""
    from kpis import state
    from kpis.store import compute_and_store, compute_values, read_inputs, store_values, store_values_many

    out: dict[str, StageOutcome] = {}
    with home.warehouse() as con:
        fingerprints = kpi_inputs_fingerprints(con, [loaded for loaded, years in work if years is None])
        current = state.current_runs(con, "kpi_values", fingerprints) if keep_unchanged else {}
        todo = [(loaded, years) for loaded, years in work if not _kept_run(fingerprints, current, loaded, years)]
        pending: _StoredInBatches[pl.DataFrame] = _StoredInBatches(
            con, "kpi_values", run_id, lambda made: store_values_many(con, made, run_id),
            lambda city, years, values: _naming_city(city, "computing", store_values, con, city, years or [], run_id,
                                                     values, only_these_years=years is not None))
        with _workers_for(len(todo)) as pool:
            made = results_in_order(pool, todo, lambda entry: (compute_values, (
                entry[0].city_id, _years(*entry), *read_inputs(con, entry[0].city_id))), COMPUTE_AHEAD)
            for loaded, years in work:
                city = loaded.city_id
                fingerprint = fingerprints.get(city) if years is None else None
                kept = _kept_run(fingerprints, current, loaded, years)
                if kept:
                    out[city] = StageOutcome(_status_counts(con, city), kept)
                    continue
                values = next(made)  # None: not made by a worker, or failed there; made here
                if values is None:
                    pending.flush()  # the cities before this one are stored whatever happens to it
                    values = _naming_city(city, "computing", compute_and_store, con, city, _years(loaded, years),
                                          run_id, only_these_years=years is not None)
                    state.record(con, city, "kpi_values", fingerprint, run_id)
                else:
                    pending.add((city, years, values, fingerprint))
                out[city] = StageOutcome({str(status): int(n) for status, n in
                                          values.group_by("status").len().sort("status").iter_rows()},
                                         years=None if years is None else list(years))
            pending.flush()
    return out


def _kept_run(fingerprints: dict[str, str], current: dict[str, str], loaded: LoadedConfig,
              years: Sequence[int] | None) -> str | None:
    """The run whose rows a whole-city entry keeps: its inputs are unchanged since (None: made again)."""
    fingerprint = fingerprints.get(loaded.city_id) if years is None else None
    return current.get(loaded.city_id) if fingerprint else None


def _years(loaded: LoadedConfig, years: Sequence[int] | None) -> Sequence[int]:
    return loaded.config.city.reporting_years if years is None else years


# From this many cities to compute, their values and scores are made in worker processes (starting them
# costs about two seconds), up to COMPUTE_AHEAD cities ahead of the one being stored.
PARALLEL_COMPUTE_MIN = 16
COMPUTE_AHEAD = 8
COMPUTE_MODULES = ("kpis.store", "kpis.benchmarking.store")  # of the calls the workers make
STORE_BATCH = 50  # cities whose values or scores are stored in one transaction (a few statements for all of them)


def _workers_for(cities: int) -> contextlib.AbstractContextManager[OrderedWork | None]:
    workers = worker_processes(main_busy=True) if cities >= PARALLEL_COMPUTE_MIN else 0
    return OrderedWork(workers, imports=COMPUTE_MODULES) if workers else contextlib.nullcontext()


def score_cities(home: Home, work: Sequence[CityWork], run_id: str, *,
                 keep_unchanged: bool = True) -> dict[str, StageOutcome]:
    """Scores, roll-ups and progress of each city (kpis.benchmarking), in one warehouse session; a
    whole-city entry whose inputs are unchanged since its scores were computed keeps them. From
    PARALLEL_COMPUTE_MIN cities, worker processes make them and this process stores them, as
    compute_cities does."""
    from kpis import state
    from kpis.benchmarking.store import (
        benchmark_and_store,
        read_kpi_values,
        score_values,
        scored_counts,
        store_scored,
        store_scored_many,
    )
    from kpis.benchmarking.targets import load_targets

    def scoring_call(entry: CityWork) -> Call | None:
        try:
            targets = load_targets(entry[0].targets_path)
        except Exception:  # loaded again at the city's turn, where its error names the file
            return None
        return score_values, (read_kpi_values(con, entry[0].city_id), targets)

    out: dict[str, StageOutcome] = {}
    with home.warehouse() as con:
        fingerprints = kpi_inputs_fingerprints(con, [loaded for loaded, years in work if years is None])
        current = state.current_runs(con, "scores", fingerprints) if keep_unchanged else {}
        todo = [(loaded, years) for loaded, years in work if not _kept_run(fingerprints, current, loaded, years)]
        pending: _StoredInBatches[Scored] = _StoredInBatches(
            con, "scores", run_id,
            lambda made: store_scored_many(con, [(city, scored, years) for city, years, scored in made], run_id),
            lambda city, years, scored: _naming_city(city, "scoring", store_scored, con, city, scored, run_id, years))
        with _workers_for(len(todo)) as pool:
            made = results_in_order(pool, todo, scoring_call, COMPUTE_AHEAD)
            for loaded, years in work:
                city = loaded.city_id
                fingerprint = fingerprints.get(city) if years is None else None
                kept = _kept_run(fingerprints, current, loaded, years)
                if kept:
                    out[city] = StageOutcome({}, kept)
                    continue
                scored = next(made)  # None: not made by a worker, or failed there; made here
                if scored is None:
                    pending.flush()  # the cities before this one are stored whatever happens to it
                    targets = load_targets(loaded.targets_path)  # a bad table is a TargetsError naming its file
                    counts = _naming_city(city, "scoring", benchmark_and_store, con, city, targets, run_id, years)
                    state.record(con, city, "scores", fingerprint, run_id)
                else:
                    pending.add((city, years, scored, fingerprint))
                    counts = scored_counts(scored, years)
                out[city] = StageOutcome(counts, years=None if years is None else list(years))
            pending.flush()
    return out


class _StoredInBatches(Generic[_Made]):
    """What the workers made for each city (with its years, None for all, and its inputs fingerprint), stored
    STORE_BATCH cities at a time in one transaction with their `kpi_state` (`many`: a few statements for all
    of them); if that transaction fails, stored again city by city (`one`), so that the failing city is
    named and the ones before it are kept, as storing one at a time did."""

    def __init__(self, con: duckdb.DuckDBPyConnection, stage: KpiStage, run_id: str,
                 many: Callable[[list[tuple[str, Sequence[int] | None, _Made]]], None],
                 one: Callable[[str, Sequence[int] | None, _Made], None]) -> None:
        self._con, self._stage, self._run_id, self._many, self._one = con, stage, run_id, many, one
        self._pending: list[tuple[str, Sequence[int] | None, _Made, str | None]] = []

    def add(self, made: tuple[str, Sequence[int] | None, _Made, str | None]) -> None:
        self._pending.append(made)
        if len(self._pending) >= STORE_BATCH:
            self.flush()

    def flush(self) -> None:
        from kpis import state

        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            with transaction(self._con):
                self._many([(city, years, made) for city, years, made, _ in pending])
                for city, _, _, fingerprint in pending:
                    state.record(self._con, city, self._stage, fingerprint, self._run_id)
        except Exception:
            for city, years, made, fingerprint in pending:
                self._one(city, years, made)
                state.record(self._con, city, self._stage, fingerprint, self._run_id)


def kpi_inputs_fingerprint(con: duckdb.DuckDBPyConnection, loaded: LoadedConfig) -> str:
    """kpis.state's fingerprint of what the city's kpi_values and scores are computed from: its
    observations, its reporting years and its own target table (beside the config)."""
    return kpi_inputs_fingerprints(con, [loaded])[loaded.city_id]


def kpi_inputs_fingerprints(con: duckdb.DuckDBPyConnection, configs: Sequence[LoadedConfig]) -> dict[str, str]:
    """kpi_inputs_fingerprint of each city, one statement per table for all of them."""
    from kpis import state

    return state.inputs_fingerprints(con, [(loaded.city_id, loaded.config.city.reporting_years, loaded.targets_path)
                                           for loaded in configs])


def _naming_city(city_id: str, doing: str, function: Any, *args: Any, **kwargs: Any) -> Any:
    """Call `function`; an unexpected error (not a CitykpiError, whose message names its city and
    source) gets a note naming the city, since one batched stage handles many."""
    try:
        return function(*args, **kwargs)
    except CitykpiError:
        raise
    except Exception as exc:
        exc.add_note(f"while {doing} city {city_id}")
        raise


def _status_counts(con: duckdb.DuckDBPyConnection, city_id: str) -> dict[str, int]:
    rows = con.execute("SELECT status, count(*) FROM kpi_values WHERE city_id = ? GROUP BY 1 ORDER BY 1",
                       [city_id]).fetchall()
    return {str(status): int(n) for status, n in rows}


def up_to_date(home: Home, loaded: LoadedConfig, stage: KpiStage) -> str | None:
    """The run that computed the city's `stage` (kpi_values or scores) from exactly the inputs it
    has now (observations, catalogue and formulas, targets, years), or None: recompute."""
    from kpis import state

    if not home.warehouse_path.exists():
        return None
    with home.warehouse() as con:
        return state.current_run(con, loaded.city_id, stage, kpi_inputs_fingerprint(con, loaded))


def kpi_status_counts(home: Home, loaded: LoadedConfig) -> dict[str, int]:
    """Rows per status of the city's stored kpi_values (what compute_city returns)."""
    with home.warehouse() as con:
        return _status_counts(con, loaded.city_id)


def quality_context(loaded: LoadedConfig, settings: QualitySettings | None = None) -> SuiteContext:
    city = loaded.config.city
    return SuiteContext(city.id, city.country, tuple(city.reporting_years), settings or QualitySettings.from_env(),
                        min_coverage=air_rules(loaded).min_coverage)


def check_city(home: Home, loaded: LoadedConfig, run_id: str, stage: Stage,
               settings: QualitySettings | None = None) -> list[CheckResult]:
    """Run the quality suites of one stage for a city and store the results, in one transaction.

    stage "core" (after load_city): source tables, core tables and observations; marks the
    observations failing blocking checks so that compute_city makes their KPIs `failed_check`.
    stage "kpis" (after compute_city): kpi_values and the U4SSC plausibility rules.
    """
    return check_cities(home, [loaded], run_id, stage, settings)[loaded.city_id]


def enforce_strict(run_id: str, city_id: str, results: list[CheckResult]) -> None:
    """--strict: stop at the first stage with a blocking failure (before anything downstream is written)."""
    failures = [f"{city_id}/{r.check.table}.{r.check.name} ({r.failing or 0:,} failing)"
                for r in results if r.blocking_failure]
    if failures:
        raise QualityGateError(run_id, failures)


def enforce_strict_all(run_id: str, by_city: dict[str, list[CheckResult]]) -> None:
    """--strict over a batched stage: one error naming every city's blocking failures."""
    failures = [f"{city_id}/{r.check.table}.{r.check.name} ({r.failing or 0:,} failing)"
                for city_id, results in by_city.items() for r in results if r.blocking_failure]
    if failures:
        raise QualityGateError(run_id, failures)


def city_record(loaded: LoadedConfig) -> dict[str, Any]:
    city = loaded.config.city
    return {"id": city.id, "name": city.name, "country": city.country, "reporting_years": city.reporting_years,
            "config": str(loaded.path), "config_sha256": hashlib.sha256(loaded.path.read_bytes()).hexdigest()}


def inputs_fingerprint(configs: Sequence[LoadedConfig], snapshots: Sequence[dict[str, Any]]) -> str:
    """SHA-256 of what a release is made from: the code version, each city's config file and own
    targets table, and the content of every input snapshot. Equal fingerprints and equal data hashes
    mean an unchanged run (`publish(skip_unchanged=True)` then writes no new release)."""
    from publish.releases import code_version

    def file_hash(path: Any) -> str | None:
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None

    facts = {
        "code_version": code_version(),
        "cities": sorted([c.city_id, file_hash(c.path), file_hash(c.targets_path)] for c in configs),
        "snapshots": sorted([s["city_id"], s["source_id"], s.get("content_sha256") or ""] for s in snapshots),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode("utf-8")).hexdigest()


def publish(home: Home, configs: list[LoadedConfig], run_id: str, extra: dict[str, Any] | None = None, *,
            strict: bool = False, latest_quality: bool = False, skip_unchanged: bool = False) -> Release:
    """Write a release with the run's quality summary; with `strict`, refuse when a blocking check failed.

    `latest_quality`: summarise the newest result of each check instead of this run's (a release
    run of its own, after partitioned runs did the checks). `skip_unchanged`: when the inputs
    fingerprint and the data equal the latest release's, write nothing and return that release
    (`citykpi run` without `--force`)."""
    quality_run = None if latest_quality else run_id
    with home.warehouse() as con:
        city_ids = [c.city_id for c in configs]
        with transaction(con):  # the scores stage: kpi_scores of every city, one GX validation
            run_cities(con, [quality_context(c) for c in configs], run_id, "scores", keep_unchanged=True)
        failures = blocking_failures(con, quality_run, city_ids)
        if strict and failures:
            raise QualityGateError(run_id, failures)
        reconcile_releases(con, home)
        cities = [city_record(c) for c in configs]
        snapshots = snapshot_records(con, city_ids)
        quality = quality_summary(con, quality_run, city_ids)
        # Load reports come from the warehouse, so every graph and process that loaded writes the same section.
        extra = {**(extra or {}), "loads": load_reports(con, city_ids), "quality": quality,
                 "inputs_fingerprint": inputs_fingerprint(configs, snapshots)}
        return publish_release(con, home, cities=cities, snapshots=snapshots, run_id=run_id, extra=extra,
                               skip_unchanged=skip_unchanged, configs=configs)


def computed_cities(home: Home) -> list[str]:
    """Cities with indicator rows in the warehouse (a release can hold only these)."""
    from kpis.store import cities_with_kpi_values

    if not home.warehouse_path.exists():
        return []
    with home.warehouse() as con:
        return cities_with_kpi_values(con)


# A run that failed without writing anything (an input refused at fetch or load) is recorded here, one
# JSON line per attempt, so that the warehouse file stays byte-identical (docs/security.md).
REFUSED_RUNS_LOG = Path("logs") / "refused-runs.jsonl"

WarehouseStamp = tuple[int, int, bool] | None


def warehouse_stamp(home: Home) -> WarehouseStamp:
    """What tells whether a run wrote to the warehouse: the file's modification time (ns) and size and
    whether a write-ahead log is pending; None without a warehouse. DuckDB writes the file only when a
    transaction commits (opening it, reading and rolling back leave it untouched)."""
    path = home.warehouse_path
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size, path.with_name(path.name + ".wal").exists()


def record_run(home: Home, run_id: str, configs: Sequence[LoadedConfig], status: str,
               started_at: datetime | None = None, *, unchanged_since: WarehouseStamp | bool = False,
               error: BaseException | None = None) -> None:
    """Write the run to the `runs` table ('succeeded' / 'failed' at its end, with `started_at`).

    A failed run that wrote nothing (`unchanged_since`: the `warehouse_stamp` taken at its start still
    holds) is appended to `<home>/logs/refused-runs.jsonl` instead, with its error: the warehouse stays
    as it was, and every run that changed it has its row."""
    from importlib.metadata import PackageNotFoundError, version

    from warehouse.store import finish_run, start_run

    try:
        code_version = version("citykpi")
    except PackageNotFoundError:
        code_version = "unknown"
    if status == "failed" and unchanged_since is not False and warehouse_stamp(home) == unchanged_since:
        _log_refused_run(home, run_id, configs, started_at, code_version, error)
        return
    with home.warehouse() as con:
        if status == "running" or started_at is not None:
            start_run(con, run_id, [str(c.path) for c in configs], code_version, started_at)
        if status != "running":
            finish_run(con, run_id, status)


def _log_refused_run(home: Home, run_id: str, configs: Sequence[LoadedConfig], started_at: datetime | None,
                     code_version: str, error: BaseException | None) -> None:
    from canonical.errors import excerpt

    entry = {"run_id": run_id, "started_at": started_at.isoformat() if started_at else None,
             "finished_at": datetime.now(UTC).isoformat(), "status": "failed",
             "configs": [str(c.path) for c in configs], "code_version": code_version,
             # The message the CLI printed (already redacted of secrets), one line, cut.
             "error": None if error is None else excerpt(f"{type(error).__name__}: {error}")}
    path = home.root / REFUSED_RUNS_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, ensure_ascii=False) + "\n")


def refused_runs(home: Home) -> list[dict[str, Any]]:
    """The failed runs that wrote nothing, oldest first (`<home>/logs/refused-runs.jsonl`)."""
    path = home.root / REFUSED_RUNS_LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass
class RunResult:
    run_id: str
    release: Release
    kpi_status: dict[str, dict[str, int]]
    loads: dict[str, dict[str, Any]]


def run_plain(home: Home, configs: list[LoadedConfig], run_id: str, *, offline: bool = False,
              strict: bool = False) -> RunResult:
    """Every stage in STAGE_ORDER without Dagster, over all cities at once (the same batched stage
    functions the Dagster assets call; the baseline for orchestration overhead).

    With `strict`, a blocking quality failure stops the run where Dagster's blocking asset checks
    stop it: after the stage that failed, with no release written.
    """
    # The run is recorded at its end, so that a refused one can leave the warehouse file untouched.
    started, stamp = datetime.now(UTC), warehouse_stamp(home)
    try:
        result = _run_stages(home, configs, run_id, offline=offline, strict=strict)
    except BaseException as exc:
        with contextlib.suppress(CitykpiError, duckdb.Error, OSError):  # never hide the error being raised
            record_run(home, run_id, configs, "failed", started, unchanged_since=stamp, error=exc)
        raise
    record_run(home, run_id, configs, "succeeded", started)
    return result


def _run_stages(home: Home, configs: list[LoadedConfig], run_id: str, *, offline: bool, strict: bool) -> RunResult:
    home.ensure()
    failures = fetch_failures(fetch_cities(home, configs, offline=offline))      # fetch
    if failures:
        raise FetchFailedError(failures)
    loads = load_cities(home, configs)                                            # load
    core = check_cities(home, configs, run_id, "core")                            # check_core
    if strict:
        enforce_strict_all(run_id, core)
    whole: list[CityWork] = [(loaded, None) for loaded in configs]
    computed = compute_cities(home, whole, run_id)                                # compute
    kpis = check_cities(home, configs, run_id, "kpis")                            # check_kpis
    if strict:
        enforce_strict_all(run_id, kpis)
    score_cities(home, whole, run_id)                                             # scores
    release = publish(home, configs, run_id, strict=strict)                       # publish
    return RunResult(run_id, release, {city: o.counts for city, o in computed.items()}, loads)
