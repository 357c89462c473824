"""The production asset graph: the same steps as `citykpi run`, partitioned by city and year.

    raw/snapshots (city) -> core/observations (city) -> out/kpi_values (city x year)
                                                     -> out/scores (city x year) -> out/release

Thin: each asset calls plain steps in `pipelines.steps` and holds no business logic. Partitioned
assets write idempotently: a run of partition P replaces exactly P's rows (observations of the
city; kpi_values, kpi_scores and kpi_rollups of the city-year; kpi_progress spans a city's years
and is recomputed whole). Assets that open the warehouse share the concurrency pool
`citykpi_warehouse` and, whatever the pool limit, queue on the home's lock (warehouse/db.py), so
parallel runs never meet DuckDB's single-writer lock.
"""


from collections.abc import Iterator, Sequence
from datetime import timedelta

import dagster as dg

from pipelines import steps
from pipelines.checks import QualityResource, check_cities, check_specs, merged_check_results
from pipelines.cities import configured_cities
from pipelines.load_messages import load_messages
from pipelines.partitions import CITY, CITY_OF_CITY_YEAR, CITY_YEAR, years_by_city
from pipelines.resources import CitykpiResource
from sources.config import FETCH_EVERY, LoadedConfig
from warehouse.quality.run import Stage
from warehouse.quality.sql import json_safe

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


def raw_snapshots_asset(retry_policy: dg.RetryPolicy | None = FETCH_RETRY_POLICY) -> dg.AssetsDefinition:
    """raw/snapshots with a retry policy (tests pass None to see a failure at once)."""

    @dg.asset(key=RAW, partitions_def=CITY, group_name="raw", kinds={"files"}, retry_policy=retry_policy,
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
        landed: dict[str, dict[str, object]] = {}
        failures: dict[str, str] = {}
        for city_id in context.partition_keys:
            report = steps.fetch_sources(home, citykpi.city(city_id), offline=citykpi.offline, every=config.every)
            landed[city_id] = {s.source_id: {"snapshot_id": s.snapshot_id, "new": s.new} for s in report.snapshots}
            failures.update({f"{city_id}/{source}": message for source, message in report.failures.items()})
            new = report.new_snapshots
            citykpi.say(context, f"{city_id}: {len(report.snapshots)} source(s) fetched, "
                                 f"{len(new)} new snapshot(s){': ' + ', '.join(new) if new else ''}")
        if failures:
            raise dg.Failure(description="failed sources: " + "; ".join(f"{k}: {v}" for k, v in failures.items()),
                             metadata={"failures": dg.MetadataValue.json(failures),
                                       "landed": dg.MetadataValue.json(landed)},
                             allow_retries=True)
        return dg.MaterializeResult(metadata={"landed": dg.MetadataValue.json(landed),
                                              "every": config.every or "all"})

    return raw_snapshots


raw_snapshots = raw_snapshots_asset()


@dg.asset(key=CORE, deps=[RAW], partitions_def=CITY, group_name="core", kinds={"duckdb"}, pool=WAREHOUSE_POOL,
          backfill_policy=dg.BackfillPolicy.single_run(),
          description="Canonical and derived observations of a city (replaces the city's core rows), loaded from "
                      "the CURRENT snapshot of each source.")
def core_observations(context: dg.AssetExecutionContext, citykpi: CitykpiResource) -> dg.MaterializeResult:
    home = citykpi.resolved_home()
    summary: dict[str, object] = {}
    for city_id in context.partition_keys:
        loaded = citykpi.city(city_id)
        snapshots = steps.current_snapshots(home, loaded)
        report = steps.load_city(home, loaded, snapshots)
        summary[city_id] = {"observations": report["observations"], "changed": report["changed"],
                            "observations_changed": report["observations_changed"],
                            "changed_years": report["changed_years"],
                            "snapshots": {s.source_id: s.content_sha256 for s in snapshots}}
        citykpi.say(context, f"{city_id}: {report['observations']:,} observations"
                             + ("" if report["observations_changed"] else " (unchanged)"))
        for line in load_messages(report):
            citykpi.say(context, f"{city_id}/{line}")
    # The snapshot sensor compares the CURRENT pointers with `snapshots` to see what is new; the
    # KPI sensor skips a city whose observations did not change.
    return dg.MaterializeResult(metadata={"loaded": dg.MetadataValue.json(json_safe(summary))})


def reporting_years(citykpi: CitykpiResource,
                    partition_keys: Sequence[str]) -> Iterator[tuple[LoadedConfig, list[int], list[int]]]:
    """(city config, partition years the city reports, partition years it does not) per city."""
    for city_id, years in years_by_city(partition_keys).items():
        loaded = citykpi.city(city_id)
        reported = [y for y in years if y in loaded.config.city.reporting_years]
        yield loaded, reported, sorted(set(years) - set(reported))


@dg.asset(key=KPI, deps=[dg.AssetDep(CORE, partition_mapping=CITY_OF_CITY_YEAR)], partitions_def=CITY_YEAR,
          group_name="out", kinds={"duckdb"}, pool=WAREHOUSE_POOL, backfill_policy=dg.BackfillPolicy.single_run(),
          description="U4SSC and SDG 11 indicator values of a city and year, with provenance (replaces exactly "
                      "that city-year's rows). A year the city does not report is skipped and says so.")
def kpi_values(context: dg.AssetExecutionContext, citykpi: CitykpiResource) -> dg.MaterializeResult:
    home = citykpi.resolved_home()
    computed: dict[str, object] = {}
    for loaded, reported, skipped in reporting_years(citykpi, context.partition_keys):
        city_id = loaded.city_id
        if skipped:
            citykpi.say(context, f"{city_id}: {skipped} not among the reporting years "
                                 f"{loaded.config.city.reporting_years}: nothing computed for them")
        if reported:
            counts = steps.compute_city(home, loaded, context.run.run_id, reported)
            citykpi.say(context, f"{city_id} {reported}: indicator rows "
                                 + ", ".join(f"{k} {v}" for k, v in counts.items()))
            computed[city_id] = {"years": reported, "rows": counts, "skipped_years": skipped}
        else:
            computed[city_id] = {"years": [], "skipped_years": skipped}
    return dg.MaterializeResult(metadata={"computed": dg.MetadataValue.json(computed)})


@dg.asset(key=SCORES, deps=[KPI], partitions_def=CITY_YEAR, group_name="out", kinds={"duckdb"}, pool=WAREHOUSE_POOL,
          backfill_policy=dg.BackfillPolicy.single_run(),
          description="U4SSC scores and roll-ups of a city and year against the targets in force, and the city's "
                      "progress towards them (kpi_scores, kpi_rollups, kpi_progress). Targets are public references, "
                      "not the official U4SSC benchmarks.")
def scores(context: dg.AssetExecutionContext, citykpi: CitykpiResource) -> dg.MaterializeResult:
    home = citykpi.resolved_home()
    scored: dict[str, object] = {}
    for loaded, reported, _ in reporting_years(citykpi, context.partition_keys):
        if reported:
            scored[loaded.city_id] = steps.benchmark_city(home, loaded, context.run.run_id, reported)
            citykpi.say(context, f"{loaded.city_id} {reported}: scores {scored[loaded.city_id]}")
    return dg.MaterializeResult(metadata={"scored": dg.MetadataValue.json(scored)})


@dg.asset(key=RELEASE, deps=[SCORES], group_name="out", kinds={"parquet", "csv"}, pool=WAREHOUSE_POOL,
          freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(days=35)),
          description="A new immutable release under <home>/releases/ of every configured city that has indicator "
                      "values, with the newest quality result of each check in its manifest.")
