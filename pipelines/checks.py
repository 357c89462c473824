"""Dagster asset checks from the quality suites (quality). Thin: each calls one plain step.

The one asset-check builder (pipelines/city_assets.py `CHECKS`, for `citykpi run` and the deployment):
one `multi_asset_check` per stage, with one `AssetCheckSpec` per expectation; a run hands all its
cities to one stage function (`steps.check_cities`) and reports one result per check (merged over
the cities, each city's status in the metadata):
- core/observations: the suites of what a load writes (city facts, observations and the
  core tables filled from the parsed sources), run right after the load. They also mark failing
  observations, so the KPI asset must wait for them: error checks are `blocking=True`, which makes
  Dagster run them before anything downstream.
- out/kpi_values: the kpi_values suite and the U4SSC plausibility rules (warnings).

Severity: an error check that fails is reported with severity ERROR only under `--strict`
(QualityResource.strict); Dagster then stops everything downstream and no release is written.
Without --strict it is reported as a failed check with severity WARN, the run goes on, and the
dependent KPIs carry `failed_check`. Check names are `<table>__<check>`.
"""


from collections.abc import Iterator, Sequence

import dagster as dg

from pipelines import steps
from pipelines.progress import cities_text, summed
from pipelines.resources import CitykpiResource
from quality import CheckResult, QualitySettings
from quality.run import Stage, stage_suites
from quality.sql import json_safe
from quality.suites import all_checks
from sources.config import LoadedConfig


class QualityResource(dg.ConfigurableResource):
    """strict: blocking failures stop the run (no release); yoy_bound: the plausibility bound for
    year-over-year changes (None: $CITYKPI_QUALITY_YOY_BOUND, else 0.5)."""

    strict: bool = False
    yoy_bound: float | None = None

    def settings(self) -> QualitySettings:
        return QualitySettings.from_env(self.yoy_bound)


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


def run_checks(context: dg.AssetCheckExecutionContext, citykpi: CitykpiResource, quality: QualityResource,
               loaded: Sequence[LoadedConfig], stage: Stage) -> dict[str, list[CheckResult]]:
    """Run one stage's suites for every city of the run (stored in the warehouse) and log the counts."""
    by_city = steps.check_cities(citykpi.resolved_home(), loaded, citykpi.stage_run_id(context), stage,
                                 quality.settings())
    lines = citykpi.lines(context, len(by_city))
    statuses = ("passed", "failed", "warned", "skipped")
    per_city = {city_id: {s: sum(1 for r in results if r.status == s) for s in statuses}
                for city_id, results in by_city.items()}
    for city_id, counts in per_city.items():
        lines.city(f"{city_id}: quality {stage}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
        if counts["failed"] and not lines.per_city:  # city by city, its line says it
            lines.notice(city_id, f"quality {stage}: failed checks (see the summary at the end)", ": ")
    totals = summed(per_city.values())
    lines.total(f"quality {stage}: {cities_text(len(by_city))}, " + ", ".join(f"{n:,} {s}" for s, n in totals.items()))
    lines.close()
    return by_city


def merged_check_results(by_city: dict[str, list[CheckResult]], asset_key: dg.AssetKey, *,
                         strict: bool) -> Iterator[dg.AssetCheckResult]:
    """One AssetCheckResult per check for a run over several cities (a single-run backfill): it
    passes when it passed for every city; the metadata names the cities where it did not."""
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
            # Only the cities that did not pass are listed: a run over 1,000 cities keeps small events
            # (every city's result is in quality_results).
            metadata={"failing_count": failing, "table": check.table, "severity": check.severity,
                      "cities_checked": len(cities),
                      "cities": dg.MetadataValue.json({c: {"status": r.status, "failing_count": r.failing,
                                                           "sample_failing_rows": json_safe(r.sample)}
                                                       for c, r in cities.items()
                                                       if r.status not in ("passed", "skipped")})})
