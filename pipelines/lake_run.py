"""Past one machine: workers that commit their cities to the shared warehouse, and publication from it.

- `work`: the normal single-machine stages (pipelines/steps.py: fetch, load, core checks, compute, kpis
  checks, scores, scores checks) for the worker's cities in its own home, then `commit` of those
  cities to the lake (warehouse/lake.py). A worker writes nothing shared until its stages succeeded;
  its commit is idempotent, so a worker killed anywhere is simply run again.
- `commit`: a home's warehouse rows of these cities into the lake (after `work`, or after `citykpi run`).
- `publish_from_lake`: the lake's rows of these cities into a fresh local DuckDB warehouse (built under
  `<home>/tmp/` and swapped in under the home's lock), then the normal release (`steps.publish`),
  optionally uploaded to object storage (`publish.remote.upload_release`).
- `shard`: which cities a worker of a group takes (`--shard I/N`, e.g. a Kubernetes indexed Job).

Plain functions: the CLI (`citykpi lake ...`) and any orchestrator call them.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import duckdb

from canonical.errors import CitykpiError
from warehouse.home import Home
from warehouse.lake import (
    CommitReport,
    Lake,
    commit_extracts,
    ensure_tables,
    extract_city,
    read_cities,
    restore_into,
)

if TYPE_CHECKING:
    from publish.releases import Release
    from sources.config import LoadedConfig

# pipelines.steps (quality, GX, the publish formats) is imported inside the functions that run stages,
# so that `citykpi lake commit / status / init` start in a second.

Progress = Callable[[str], None]
ENV_RAW = "CITYKPI_LAKE_RAW"   # the shared landing zone (s3://bucket/raw), for `lake work --raw`


def new_run_id(prefix: str) -> str:
    return f"{prefix}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def shard(configs: Sequence[LoadedConfig], spec: str | None) -> list[LoadedConfig]:
    """The cities of shard `I/N` (0 <= I < N): every N-th city id in sorted order, from the I-th."""
    if not spec:
        return list(configs)
    try:
        index_text, count_text = spec.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise CitykpiError(f"--shard takes INDEX/COUNT, e.g. 0/4; got {spec!r}") from None
    if not 0 <= index < count:
        raise CitykpiError(f"--shard {spec}: INDEX must be from 0 to COUNT-1")
    ordered = sorted(configs, key=lambda c: c.city_id)
    return ordered[index::count]


@dataclass
class WorkReport:
    run_id: str
    cities: list[str]
    kpi_status: dict[str, dict[str, int]]
    commit: CommitReport
    stage_seconds: float
    lake_tables: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "cities": self.cities, "stage_seconds": round(self.stage_seconds, 3),
                "commit": self.commit.as_dict()}


def run_stages(home: Home, configs: list[LoadedConfig], run_id: str, *, offline: bool = False,
               strict: bool = False) -> dict[str, dict[str, int]]:
    """Every stage of a single-machine run but the release, over these cities in this home; recorded in
    the `runs` table as `run_plain` records its runs."""
    from pipelines import steps

    started, stamp = datetime.now(UTC), steps.warehouse_stamp(home)
    try:
        home.ensure()
        failures = steps.fetch_failures(steps.fetch_cities(home, configs, offline=offline))
        if failures:
            raise steps.FetchFailedError(failures)
        steps.load_cities(home, configs)
        core = steps.check_cities(home, configs, run_id, "core")
        if strict:
            steps.enforce_strict_all(run_id, core)
        whole: list[Any] = [(loaded, None) for loaded in configs]
        computed = steps.compute_cities(home, whole, run_id)
        kpis = steps.check_cities(home, configs, run_id, "kpis")
        if strict:
            steps.enforce_strict_all(run_id, kpis)
        steps.score_cities(home, whole, run_id)
        # The scores suite, which a single machine runs as the first part of its publish stage.
        scores = steps.check_cities(home, configs, run_id, "scores")
        if strict:
            steps.enforce_strict_all(run_id, scores)
    except BaseException as exc:
        with contextlib.suppress(CitykpiError, duckdb.Error, OSError):
            steps.record_run(home, run_id, configs, "failed", started, unchanged_since=stamp, error=exc)
        raise
    steps.record_run(home, run_id, configs, "succeeded", started)
    return {city: outcome.counts for city, outcome in computed.items()}


def commit(home: Home, lake: Lake, city_ids: Sequence[str], *, force: bool = False,
           progress: Progress | None = None, ensure: bool = True, years: Sequence[int] | None = None) -> CommitReport:
    """Commit these cities' rows from the home's warehouse to the lake: of the year-keyed tables every
    year each city has, or only `years` (the other years' rows in the lake stay as they are)."""
    if not home.warehouse_path.exists():
        raise CitykpiError(f"no warehouse in {home.root} yet: run the cities first (`citykpi lake work`)")
    with home.warehouse(read_only=True) as con:
        known = {r[0] for r in con.execute("SELECT DISTINCT city_id FROM kpi_values").fetchall()}
        missing = [c for c in city_ids if c not in known]
        if missing:
            raise CitykpiError(f"{', '.join(missing)}: no KPI values in {home.warehouse_path}; run the city first")
        extracts = [extract_city(con, city, years) for city in city_ids]
    if ensure:
        ensure_tables(lake)
    return commit_extracts(lake, extracts, force=force, progress=progress)


def work(home: Home, configs: list[LoadedConfig], lake: Lake, *, offline: bool = False, strict: bool = False,
         force: bool = False, raw: str | None = None, progress: Progress | None = None) -> WorkReport:
    """A worker: the stages for its cities in its own home, then their commit to the lake. With `raw`
    (an object-storage location), the cities' landing zone is pulled from it first (snapshots this home
    lacks) and pushed to it after the stages, also when they failed: a worker on a fresh machine
    starts from the shared landing zone, and no fetched snapshot is lost with the machine."""
    import time

    from warehouse.objectstore import location, pull_raw, push_raw

    run_id = new_run_id("lake")
    started = time.monotonic()
    city_ids = [c.city_id for c in configs]
    # The lake first: a worker that cannot reach it fails before it spends minutes computing.
    tables = ensure_tables(lake)
    raw_loc = location(raw) if raw else None
    if raw_loc is not None:
        home.ensure()
        pulled = pull_raw(raw_loc, home.raw, city_ids)
        if progress:
            progress(f"pulled {pulled.snapshots} snapshots ({pulled.bytes:,} bytes) from {raw_loc.display()}")
    try:
        kpi_status = run_stages(home, configs, run_id, offline=offline, strict=strict)
    except BaseException:
        if raw_loc is not None:
            with contextlib.suppress(Exception):   # never hide the stage's error
                push_raw(home.raw, raw_loc, city_ids)
        raise
    if raw_loc is not None:
        pushed = push_raw(home.raw, raw_loc, city_ids)
        if progress:
            progress(f"pushed {pushed.snapshots} snapshots ({pushed.bytes:,} bytes) to {raw_loc.display()}")
    stage_seconds = time.monotonic() - started
    if progress:
        progress(f"stages done for {len(configs)} cities in {stage_seconds:.1f} s; committing to the lake")
    report = commit(home, lake, [c.city_id for c in configs], force=force, progress=progress, ensure=False)
    return WorkReport(run_id, [c.city_id for c in configs], kpi_status, report, stage_seconds, tables)


def build_warehouse_from_lake(home: Home, lake: Lake, city_ids: Sequence[str]) -> dict[str, int]:
    """Replace the home's warehouse with a fresh one holding the lake's rows of these cities (the
    releases index is rebuilt from the release folders by the next publish)."""
    from warehouse.db import connect, writer_lock

    tables = read_cities(lake, city_ids)
    home.ensure()
    with writer_lock(home.root, wait_s=steps_lock_wait()):
        staging = home.tmp / f"lake-{uuid.uuid4().hex[:8]}.duckdb"
        con = connect(staging)
        try:
            con.execute("BEGIN TRANSACTION")
            counts = restore_into(con, tables)
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        wal = home.warehouse_path.with_name(home.warehouse_path.name + ".wal")
        wal.unlink(missing_ok=True)
        os.replace(staging, home.warehouse_path)
    return counts


def steps_lock_wait() -> float:
    from warehouse.db import lock_wait_s

    return lock_wait_s()


def publish_from_lake(home: Home, configs: list[LoadedConfig], lake: Lake, *, skip_unchanged: bool = False,
                      to: str | None = None, progress: Progress | None = None) -> tuple[Release, str | None]:
    """The release of these cities from the lake: a fresh local warehouse, then the normal publish
    stage (its scores checks, the quality summary of the newest result of every check), then, with
    `to`, the release uploaded to object storage. Returns the release and where it was uploaded."""
    from pipelines import steps
    from warehouse.db import writer_lock

    run_id = new_run_id("lake-publish")
    started, city_ids = datetime.now(UTC), [c.city_id for c in configs]
    with writer_lock(home.root, wait_s=steps_lock_wait()):
        home.clean_tmp()
        counts = build_warehouse_from_lake(home, lake, city_ids)
        if progress:
            progress(f"read {sum(counts.values()):,} rows of {len(city_ids)} cities from the lake")
        try:
            release = steps.publish(home, configs, run_id, extra={"lake": {"tables": counts}},
                                    latest_quality=True, skip_unchanged=skip_unchanged)
        except BaseException as exc:
            with contextlib.suppress(CitykpiError, duckdb.Error, OSError):
                steps.record_run(home, run_id, configs, "failed", started, error=exc)
            raise
        steps.record_run(home, run_id, configs, "succeeded", started)
    uploaded = None
    if to:
        from publish.remote import upload_release

        uploaded = upload_release(release, to)
        if progress:
            progress(f"uploaded release {release.release_id} to {uploaded}")
    return release, uploaded


# ---- the command line: `citykpi lake ACTION` ---------------------------------------------------------


def _say(message: str) -> None:
    import sys

    print(f"citykpi: lake: {message}", file=sys.stderr, flush=True)


def _print_commit(report: CommitReport, as_json: bool) -> None:
    import json

    if as_json:
        print(json.dumps(report.as_dict(), sort_keys=True))
        return
    skipped = f", {len(report.skipped)} unchanged ({', '.join(report.skipped)})" if report.skipped else ""
    print(f"committed {len(report.written)} cities{skipped} in {report.seconds:.1f} s: {report.commits} commits, "
          f"{report.retries} retries")


def _years(text: str) -> list[int]:
    try:
        return sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise CitykpiError(f"--years takes years separated by commas, e.g. 2023,2024; got {text!r}") from None


def lake_command(args: Any, home: Home, load_configs: Callable[..., list[LoadedConfig]]) -> int:
    """`citykpi lake init | work | commit | publish | status` (pipelines/cli.py parses the arguments)."""
    from warehouse.lake import lake_status, open_lake

    lake = open_lake()
    action = args.lake_command
    if action == "init":
        for table, outcome in ensure_tables(lake).items():
            print(f"{table:<20} {outcome}")
        return 0
    if action == "status":
        rows = lake_status(lake)
        if not rows:
            _say(f"no cities in the lake yet ({lake.settings.describe()})")
        for row in rows:
            years = row["years"] or []
            span = f"{min(years)}-{max(years)}" if years else "-"
            print(f"{row['city_id']:<24} {row['state']:<10} {row['lake_version'][:12]}  {span:<9} "
                  f"{row['worker']:<24} {row['committed_at']:%Y-%m-%d %H:%M:%S}")
        return 0
    if action == "commit":
        home = home.ensure()
        years = _years(args.years) if args.years else None
        _print_commit(commit(home, lake, args.cities, force=args.force, progress=_say, years=years), args.json)
        return 0
    configs = load_configs(args.configs, check_files=not getattr(args, "offline", False))
    if action == "work":
        configs = shard(configs, args.shard)
        if not configs:
            _say(f"shard {args.shard}: no cities")
            return 0
        home = home.ensure()
        _say(f"worker {lake.worker}: {', '.join(c.city_id for c in configs)} in {home.root}")
        report = work(home, configs, lake, offline=args.offline, strict=args.strict, force=args.force,
                      raw=args.raw or os.environ.get(ENV_RAW) or None, progress=_say)
        _print_commit(report.commit, args.json)
        return 0
    if action == "publish":
        release, uploaded = publish_from_lake(home.ensure(), configs, lake, skip_unchanged=not args.force,
                                              to=args.to, progress=_say)
        print(f"Release {release.release_id}: {release.path}" + (f" (copied to {uploaded})" if uploaded else ""))
        return 0
    raise CitykpiError(f"unknown lake action {action!r}")
