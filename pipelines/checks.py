"""Dagster asset checks from the quality suites (warehouse/quality). Thin: each calls one plain step.

Per city, one `multi_asset_check` per stage, with one `AssetCheckSpec` per expectation:
- core/<city>/observations: the suites of what a load writes (city facts, observations and the
  core tables filled from the parsed sources), run right after the load. They also mark failing
  observations, so the KPI asset must wait for them: error checks are `blocking=True`, which makes
  Dagster run them before anything downstream.
- out/<city>/kpi_values: the kpi_values suite and the U4SSC plausibility rules (warnings).

Severity: an error check that fails is reported with severity ERROR only under `--strict`
(QualityResource.strict); Dagster then stops everything downstream and no release is written.
Without --strict it is reported as a failed check with severity WARN, the run goes on, and the
dependent KPIs carry `failed_check`. Check names are `<table>__<check>`.
"""


import sys
from collections.abc import Iterator, Sequence

import dagster as dg

from pipelines.resources import CitykpiResource
from sources.config import LoadedConfig
from warehouse.quality import CheckResult, QualitySettings
from warehouse.quality.run import Stage, stage_suites
from warehouse.quality.run import check_cities as check_cities_at_once
from warehouse.quality.sql import json_safe
from warehouse.quality.suites import all_checks


class QualityResource(dg.ConfigurableResource):
    """strict: blocking failures stop the run (no release); yoy_bound: the plausibility bound for
    year-over-year changes (None: $CITYKPI_QUALITY_YOY_BOUND, else 0.5)."""

    strict: bool = False
    yoy_bound: float | None = None

    def settings(self) -> QualitySettings:
        return QualitySettings.from_env(self.yoy_bound)


STAGE_DESCRIPTIONS: dict[Stage, str] = {
    "core": "source, core and observations quality suites",
    "kpis": "kpi_values quality suite and U4SSC plausibility rules",
    "scores": "kpi_scores quality suite",
}


def check_specs(stage: Stage, asset_key: dg.AssetKey,
                partitions_def: dg.PartitionsDefinition | None = None) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(name=check.key, asset=asset_key, blocking=check.blocking, partitions_def=partitions_def,
                              description=f"[{check.severity}] {check.table}: {check.description}",
                              metadata={"table": check.table, "severity": check.severity})
            for check in all_checks(stage_suites(stage))]


def to_asset_check_result(result: CheckResult, asset_key: dg.AssetKey, *, strict: bool) -> dg.AssetCheckResult:
    check = result.check
    enforce = check.blocking and strict
    if result.status == "skipped":
        description = f"skipped: {result.note or 'inputs missing'} (nothing to judge)"
    elif result.status == "failed" and not strict:
        description = ("failed (blocking check, enforced only with --strict): KPIs using the failing rows are "
                       "failed_check")
    else:
        description = result.status
    metadata: dict[str, dg.RawMetadataValue] = {
        "status": result.status, "table": check.table, "severity": check.severity, "blocking": check.blocking,
        "failing_count": result.failing if result.failing is not None else -1,
        "evaluated_count": result.evaluated,
        # Samples hold timestamps and decimals from the tables: JSON-safe first (Dagster refuses datetimes).
        "sample_failing_rows": dg.MetadataValue.json(json_safe(result.sample)),
    }
    if result.expectation is not None:
        metadata["gx_result"] = dg.MetadataValue.json(json_safe(result.expectation))
    return dg.AssetCheckResult(
        asset_key=asset_key, check_name=check.key, passed=result.status in ("passed", "skipped"),
        severity=dg.AssetCheckSeverity.ERROR if enforce else dg.AssetCheckSeverity.WARN,
        description=description, metadata=metadata)


