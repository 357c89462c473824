"""Run the suites of one stage for one city: measure in DuckDB, judge with GX, store, mark.

Call inside a transaction (pipelines/steps.py does): results, observation marks and KPI marks are
written together, so a failure leaves the previous quality state of the city intact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import duckdb

from warehouse.quality.consequences import mark_kpi_values, mark_observations
from warehouse.quality.measure import measure_suite
from warehouse.quality.model import CheckResult, Measurement, SuiteContext, TableSuite
from warehouse.quality.store import store_results
from warehouse.quality.suites import core_suites, kpi_suites

Stage = Literal["core", "kpis"]


def stage_suites(stage: Stage) -> list[TableSuite]:
    """core: what a load writes (parsed sources in the core tables, observations); kpis: kpi_values."""
    return core_suites() if stage == "core" else kpi_suites()


def measure_stage(con: duckdb.DuckDBPyConnection, ctx: SuiteContext, suites: Sequence[TableSuite]
                  ) -> list[Measurement]:
    return [m for suite in suites for m in measure_suite(con, ctx, suite)]


def run_stage(con: duckdb.DuckDBPyConnection, ctx: SuiteContext, run_id: str, stage: Stage) -> list[CheckResult]:
    """Measure every check of the stage, validate them through GX in one batch, store and apply."""
    from warehouse.quality.gx import validate

    measurements = measure_stage(con, ctx, stage_suites(stage))
    results = validate(measurements, f"citykpi.{stage}.{ctx.city_id}")
    store_results(con, ctx.city_id, run_id, results)
    if stage == "core":
        affected = {m.check.key: m.affected for m in measurements if m.affected}
        mark_observations(con, ctx, results, affected)
    else:
        mark_kpi_values(con, ctx, results)
    return results


def warm_up() -> None:
    """The one-off costs of the first quality stage in a process, paid once per run: import GX, build
    its context and run one tiny validation (GX's first validation compiles its metric registry), parse
    the indicator catalogue and the reference schema the suites are generated from. All are cached per
    process; `citykpi run` pays them once, and the benchmark reports them apart from the checks."""
    from warehouse.quality import metadata as md
    from warehouse.quality.gx import validate
    from warehouse.quality.model import ComputedCheck
    from warehouse.quality.schema import reference_indexes, reference_schema

    check = ComputedCheck("city", "warm_up", "warning", "warm-up")
    validate([Measurement(check, 0, 1)], "citykpi.warm_up")
    md.indicator_facts()
    md.variable_data_points()
    md.share_rules()
    reference_schema()
    reference_indexes()
