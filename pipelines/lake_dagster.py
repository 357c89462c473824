"""Dagster wiring of the shared warehouse (docs/deployment.md, "Running it on a cluster").

Two assets over `pipelines/lake_run.py`:

- `lake/cities`, one partition per shard of the configured cities (`$CITYKPI_CITIES`; the number of
  shards from `$CITYKPI_LAKE_SHARDS`, default 4; keys `0-of-4`, ...): the shard's worker, running the
  stages in its own home (`<home>/lake-shards/<key>/`, so shards on one machine never wait for each
  other's DuckDB lock) and committing its cities to the lake; with `$CITYKPI_LAKE_RAW` its landing
  zone is shared through object storage.
- `lake/release`, after every shard: the release from the lake in `<home>/lake-publisher/`, copied to
  `$CITYKPI_LAKE_RELEASES` when set.

This is a code location of its own, not part of `pipelines/defs` (the one-warehouse deployment):
`dagster dev -m pipelines.lake_dagster`, or a code location of the Dagster Helm chart. With the K8s
executor (`dagster-k8s`, `k8s_job_executor`) or Celery each shard's step runs in its own pod or worker;
a backfill of every `lake/cities` partition then `lake/release` is a full run.
"""
# No `from __future__ import annotations`: Dagster reads the context parameter's annotation at definition.

import os

import dagster as dg

ENV_SHARDS = "CITYKPI_LAKE_SHARDS"
ENV_RELEASES = "CITYKPI_LAKE_RELEASES"   # where `lake/release` copies each release (s3://bucket/releases)
DEFAULT_SHARDS = 4


def shard_count() -> int:
    try:
        count = int(os.environ.get(ENV_SHARDS) or DEFAULT_SHARDS)
    except ValueError:
        count = DEFAULT_SHARDS
    return max(1, count)


def shard_keys(count: int | None = None) -> list[str]:
    count = count or shard_count()
    return [f"{index}-of-{count}" for index in range(count)]


def shard_spec(key: str) -> str:
    """`2-of-8` -> `2/8` (what pipelines.lake_run.shard takes)."""
    index, _, count = key.partition("-of-")
    return f"{index}/{count}"


SHARDS = dg.StaticPartitionsDefinition(shard_keys())


@dg.asset(key=["lake", "cities"], partitions_def=SHARDS, group_name="lake",
          description="A shard of the cities: the stages in the shard's own home, then a commit to the lake")
def lake_cities(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    from pipelines.cities import configured_cities
    from pipelines.lake_run import ENV_RAW, shard, work
    from warehouse.home import Home
    from warehouse.lake import open_lake

    home = Home.resolve()
    key = context.partition_key
    worker_home = Home(home.root / "lake-shards" / key).ensure()
    configs = shard(configured_cities(home), shard_spec(key))
    if not configs:
        return dg.MaterializeResult(metadata={"cities": 0})
    lake = open_lake(worker=os.environ.get("CITYKPI_LAKE_WORKER") or f"dagster-{context.run.run_id[:8]}-{key}")
    report = work(worker_home, configs, lake, raw=os.environ.get(ENV_RAW) or None, progress=context.log.info)
    commit = report.commit
    return dg.MaterializeResult(metadata={
        "cities": len(configs), "written": ", ".join(commit.written) or "-",
        "skipped": ", ".join(commit.skipped) or "-",
        "commits": commit.commits, "retries": commit.retries, "commit_seconds": round(commit.seconds, 2),
        "stage_seconds": round(report.stage_seconds, 2)})


@dg.asset(key=["lake", "release"], deps=[lake_cities], group_name="lake",
          description="The release of every configured city, read from the lake")
def lake_release(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    from pipelines.cities import configured_cities
    from pipelines.lake_run import publish_from_lake
    from warehouse.home import Home
    from warehouse.lake import open_lake

    home = Home.resolve()
    publisher = Home(home.root / "lake-publisher")
    release, uploaded = publish_from_lake(publisher, configured_cities(home), open_lake(), skip_unchanged=True,
                                          to=os.environ.get(ENV_RELEASES) or None, progress=context.log.info)
    return dg.MaterializeResult(metadata={"release_id": release.release_id, "path": str(release.path),
                                          "uploaded": uploaded or "-"})


lake_shards_job = dg.define_asset_job("lake_shards", selection=[lake_cities])
lake_release_job = dg.define_asset_job("lake_release", selection=[lake_release])

defs = dg.Definitions(assets=[lake_cities, lake_release], jobs=[lake_shards_job, lake_release_job])
