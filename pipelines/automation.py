"""Jobs, schedules and sensors of the production deployment. Wiring only: what to run, and when.

    city_configs sensor     new / changed / removed city configs -> city partitions added or deleted,
                            and an ingest run (fetch + load) for each new or changed city
    fetch_<every> schedules daily / weekly / monthly: fetch the sources whose cadence puts them on that
                            schedule (hourly feeds daily, annual statistics monthly), one run per city
    source_snapshots sensor a city whose CURRENT snapshots differ from what its observations were loaded
                            from -> a load run for that city only (an unchanged source triggers nothing)
    kpis_after_load sensor  each load that changed a city's observations (or followed a config change)
                            -> one compute run (kpi_values + scores) per reporting year of that city
    release_after_scores    new scores and nothing left running -> one release run
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import dagster as dg

from pipelines.cities import config_fingerprint, configured_cities
from pipelines.city_assets import CORE, FETCH_SCHEDULES, KPI, RAW, RELEASE, SCORES
from pipelines.partitions import CITY, city_year_key
from pipelines.steps import current_snapshot_map
from sources.config import LoadedConfig
from warehouse.home import Home

fetch_job = dg.define_asset_job("fetch_sources", selection=dg.AssetSelection.assets(RAW),
                                description="Fetch a city's sources into the landing zone.")
ingest_job = dg.define_asset_job("ingest_city", selection=dg.AssetSelection.assets(RAW, CORE),
                                 description="Fetch and load a city (new or changed config).")
load_job = dg.define_asset_job("load_city", selection=dg.AssetSelection.assets(CORE),
                               description="Load a city's CURRENT snapshots into the warehouse and check them.")
compute_job = dg.define_asset_job("compute_city_year", selection=dg.AssetSelection.assets(KPI, SCORES),
                                  description="KPI values, checks and scores of one city and year.")
release_job = dg.define_asset_job("publish_release", selection=dg.AssetSelection.assets(RELEASE),
                                  description="Publish a release of every computed city.")
JOBS = [fetch_job, ingest_job, load_job, compute_job, release_job]
CRON = {"daily": "0 2 * * *", "weekly": "0 3 * * 1", "monthly": "0 4 1 * *"}
IN_PROGRESS = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
               dg.DagsterRunStatus.STARTED]


def _home() -> Home:
    return Home.resolve()


def readable_configs(context: dg.SensorEvaluationContext | dg.ScheduleEvaluationContext) -> list[LoadedConfig]:
    """The city configs that load; a broken one is logged and left out so it cannot stop the others."""
    return configured_cities(_home(), check_files=False,
                             on_error=lambda path, exc: context.log.error(f"city config {path} skipped: {exc}"))


# ---- city partitions -------------------------------------------------------------------------


@dg.sensor(job=ingest_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Registers a city partition per city config, removes those whose config is gone, and "
                       "fetches and loads each new or changed city.")
def city_configs(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    configs = readable_configs(context)
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    fingerprints = {c.city_id: config_fingerprint(c) for c in configs}
    registered = set(context.instance.get_dynamic_partitions(CITY.name or "city"))
    added = sorted(set(fingerprints) - registered)
    removed = sorted(registered - set(fingerprints))
    runs = [dg.RunRequest(partition_key=city_id, run_key=f"config:{city_id}:{fingerprint[:16]}",
                          tags={"citykpi/reason": "new city" if city_id not in seen else "config changed"})
            for city_id, fingerprint in sorted(fingerprints.items()) if seen.get(city_id) != fingerprint]
    requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
    if added:
        requests.append(CITY.build_add_request(added))
    if removed:
        requests.append(CITY.build_delete_request(removed))
    return dg.SensorResult(run_requests=runs, dynamic_partitions_requests=requests, cursor=json.dumps(fingerprints))


# ---- fetching by cadence ------------------------------------------------------------------------


def _fetch_schedule(every: str) -> dg.ScheduleDefinition:
    @dg.schedule(name=f"fetch_{every}", cron_schedule=CRON[every], job=fetch_job,
                 default_status=dg.DefaultScheduleStatus.RUNNING,
                 description=f"Fetch the sources pulled {every} (by their cadence), one run per city.")
    def fetch_schedule(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest | dg.SkipReason]:
        registered = set(context.instance.get_dynamic_partitions(CITY.name or "city"))
        due = [c for c in readable_configs(context)
               if c.city_id in registered and any(s.fetch_every == every for s in c.config.sources)]
        if not due:
            yield dg.SkipReason(f"no registered city has sources fetched {every}")
            return
        tick = context.scheduled_execution_time.isoformat() if context.scheduled_execution_time else "manual"
        for loaded in due:
            yield dg.RunRequest(partition_key=loaded.city_id, run_key=f"fetch:{every}:{loaded.city_id}:{tick}",
                                run_config={"ops": {"raw__snapshots": {"config": {"every": every}}}})

    return fetch_schedule


SCHEDULES = [_fetch_schedule(every) for every in FETCH_SCHEDULES]


# ---- loading what changed -----------------------------------------------------------------------


def current_pointers(home: Home, loaded: LoadedConfig) -> dict[str, str] | None:
    """{source: content sha256} of the CURRENT snapshots, or None while a source was never fetched."""
    found = current_snapshot_map(home, loaded)
    if any(snapshot is None for snapshot in found.values()):
        return None
    return {source_id: snapshot.content_sha256 for source_id, snapshot in found.items() if snapshot is not None}


def _load_metadata(materialization: dg.AssetMaterialization | None, city_id: str) -> dict[str, Any]:
    """What core/observations recorded about one city's load (its `loaded` metadata), or {}."""
    loaded = materialization.metadata.get("loaded") if materialization is not None else None
    value: Any = loaded.value if loaded is not None else None
    return value.get(city_id, {}) if isinstance(value, dict) else {}


