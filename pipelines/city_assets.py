"""The asset graph: the same stages for `citykpi run` and the deployment, partitioned by city and year.

    raw/snapshots (city) -> core/observations (city) -> out/kpi_values (city x year)
                                                     -> out/scores (city x year) -> out/release

One driver: the deployment (pipelines/defs/citykpi.py) runs these assets by partition from sensors and
schedules (a single-run backfill hands a whole partition key range to one execution); `citykpi run`
materialises the same assets in process, not partitioned (`RUN_ASSETS`: every city of its configs in
one execution, pipelines/dagster_run.py). Either way an execution hands all its cities to one batched
stage function in `pipelines.steps`. Thin: each asset calls plain steps and holds no business logic. Partitioned
assets write idempotently: a run of partition P replaces exactly P's rows (observations of the city;
kpi_values, kpi_scores and kpi_rollups of the city-year; kpi_progress spans a city's years and is
recomputed whole); a run holding every reporting year of a city computes the city whole and keeps its
rows when their inputs did not change (kpi_state). Assets that open the warehouse share the
concurrency pool `citykpi_warehouse` and, whatever the pool limit, queue on the home's lock
(warehouse/db.py), so parallel runs never meet DuckDB's single-writer lock. Each partition's
materialization carries only its own city's facts (one small event per partition, not one per check).
"""


from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import dagster as dg

from pipelines import steps
from pipelines.checks import QualityResource, check_specs, merged_check_results, run_checks
from pipelines.load_messages import load_messages
from pipelines.partitions import CITY, CITY_OF_CITY_YEAR, CITY_YEAR, YEAR, run_city_year_keys, years_by_city
from pipelines.progress import StageLines, cities_text, counts_text, summed
from pipelines.resources import CitykpiResource
from pipelines.summary import city_list
from quality.run import Stage
from quality.sql import json_safe
from sources.config import FETCH_EVERY

RAW = dg.AssetKey(["raw", "snapshots"])
CORE = dg.AssetKey(["core", "observations"])
KPI = dg.AssetKey(["out", "kpi_values"])
SCORES = dg.AssetKey(["out", "scores"])
RELEASE = dg.AssetKey(["out", "release"])
WAREHOUSE_POOL = "citykpi_warehouse"
FETCH_SCHEDULES = sorted(set(FETCH_EVERY.values()))


# Whole-city fetch retries on top of each source's own HTTP retries (`http:` in the config): the
# run is retried after about 1, 3 and 7 minutes (exponential backoff with jitter).
FETCH_RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=60, backoff=dg.Backoff.EXPONENTIAL,
                                    jitter=dg.Jitter.PLUS_MINUS)


class FetchConfig(dg.Config):
    """Which sources a fetch run pulls: those on schedule `every` (daily, weekly, monthly), or all."""

    every: str | None = None


