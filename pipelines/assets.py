"""Dagster assets built from city configs. Thin: each calls one plain step in `pipelines.steps`.

Keys: raw/<city>/<source> (landing-zone snapshot), core/<city>/observations (canonical and
derived observations), out/<city>/kpi_values, out/<city>/scores (U4SSC scores, roll-ups and progress
against the targets in force), out/release (one release for all cities).
Asset checks (pipelines/checks.py): the quality suites on core/<city>/observations and
out/<city>/kpi_values, named <table>__<check>.
"""


from collections.abc import Sequence

import dagster as dg

from pipelines import steps
from pipelines.checks import QualityResource, build_checks
from pipelines.load_messages import load_messages
from pipelines.resources import CitykpiResource
from sources.config import LoadedConfig, SourceConfig
from sources.fetch import current_snapshot
from sources.kinds import KINDS
from warehouse.quality.sql import json_safe


def key_part(text: str) -> str:
    """Dagster key parts allow letters, digits and underscores."""
    return text.replace("-", "_")


def _raw_asset(loaded: LoadedConfig, source: SourceConfig) -> dg.AssetsDefinition:
    city = key_part(loaded.city_id)

    @dg.asset(key=["raw", city, key_part(source.id)], group_name="raw", kinds={source.resolved_format},
              description=f"Landing-zone snapshot of {source.id!r} ({KINDS[source.kind].DESCRIPTION}). "
                          f"{source.description}".strip(),
              metadata={"location": source.location, "target": source.target, "city_id": loaded.city_id})
    def raw(context: dg.AssetExecutionContext, citykpi: CitykpiResource) -> dg.MaterializeResult:
        snapshot = steps.fetch_one(citykpi.resolved_home(), loaded, source.id, offline=citykpi.offline)
        citykpi.say(context, f"{loaded.city_id}/{source.id}: snapshot {snapshot.snapshot_id}"
                             f" ({'new' if snapshot.new else 'unchanged'}, {snapshot.size_bytes:,} bytes)")
        return dg.MaterializeResult(metadata={
            "snapshot_id": snapshot.snapshot_id, "content_sha256": snapshot.content_sha256,
            "size_bytes": snapshot.size_bytes, "new_snapshot": snapshot.new, "path": snapshot.relative_path})

    return raw