def _stage_checks(loaded: LoadedConfig, stage: Stage, asset_key: dg.AssetKey) -> dg.AssetChecksDefinition:
    city = asset_key.path[1]

    @dg.multi_asset_check(specs=check_specs(stage, asset_key), name=f"{city}_{stage}_quality",
                          description=f"{STAGE_DESCRIPTIONS[stage]} of {loaded.config.city.name}")
    def quality_checks(context: dg.AssetCheckExecutionContext, citykpi: CitykpiResource,
                       quality: QualityResource) -> Iterator[dg.AssetCheckResult]:
        yield from run_city_checks(context, citykpi, quality, loaded, stage, asset_key)

    return quality_checks


def check_cities(context: dg.AssetCheckExecutionContext, citykpi: CitykpiResource, quality: QualityResource,
                 loaded: Sequence[LoadedConfig], stage: Stage) -> dict[str, list[CheckResult]]:
    """Run one stage's suites for all the cities at once (one GX validation per table, one transaction;
    stored in the warehouse) and log each city's counts."""
    by_city = check_cities_at_once(citykpi.resolved_home(), loaded, context.run.run_id, stage, quality.settings())
    for city in loaded:
        results = by_city[city.city_id]
        counts = {s: sum(1 for r in results if r.status == s) for s in ("passed", "failed", "warned", "skipped")}
        message = f"{city.city_id}: quality {stage}: " + ", ".join(f"{n} {s}" for s, n in counts.items())
        context.log.info(message)
        if citykpi.progress:
            print(f"  {message}", file=sys.stderr, flush=True)
    return by_city


def run_city_checks(context: dg.AssetCheckExecutionContext, citykpi: CitykpiResource, quality: QualityResource,
                    loaded: LoadedConfig, stage: Stage, asset_key: dg.AssetKey) -> Iterator[dg.AssetCheckResult]:
    """Run one stage's suites for a city and turn each result into an AssetCheckResult."""
    for result in check_cities(context, citykpi, quality, [loaded], stage)[loaded.city_id]:
        yield to_asset_check_result(result, asset_key, strict=quality.strict)


def merged_check_results(by_city: dict[str, list[CheckResult]], asset_key: dg.AssetKey, *,
                         strict: bool) -> Iterator[dg.AssetCheckResult]:
    """One AssetCheckResult per check for a run over several cities (a single-run backfill): it
    passes when it passed for every city; the metadata gives each city's status and failing count."""
    if len(by_city) == 1:
        for result in next(iter(by_city.values())):
            yield to_asset_check_result(result, asset_key, strict=strict)
        return
    per_check: dict[str, dict[str, CheckResult]] = {}
    for city_id, results in by_city.items():
        for result in results:
            per_check.setdefault(result.check.key, {})[city_id] = result
    for key, cities in per_check.items():
        check = next(iter(cities.values())).check
        passed = all(r.status in ("passed", "skipped") for r in cities.values())
        enforce = check.blocking and strict and not passed
        failing = sum(r.failing or 0 for r in cities.values())
        yield dg.AssetCheckResult(
            asset_key=asset_key, check_name=key, passed=passed,
            severity=dg.AssetCheckSeverity.ERROR if enforce else dg.AssetCheckSeverity.WARN,
            description=("passed" if passed else "did not pass for " + ", ".join(
                c for c, r in cities.items() if r.status not in ("passed", "skipped"))),
            metadata={"failing_count": failing, "table": check.table, "severity": check.severity,
                      "cities": dg.MetadataValue.json({c: {"status": r.status, "failing_count": r.failing,
                                                           "sample_failing_rows": json_safe(r.sample)}
                                                       for c, r in cities.items()})})


def build_checks(configs: Sequence[LoadedConfig], observations_keys: Sequence[dg.AssetKey],
                 kpi_keys: Sequence[dg.AssetKey]) -> list[dg.AssetChecksDefinition]:
    out = []
    for loaded, core_key, kpi_key in zip(configs, observations_keys, kpi_keys, strict=True):
        out += [_stage_checks(loaded, "core", core_key), _stage_checks(loaded, "kpis", kpi_key)]
    return out