def raw_snapshots_asset(retry_policy: dg.RetryPolicy | None = FETCH_RETRY_POLICY,
                        partitions_def: dg.PartitionsDefinition | None = CITY) -> dg.AssetsDefinition:
    """raw/snapshots with a retry policy (tests pass None to see a failure at once); `partitions_def` None:
    the run's cities (`citykpi run`, see `run_keys`)."""

    @dg.asset(key=RAW, partitions_def=partitions_def, group_name="raw", kinds={"files"}, retry_policy=retry_policy,
              backfill_policy=dg.BackfillPolicy.single_run(),
              freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(days=35),
                                                              warn_window=timedelta(days=8)),
              description="Landing-zone snapshots of a city's sources (immutable, content-hashed). A source whose "
                          "content did not change makes no new snapshot. One failing source does not stop the others; "
                          "the run then fails naming it, and is retried with backoff.")
    def raw_snapshots(context: dg.AssetExecutionContext, citykpi: CitykpiResource,
                      config: FetchConfig) -> dg.MaterializeResult:
        if config.every is not None and config.every not in FETCH_SCHEDULES:
            raise dg.Failure(f"fetch config 'every' must be one of {FETCH_SCHEDULES}, not {config.every!r}")
        home = citykpi.resolved_home()
        configs = citykpi.cities(run_keys(context, citykpi))
        reports = steps.fetch_cities(home, configs, offline=citykpi.offline, every=config.every)
        landed: dict[str, dict[str, object]] = {}
        lines = citykpi.lines(context, len(reports))
        for city_id, report in reports.items():
            landed[city_id] = {s.source_id: {"snapshot_id": s.snapshot_id, "new": s.new} for s in report.snapshots}
            if partitioned(context):
                context.add_asset_metadata({"landed": dg.MetadataValue.json({city_id: landed[city_id]})},
                                           partition_key=city_id)
            for snapshot in report.snapshots:  # one line per source, as the README shows
                lines.city(f"{city_id}/{snapshot.source_id}: snapshot {snapshot.snapshot_id}"
                           f" ({'new' if snapshot.new else 'unchanged'}, {snapshot.size_bytes:,} bytes)")
        snapshots = [s for report in reports.values() for s in report.snapshots]
        new = sum(1 for s in snapshots if s.new)
        lines.total(f"raw: {cities_text(len(reports))}, {len(snapshots):,} source snapshots ({new:,} new, "
                    f"{len(snapshots) - new:,} unchanged; {sum(s.size_bytes for s in snapshots):,} bytes)")
        failures = steps.fetch_failures(reports)
        if failures:
            raise dg.Failure(description=str(steps.FetchFailedError(failures)),
                             metadata={"failures": dg.MetadataValue.json(failures),
                                       "landed": dg.MetadataValue.json(landed)},
                             allow_retries=True)
        return dg.MaterializeResult(metadata={"every": config.every or "all"})

    return raw_snapshots