def _observations_asset(loaded: LoadedConfig, raw_keys: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    city = key_part(loaded.city_id)

    @dg.asset(key=["core", city, "observations"], deps=raw_keys, group_name="core", kinds={"duckdb"},
              description=f"Canonical and derived observations of {loaded.config.city.name}.")
    def observations(context: dg.AssetExecutionContext, citykpi: CitykpiResource) -> dg.MaterializeResult:
        home = citykpi.resolved_home()
        snapshots = []
        for source in loaded.config.sources:
            snapshot = current_snapshot(home.raw, home.root, loaded.city_id, source.id)
            if snapshot is None:
                raise dg.Failure(f"no snapshot of source {source.id!r}; materialise its raw asset first")
            snapshots.append(snapshot)
        report = steps.load_city(home, loaded, snapshots)
        derived = sum(v for v in report["derived"].values() if isinstance(v, int))
        citykpi.say(context, f"{loaded.city_id}: {report['observations']:,} observations "
                             + (f"({derived:,} derived)" if report["changed"] else "(unchanged since the last load)"))
        for line in load_messages(report):
            citykpi.say(context, f"{loaded.city_id}/{line}")
        return dg.MaterializeResult(metadata={"observations": report["observations"],
                                              "load_report": dg.MetadataValue.json(json_safe(report))})

    return observations


def _kpi_asset(loaded: LoadedConfig, observations_key: dg.AssetKey) -> dg.AssetsDefinition:
    city = key_part(loaded.city_id)

    @dg.asset(key=["out", city, "kpi_values"], deps=[observations_key], group_name="out", kinds={"duckdb"},
              description=f"U4SSC and SDG 11 indicator values of {loaded.config.city.name}, with provenance.")
    def kpi_values(context: dg.AssetExecutionContext, citykpi: CitykpiResource) -> dg.MaterializeResult:
        home = citykpi.resolved_home()
        kept_from = steps.up_to_date(home, loaded, "kpi_values")
        counts = steps.kpi_status_counts(home, loaded) if kept_from else steps.compute_city(
            home, loaded, context.run.run_id)
        citykpi.say(context, f"{loaded.city_id}: indicator rows " + ", ".join(f"{k} {v}" for k, v in counts.items())
                    + (f" (inputs unchanged: kept from run {kept_from})" if kept_from else ""))
        return dg.MaterializeResult(metadata={**{f"rows_{status}": n for status, n in counts.items()},
                                              "kept_from_run": kept_from or ""})

    return kpi_values


def _scores_asset(loaded: LoadedConfig, kpi_key: dg.AssetKey) -> dg.AssetsDefinition:
    city = key_part(loaded.city_id)

    @dg.asset(key=["out", city, "scores"], deps=[kpi_key], group_name="out", kinds={"duckdb"},
              description=f"U4SSC scores and roll-ups against the targets in force, and progress towards them, "
                          f"of {loaded.config.city.name} (kpi_scores, kpi_rollups, kpi_progress). Targets are "
                          "public references, not the official U4SSC benchmarks.")
    def scores(context: dg.AssetExecutionContext, citykpi: CitykpiResource) -> dg.MaterializeResult:
        home = citykpi.resolved_home()
        kept_from = steps.up_to_date(home, loaded, "scores")
        if kept_from:
            citykpi.say(context, f"{loaded.city_id}: scores kept (inputs unchanged since run {kept_from})")
            return dg.MaterializeResult(metadata={"kept_from_run": kept_from})
        counts = steps.benchmark_city(home, loaded, context.run.run_id)
        citykpi.say(context, f"{loaded.city_id}: scores " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return dg.MaterializeResult(metadata=dict(counts))

    return scores


def _release_asset(configs: Sequence[LoadedConfig], upstream: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.asset(key=["out", "release"], deps=upstream, group_name="out", kinds={"parquet", "csv"},
              description="A new immutable release of every city's indicator values under <home>/releases/.")
    def release(context: dg.AssetExecutionContext, citykpi: CitykpiResource,
                quality: QualityResource) -> dg.MaterializeResult:
        published = steps.publish(citykpi.resolved_home(), list(configs), context.run.run_id, strict=quality.strict,
                                  skip_unchanged=citykpi.skip_unchanged_release)
        if published.manifest.get("run_id") == context.run.run_id:
            citykpi.say(context, f"release {published.release_id} written")
        else:  # same inputs, code, config and data as the latest release: nothing written
            citykpi.say(context, f"release {published.release_id} kept: nothing changed since it")
        return dg.MaterializeResult(metadata={"release_id": published.release_id,
                                              "path": dg.MetadataValue.path(str(published.path)),
                                              "kpi_rows": published.manifest["row_counts"]["kpi_values"]})

    return release


def build_assets(configs: Sequence[LoadedConfig]) -> list[dg.AssetsDefinition]:
    assets: list[dg.AssetsDefinition] = []
    score_keys = []
    for loaded in configs:
        raws = [_raw_asset(loaded, source) for source in loaded.config.sources]
        observations = _observations_asset(loaded, [a.key for a in raws])
        kpis = _kpi_asset(loaded, observations.key)
        scores = _scores_asset(loaded, kpis.key)
        assets += [*raws, observations, kpis, scores]
        score_keys.append(scores.key)
    # The scores depend on the KPI values, so the release waits for both.
    assets.append(_release_asset(configs, score_keys))
    return assets


def build_asset_checks(configs: Sequence[LoadedConfig]) -> list[dg.AssetChecksDefinition]:
    """The quality suites of every city as asset checks (keys as in build_assets)."""
    cities = [key_part(loaded.city_id) for loaded in configs]
    return build_checks(configs, [dg.AssetKey(["core", c, "observations"]) for c in cities],
                        [dg.AssetKey(["out", c, "kpi_values"]) for c in cities])


def build_definitions(configs: Sequence[LoadedConfig], resource: CitykpiResource | None = None,
                      quality: QualityResource | None = None) -> dg.Definitions:
    assets = build_assets(configs)
    everything = dg.define_asset_job("citykpi_all", selection=dg.AssetSelection.all(),
                                     description="Fetch, load, check, compute and publish every configured city.")
    return dg.Definitions(assets=assets, asset_checks=build_asset_checks(configs), jobs=[everything],
                          resources={"citykpi": resource or CitykpiResource(), "quality": quality or QualityResource()})