def loaded_pointers(instance: dg.DagsterInstance, city_id: str) -> dict[str, str] | None:
    """What the latest load of the city read ({source: content sha256}), from its materialization."""
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=CORE, asset_partitions=[city_id]),
                                              limit=1).records
    return _load_metadata(records[0].asset_materialization, city_id).get("snapshots") if records else None


def _in_progress(instance: dg.DagsterInstance, job_names: list[str], partition: str | None = None) -> bool:
    tags = {"dagster/partition": partition} if partition else None
    return any(instance.get_runs(dg.RunsFilter(job_name=name, statuses=IN_PROGRESS, tags=tags), limit=1)
               for name in job_names)


@dg.sensor(job=load_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Loads a city again when one of its sources has a new CURRENT snapshot; cities whose "
                       "sources did not change are left alone.")
def source_snapshots(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    home = _home()
    requested: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    registered = set(context.instance.get_dynamic_partitions(CITY.name or "city"))
    runs = []
    for loaded in readable_configs(context):
        city_id = loaded.city_id
        pointers = current_pointers(home, loaded) if city_id in registered else None
        if pointers is None:
            continue
        digest = hashlib.sha256(json.dumps(pointers, sort_keys=True).encode()).hexdigest()[:16]
        previous = loaded_pointers(context.instance, city_id)
        if pointers == previous or requested.get(city_id) == digest:
            continue
        if _in_progress(context.instance, [ingest_job.name, load_job.name], city_id):
            continue  # a load of this city is under way; look again next tick
        changed = sorted(s for s, sha in pointers.items() if (previous or {}).get(s) != sha)
        runs.append(dg.RunRequest(partition_key=city_id, run_key=f"snapshots:{city_id}:{digest}",
                                  tags={"citykpi/reason": "new snapshots: " + ", ".join(changed)[:200]}))
        requested[city_id] = digest
    return dg.SensorResult(run_requests=runs, cursor=json.dumps(requested))


# ---- computing and publishing -------------------------------------------------------------------


def _needs_kpis(instance: dg.DagsterInstance, record: Any, city_id: str) -> bool:
    """A load whose observations did not change needs no KPI run, unless the city's config changed
    (targets and reporting years live there, not in the observations)."""
    if _load_metadata(record.asset_materialization, city_id).get("observations_changed", True):
        return True
    run = instance.get_run_by_id(record.run_id)
    return run is not None and run.tags.get("citykpi/reason") in ("new city", "config changed")


@dg.sensor(job=compute_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="After each load of a city's observations, computes that city's KPI values and scores, "
                       "one run per reporting year.")
def kpis_after_load(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    after = int(context.cursor) if context.cursor else None
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=CORE, after_storage_id=after), limit=500, ascending=True).records
    configs = {c.city_id: c for c in readable_configs(context)}
    runs = []
    for record in records:
        city_id = record.partition_key
        if city_id is None or city_id not in configs or not _needs_kpis(context.instance, record, city_id):
            continue
        for year in configs[city_id].config.city.reporting_years:
            runs.append(dg.RunRequest(partition_key=city_year_key(city_id, year),
                                      run_key=f"kpis:{record.storage_id}:{year}"))
    cursor = str(records[-1].storage_id) if records else context.cursor
    return dg.SensorResult(run_requests=runs, cursor=cursor)


@dg.sensor(job=release_job, minimum_interval_seconds=120, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Publishes a release once new scores exist and no fetch, load or compute run is still going.")
def release_after_scores(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    latest = context.instance.fetch_materializations(SCORES, limit=1).records
    if not latest:
        return dg.SkipReason("no scores yet")
    storage_id = latest[0].storage_id
    if context.cursor and int(context.cursor) >= storage_id:
        return dg.SkipReason("no new scores since the last release request")
    if _in_progress(context.instance, [ingest_job.name, load_job.name, compute_job.name]):
        return dg.SkipReason("waiting for runs in progress")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"release:{storage_id}")], cursor=str(storage_id))


SENSORS = [city_configs, source_snapshots, kpis_after_load, release_after_scores]