def partitioned(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> bool:
    """Whether this execution covers partitions (the deployment) or the run's cities (`citykpi run`)."""
    return context.has_partition_key or context.has_partition_key_range


def run_keys(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, citykpi: CitykpiResource, *,
             years: bool = False) -> list[str]:
    """The partition keys this execution covers: the run's partitions in the deployment; in `citykpi run`
    (assets not partitioned: one Dagster event per asset, not one per city and year) the keys of every
    city of the run, with `years` each city-year (`partitions.run_city_year_keys`)."""
    if partitioned(context):
        return list(context.partition_keys)
    configs = citykpi.all_cities()
    return run_city_year_keys(configs) if years else [c.city_id for c in configs]


def core_observations_asset(partitions_def: dg.PartitionsDefinition | None = CITY) -> dg.AssetsDefinition:
    @dg.asset(key=CORE, deps=[RAW], partitions_def=partitions_def, group_name="core", kinds={"duckdb"},
              pool=WAREHOUSE_POOL, backfill_policy=dg.BackfillPolicy.single_run(),
              description="Canonical and derived observations of a city (replaces the city's core rows), loaded "
                          "from the CURRENT snapshot of each source.")
    def core_observations(context: dg.AssetExecutionContext, citykpi: CitykpiResource) -> dg.MaterializeResult:
        return load_stage(context, citykpi)

    return core_observations


def load_stage(context: dg.AssetExecutionContext, citykpi: CitykpiResource) -> dg.MaterializeResult:
    """core/observations' body (one for the partitioned and the unpartitioned asset)."""
    home = citykpi.resolved_home()
    configs = citykpi.cities(run_keys(context, citykpi))
    snapshots = {c.city_id: steps.current_snapshots(home, c) for c in configs}
    lines = citykpi.lines(context, len(configs), "core")
    reports = steps.load_cities(home, configs, on_progress=lines.done)
    for city_id, report in reports.items():
        summary = {"observations": report["observations"], "changed": report["changed"],
                   "observations_changed": report["observations_changed"],
                   "changed_years": report["changed_years"],
                   "snapshots": {s.source_id: s.content_sha256 for s in snapshots[city_id]}}
        # The snapshot sensor compares the CURRENT pointers with `snapshots` to see what is new; the
        # KPI sensor skips a city whose observations did not change. The full report: core_source_state.
        if partitioned(context):
            context.add_asset_metadata({"loaded": dg.MetadataValue.json(json_safe({city_id: summary}))},
                                       partition_key=city_id)
        lines.city(f"{city_id}: {report['observations']:,} observations"
                   + ("" if report["observations_changed"] else " (unchanged)"))
        for line in load_messages(report):
            lines.notice(city_id, line)
    changed = sum(1 for r in reports.values() if r["observations_changed"])
    lines.total(f"core: {cities_text(len(reports))}, {sum(r['observations'] for r in reports.values()):,} "
                f"observations (changed in {cities_text(changed)}, unchanged in {len(reports) - changed:,})")
    lines.close()
    return dg.MaterializeResult(metadata={"cities": len(reports)})


def city_work(context: dg.AssetExecutionContext, citykpi: CitykpiResource, lines: StageLines
              ) -> tuple[list[steps.CityWork], dict[str, dict[str, Any]]]:
    """(city, years to compute) per city of the run: whole-city (None) when the run holds every
    reporting year of the city, else the reported years; and per city the facts for its partitions."""
    by_city = years_by_city(run_keys(context, citykpi, years=True))
    work: list[steps.CityWork] = []
    facts: dict[str, dict[str, Any]] = {}
    partition_years = [int(y) for y in YEAR.get_partition_keys()]
    for loaded in citykpi.cities(list(by_city)):
        years = by_city[loaded.city_id]
        skipped = sorted(set(years) - set(loaded.config.city.reporting_years))
        todo = steps.whole_city_years(loaded, years, partition_years)
        if todo is None or todo:
            work.append((loaded, todo))
        facts[loaded.city_id] = {"years": loaded.config.city.reporting_years if todo is None else todo,
                                 "skipped_years": skipped}
        if skipped and todo is not None:  # a whole-city run over a range of years skips quietly
            lines.notice(loaded.city_id, f"{skipped} not among the reporting years "
                                         f"{loaded.config.city.reporting_years}: nothing computed for them", ": ")
    return work, facts


# Dagster checks every per-partition metadata call against the run's whole partition range, so the calls
# cost partitions squared (3,000 city-years: about 75 s per asset; 30,000: hours; 300: 0.8 s per asset).
# Past this many partitions a run's materializations carry no per-partition facts; the run log and the
# warehouse (kpi_state, kpi_values, kpi_scores) hold them.
PER_PARTITION_METADATA_MAX = 100


def _partition_metadata(context: dg.AssetExecutionContext, name: str, facts: dict[str, dict[str, Any]]
                        ) -> dict[str, Any]:
    """Each city-year partition's materialization carries its own city's facts (not every city's), up to
    PER_PARTITION_METADATA_MAX partitions; returns what the run's MaterializeResult adds (a note past it)."""
    if not partitioned(context):  # citykpi run: no partitions to attach to; the run log has the facts
        return {}
    keys = context.partition_keys
    if len(keys) > PER_PARTITION_METADATA_MAX:
        return {f"{name}_per_partition": f"not attached: {len(keys):,} partitions (more than "
                                         f"{PER_PARTITION_METADATA_MAX}); see the run log and the warehouse"}
    for key in keys:
        city_id = key.partition("|")[0]
        context.add_asset_metadata({name: dg.MetadataValue.json(json_safe({city_id: facts[city_id]}))},
                                   partition_key=key)
    return {}


def _outcome_line(city_id: str, outcome: steps.StageOutcome, what: str) -> str:
    years = "" if outcome.years is None else f" {outcome.years}"
    counts = ", ".join(f"{k} {v}" for k, v in outcome.counts.items())
    kept = f"(inputs unchanged: kept from run {outcome.kept_from})" if outcome.kept_from else ""
    return f"{city_id}{years}: " + " ".join(part for part in (what, counts, kept) if part)


def _outcome_lines(context: dg.AssetExecutionContext, citykpi: CitykpiResource, stage: str, what: str,
                   run: Callable[[list[steps.CityWork]], dict[str, steps.StageOutcome]]
                   ) -> tuple[dict[str, steps.StageOutcome], dict[str, dict[str, Any]]]:
    """A city-year stage's work (`run`) with its progress lines: per city, or its totals over many."""
    lines = citykpi.lines(context, len(years_by_city(run_keys(context, citykpi, years=True))))
    work, facts = city_work(context, citykpi, lines)
    outcomes = run(work)
    for city_id, outcome in outcomes.items():
        lines.city(_outcome_line(city_id, outcome, what))
    kept = sum(1 for o in outcomes.values() if o.kept_from)
    named = f"{what} " if what != stage else ""
    counts = counts_text(summed(o.counts for o in outcomes.values()))
    lines.total(f"{stage}: {cities_text(len(outcomes))}, {named}{counts}"
                + (f" (inputs unchanged in {cities_text(kept)}: kept from earlier runs)" if kept else ""))
    lines.close()
    return outcomes, facts


def _city_year_stage(context: dg.AssetExecutionContext, citykpi: CitykpiResource, names: tuple[str, str, str, str],
                     step: Callable[..., dict[str, steps.StageOutcome]]) -> dg.MaterializeResult:
    """A city-year stage: `step(home, work, run_id)` with its progress lines and per-partition facts.
    `names`: (stage, what its counts are, the facts' key for them, the metadata's name)."""
    stage, what, counts_key, metadata_name = names
    outcomes, facts = _outcome_lines(
        context, citykpi, stage, what,
        lambda work: step(citykpi.resolved_home(), work, citykpi.stage_run_id(context)))
    for city_id, outcome in outcomes.items():
        facts[city_id] |= {counts_key: outcome.counts, "kept_from_run": outcome.kept_from or ""}
    extra = _partition_metadata(context, metadata_name, facts)
    return dg.MaterializeResult(metadata={"cities": len(facts), **extra})


def kpi_values_asset(partitions_def: dg.PartitionsDefinition | None = CITY_YEAR) -> dg.AssetsDefinition:
    core = dg.AssetDep(CORE, partition_mapping=CITY_OF_CITY_YEAR) if partitions_def is not None else dg.AssetDep(CORE)

    @dg.asset(key=KPI, deps=[core], partitions_def=partitions_def, group_name="out", kinds={"duckdb"},
              pool=WAREHOUSE_POOL, backfill_policy=dg.BackfillPolicy.single_run(),
              description="U4SSC and SDG 11 indicator values of a city and year, with provenance (replaces exactly "
                          "that city-year's rows; a run of all of a city's reporting years computes the city whole "
                          "and keeps unchanged rows). A year the city does not report is skipped and says so.")
    def kpi_values(context: dg.AssetExecutionContext, citykpi: CitykpiResource) -> dg.MaterializeResult:
        return _city_year_stage(context, citykpi, ("kpis", "indicator rows", "rows", "computed"),
                                steps.compute_cities)

    return kpi_values


def scores_asset(partitions_def: dg.PartitionsDefinition | None = CITY_YEAR) -> dg.AssetsDefinition:
    @dg.asset(key=SCORES, deps=[KPI], partitions_def=partitions_def, group_name="out", kinds={"duckdb"},
              pool=WAREHOUSE_POOL, backfill_policy=dg.BackfillPolicy.single_run(),
              description="U4SSC scores and roll-ups of a city and year against the targets in force, and the "
                          "city's progress towards them (kpi_scores, kpi_rollups, kpi_progress). Targets are public "
                          "references, not the official U4SSC benchmarks.")
    def scores(context: dg.AssetExecutionContext, citykpi: CitykpiResource) -> dg.MaterializeResult:
        return _city_year_stage(context, citykpi, ("scores", "scores", "scores", "scored"), steps.score_cities)

    return scores


@dg.asset(key=RELEASE, deps=[SCORES], group_name="out", kinds={"parquet", "csv"}, pool=WAREHOUSE_POOL,
          freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(days=35)),
          description="A new immutable release under <home>/releases/ of every configured city that has indicator "
                      "values, with the newest quality result of each check in its manifest (`citykpi run`: its "
                      "own run's results; unchanged inputs and data keep the latest release unless --force).")