def release(context: dg.AssetExecutionContext, citykpi: CitykpiResource,
            quality: QualityResource) -> dg.MaterializeResult:
    home = citykpi.resolved_home()
    computed = set(steps.computed_cities(home))
    configs = [c for c in configured_cities(home, check_files=False) if c.city_id in computed]
    if not configs:
        raise dg.Failure("no configured city has indicator values yet; materialise out/kpi_values first")
    published = steps.publish(home, configs, context.run.run_id, strict=quality.strict, latest_quality=True)
    citykpi.say(context, f"release {published.release_id} written ({', '.join(c.city_id for c in configs)})")
    return dg.MaterializeResult(metadata={"release_id": published.release_id,
                                          "path": dg.MetadataValue.path(str(published.path)),
                                          "cities": [c.city_id for c in configs],
                                          "kpi_rows": published.manifest["row_counts"]["kpi_values"]})


def _stage_checks(stage: Stage, asset_key: dg.AssetKey, partitions_def: dg.PartitionsDefinition,
                  name: str) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(specs=check_specs(stage, asset_key, partitions_def), name=name, pool=WAREHOUSE_POOL,
                          description=f"Quality suites of stage {stage!r} for the partition's city.")
    def quality_checks(context: dg.AssetCheckExecutionContext, citykpi: CitykpiResource,
                       quality: QualityResource) -> Iterator[dg.AssetCheckResult]:
        cities = [citykpi.city(c) for c in sorted({key.partition("|")[0] for key in context.partition_keys})]
        yield from merged_check_results(check_cities(context, citykpi, quality, cities, stage), asset_key,
                                        strict=quality.strict)

    return quality_checks


ASSETS = [raw_snapshots, core_observations, kpi_values, scores, release]
CHECKS = [_stage_checks("core", CORE, CITY, "core_quality"), _stage_checks("kpis", KPI, CITY_YEAR, "kpis_quality")]
