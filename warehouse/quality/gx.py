"""Great Expectations as the assertion layer over metrics measured in DuckDB.

GX cannot run the checks on the warehouse itself here: its SQL datasource fails on DuckDB (every
expectation errors with "list index out of range" through duckdb_engine), and copying a big table
into pandas for GX costs about 20 times one DuckDB query (see benchmarks/quality.py). So DuckDB
measures (measure.py) and GX judges: each check becomes one `ExpectColumnMaxToBeBetween` on a
one-row metrics frame whose column is the check's failing count, with the check's severity
(critical/warning) and description in the expectation. Every verdict is a real GX
`ExpectationValidationResult`, stored as JSON beside the result and shown in Dagster.

`great_expectations` takes ~2 s to import, so it is imported on first use only: nothing on the
`citykpi --help` path imports this module's dependencies.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from functools import cache
from typing import Any

from warehouse.quality.model import CheckResult, Measurement, Status


@cache
def _batch_definition() -> Any:
    """An ephemeral GX context with one pandas dataframe asset (built once per process, ~10 ms after
    the import). Importing it in a background thread during fetch and load was tried: no gain, the
    load is Python-bound and the import holds the GIL."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("citykpi_quality_metrics")
    asset = source.add_dataframe_asset("metrics")
    return asset.add_batch_definition_whole_dataframe("one_row_of_failing_counts")


def expectation_for(measurement: Measurement) -> Any:
    import great_expectations.expectations as gxe
    from great_expectations.expectations.metadata_types import FailureSeverity

    check = measurement.check
    return gxe.ExpectColumnMaxToBeBetween(
        column=check.key, min_value=0, max_value=0,
        severity=FailureSeverity.CRITICAL if check.blocking else FailureSeverity.WARNING,
        meta={"table": check.table, "check": check.name, "severity": check.severity,
              "description": check.description, "evaluated": measurement.evaluated},
    )


def validate(measurements: Sequence[Measurement], suite_name: str) -> list[CheckResult]:
    """One GX validation for all evaluated measurements; skipped ones get no expectation."""
    evaluated = [m for m in measurements if m.failing is not None]
    verdicts: dict[str, Any] = {}
    if evaluated:
        import great_expectations as gx
        import pandas as pd

        batch_definition = _batch_definition()  # creates the (active) context the suite needs
        frame = pd.DataFrame([{m.check.key: int(m.failing or 0) for m in evaluated}])
        # Passing the list skips add_expectation's duplicate search (quadratic in the suite size).
        suite = gx.ExpectationSuite(name=suite_name, expectations=[expectation_for(m) for m in evaluated])
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        report = batch.validate(suite)
        verdicts = {r.expectation_config.kwargs["column"]: r for r in report.results}
    results = []
    for m in measurements:
        if m.failing is None:
            results.append(CheckResult(m.check, "skipped", None, m.evaluated, [], None, m.note))
            continue
        verdict = verdicts[m.check.key]
        raised = bool(verdict.exception_info and verdict.exception_info.get("raised_exception"))
        passed = verdict.success and not raised
        status: Status = "passed" if passed else "failed" if m.check.blocking else "warned"
        note = m.note
        if raised:
            note = f"GX raised: {verdict.exception_info.get('exception_message')}"
        results.append(CheckResult(m.check, status, m.failing, m.evaluated, m.sample, verdict.to_json_dict(), note))
    return results