def release(context: dg.AssetExecutionContext, citykpi: CitykpiResource,
            quality: QualityResource) -> dg.MaterializeResult:
    home = citykpi.resolved_home()
    computed = set(steps.computed_cities(home))
    configs = [c for c in citykpi.all_cities() if c.city_id in computed]
    if not configs:
        raise dg.Failure("no configured city has indicator values yet; materialise out/kpi_values first")
    run_id = citykpi.stage_run_id(context)
    published = steps.publish(home, configs, run_id, strict=quality.strict, latest_quality=citykpi.run_id is None,
                              skip_unchanged=citykpi.skip_unchanged_release)
    cities = [c.city_id for c in configs]
    if published.manifest.get("run_id") == run_id:
        citykpi.say(context, f"release {published.release_id} written: {city_list(cities)}")
    else:  # same inputs, code, config and data as the latest release: nothing written
        citykpi.say(context, f"release {published.release_id} kept: nothing changed since it")
    return dg.MaterializeResult(metadata={"release_id": published.release_id,
                                          "path": dg.MetadataValue.path(str(published.path)),
                                          "cities": cities,
                                          "kpi_rows": published.manifest["row_counts"]["kpi_values"]})


def _stage_checks(stage: Stage, asset_key: dg.AssetKey, partitions_def: dg.PartitionsDefinition | None,
                  name: str) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(specs=check_specs(stage, asset_key, partitions_def), name=name, pool=WAREHOUSE_POOL,
                          description=f"Quality suites of stage {stage!r} for the partitions' cities.")
    def quality_checks(context: dg.AssetCheckExecutionContext, citykpi: CitykpiResource,
                       quality: QualityResource) -> Iterator[dg.AssetCheckResult]:
        city_ids = list(dict.fromkeys(key.partition("|")[0] for key in run_keys(context, citykpi)))
        yield from merged_check_results(run_checks(context, citykpi, quality, citykpi.cities(city_ids), stage),
                                        asset_key, strict=quality.strict)

    return quality_checks


