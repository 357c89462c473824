"""Run the suites of one stage for the cities of a run: measure in DuckDB, validate with GX (once per
table for all cities), store, mark.

Call inside a transaction (pipelines/steps.py:check_cities does): results, observation marks and
KPI marks are written together, so a failure leaves the previous quality state of the cities intact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

import duckdb

from quality.consequences import mark_kpi_values, mark_observations
from quality.measure import measure_suites, table_frame
from quality.model import CheckResult, ExpectationCheck, Measurement, SuiteContext, TableSuite
from quality.store import copy_results, read_results, store_cities_results
from quality.suites import KEYS, SAMPLE_COLUMNS, core_suites, kpi_suites, scores_suites

if TYPE_CHECKING:
    pass

Stage = Literal["core", "kpis", "scores"]
STAGES: tuple[Stage, ...] = ("core", "kpis", "scores")


def stage_suites(stage: Stage) -> list[TableSuite]:
    """core: what a load writes (parsed sources in the core tables, observations); kpis: kpi_values;
    scores: kpi_scores (after the benchmarking stage)."""
    return core_suites() if stage == "core" else kpi_suites() if stage == "kpis" else scores_suites()


def validate_stage(con: duckdb.DuckDBPyConnection, contexts: Sequence[SuiteContext], stage: Stage,
                   measured: dict[str, list[Measurement]] | None = None
                   ) -> tuple[dict[str, list[CheckResult]], dict[str, list[Measurement]]]:
    """Every check of the stage for every city: DuckDB measures once per check for all cities (unless
    `measured` holds those measurements already), GX validates per table once for all cities. Returns
    each city's results in the suites' order, and the DuckDB measurements."""
    from quality.gx import validate_counts, validate_tables

    suites = stage_suites(stage)
    if measured is None:
        measured = measure_suites(con, contexts, suites)
    city_ids = list(measured)
    results = validate_counts(measured, f"citykpi.{stage}")
    native = [c for s in suites for c in s.checks if isinstance(c, ExpectationCheck)]
    if native:
        frames = {}
        for table in dict.fromkeys(c.table for c in native):
            columns = [col for c in native if c.table == table for e in c.expectations for col in e.columns]
            frames[table] = table_frame(con, table, city_ids, [*KEYS[table], *SAMPLE_COLUMNS.get(table, ()),
                                                               *columns])
        sample_size = contexts[0].settings.sample_size if contexts else 5
        for city, found in validate_tables(native, frames, KEYS, city_ids, f"citykpi.{stage}", SAMPLE_COLUMNS,
                                           sample_size).items():
            results[city] += found
    order = {c.key: i for i, c in enumerate(c for s in suites for c in s.checks)}
    return {city: sorted(found, key=lambda r: order[r.check.key]) for city, found in results.items()}, measured


# Cities per validation: GX holds each checked table's rows of the batch in one frame (about 2,000
# observation rows a demo city), so a run of 1,000 cities validates in batches instead of all at once.
# DuckDB measures all the cities at once before: a check's statement reads its whole table whatever the
# number of cities it is asked for (1,000 cities: 26 s in one go against 63 s in batches of 100).
VALIDATION_BATCH = 100


def run_cities(con: duckdb.DuckDBPyConnection, contexts: Sequence[SuiteContext], run_id: str, stage: Stage, *,
               keep_unchanged: bool = False) -> dict[str, list[CheckResult]]:
    """Validate the stage for the cities (VALIDATION_BATCH at a time), then store and apply each city's results.

    With `keep_unchanged`, a city whose fingerprint for the stage (quality/state.py: its rows of the tables
    the checks read, its suite context, the code) equals the one stored after its last check keeps that
    check's results: they are copied to this run and its marks stay as they are. The fingerprints of the
    cities checked are stored either way. With several cities, the results returned carry no GX result
    (`expectation`) or failing row ids: those are stored, and 1,000 cities' of them held gigabytes."""
    from quality import state

    several = len(contexts) > 1  # each city's GX result (kilobytes a check) is kept in quality_results only
    kept = state.unchanged_since(con, stage, state.fingerprints(con, contexts, stage)) if keep_unchanged else {}
    fresh = [ctx for ctx in contexts if ctx.city_id not in kept]
    by_city: dict[str, list[CheckResult]] = {}
    measured_all = measure_suites(con, fresh, stage_suites(stage)) if fresh else {}
    for start in range(0, len(fresh), VALIDATION_BATCH):
        batch = fresh[start:start + VALIDATION_BATCH]
        found, measured = validate_stage(con, batch, stage, {ctx.city_id: measured_all.pop(ctx.city_id)
                                                              for ctx in batch})
        by_city.update(found)
        store_cities_results(con, run_id, {ctx.city_id: by_city[ctx.city_id] for ctx in batch})
        for ctx in batch:
            results = by_city[ctx.city_id]
            if stage == "core":
                affected = {m.check.key: m.affected for m in measured[ctx.city_id] if m.affected}
                mark_observations(con, ctx, results, affected)
            elif stage == "kpis":
                mark_kpi_values(con, ctx, results)
            if several:  # stored: callers of a run over many cities read only status, counts and samples
                by_city[ctx.city_id] = [replace(r, expectation=None, rows={}) for r in results]
    if kept:
        checks = [c for s in stage_suites(stage) for c in s.checks]
        copy_results(con, kept, run_id, checks)
        by_city.update(read_results(con, list(kept), run_id, checks, with_expectations=not several))
    state.record(con, stage, state.fingerprints(con, fresh, stage), run_id)
    return {ctx.city_id: by_city[ctx.city_id] for ctx in contexts}


def run_stage(con: duckdb.DuckDBPyConnection, ctx: SuiteContext, run_id: str, stage: Stage) -> list[CheckResult]:
    """One city's stage (a batch of one)."""
    return run_cities(con, [ctx], run_id, stage)[ctx.city_id]


def warm_up() -> None:
    """The one-off costs of the first quality stage in a process, paid once per run: import GX, build
    its context and run one tiny validation (GX's first validation compiles its metric registry), parse
    the indicator catalogue and the reference schema the suites are generated from. All are cached per
    process; `citykpi run` pays them once, and the benchmark reports them apart from the checks."""
    from quality import metadata as md
    from quality.gx import validate_counts
    from quality.model import ComputedCheck
    from quality.schema import reference_indexes, reference_schema

    check = ComputedCheck("city", "warm_up", "warning", "warm-up")
    validate_counts({"warm_up": [Measurement(check, 0, 1)]}, "citykpi.warm_up")
    md.indicator_facts()
    md.variable_data_points()
    md.share_rules()
    reference_schema()
    reference_indexes()