ASSETS = [raw_snapshots_asset(), core_observations_asset(), kpi_values_asset(), scores_asset(), release]
CHECKS = [_stage_checks("core", CORE, CITY, "core_quality"), _stage_checks("kpis", KPI, CITY_YEAR, "kpis_quality")]
# `citykpi run` (one Dagster run per stage over every city): the same assets and checks, not partitioned.
# A partitioned asset materialised over a range of P partitions stores one materialization event per
# partition (8,000 events for 1,000 cities x 3 years: about 15 s), and a partitioned check planned over
# P partitions makes Dagster store P rows, each holding the planned event with the whole range serialised:
# O(P^2) time and memory (measured, 1,000 cities x 3 years: 8.8 s and 127 MB per check, 19 KPI checks).
# Unpartitioned, one event per asset and one row per check; the cities come from the run's configs
# (`run_keys`). Results per city stay in the warehouse (kpi_state, quality_results, core_source_state),
# and a blocking check still stops the run (--strict).
RUN_ASSETS = [raw_snapshots_asset(retry_policy=None, partitions_def=None), core_observations_asset(None),
              kpi_values_asset(None), scores_asset(None), release]
RUN_CHECKS = [_stage_checks("core", CORE, None, "core_quality"), _stage_checks("kpis", KPI, None, "kpis_quality")]
