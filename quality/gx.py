"""Great Expectations validates the quality suites: once per table per stage, for every city of a run.

Two kinds of batch, both pandas frames in one ephemeral GX context:

- **the tables themselves** (observations, kpi_values, kpi_scores: a few thousand rows per city):
  every `ExpectationCheck` is a native GX expectation (`expect_column_values_to_be_between`,
  `expect_column_values_to_be_in_set`, `expect_compound_columns_to_be_unique`, ...) validated on one
  frame holding the table's rows of all the run's cities. With `result_format COMPLETE` and the key
  columns, the city and the warehouse `rowid` as `unexpected_index_column_names`, GX names every
  failing row; its city gives the per-city verdict, its rowid the row to mark.
- **failing counts measured in DuckDB** (schema, relational rules, the hourly readings' aggregates:
  measure.py, readings.py): one row per city, one column per check; each check is one
  `expect_column_values_to_be_between(<check>, 0, 0)`, and the cities GX lists as unexpected fail.

GX's SQL datasource cannot run on the warehouse (every expectation errors with "list index out of
range" through duckdb_engine), and the hourly readings do not fit pandas, hence the split.
Each city's part of a GX result is stored as an `ExpectationValidationResult` JSON (quality_results
`expectation`, Dagster metadata, the release's Data Docs: publish/data_docs.py).

`great_expectations` takes ~2 s to import, so it is imported on first use only: nothing on the
`citykpi --help` path imports this module's dependencies.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from quality.model import CheckResult, Expect, ExpectationCheck, Measurement, Status

SAMPLE_IN_RESULT = 20           # failing rows kept per city in the stored GX result
COUNTS_ASSET = "failing_counts_measured_in_duckdb"
ROWID = "_rowid"


@cache
def _context() -> Any:
    """An ephemeral GX context with one pandas datasource (built once per process, ~10 ms after the
    import). Importing it in a background thread during fetch and load was tried: no gain, the load is
    Python-bound and the import holds the GIL."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.data_sources.add_pandas("citykpi")
    return context


@cache
def _batch_definition(asset_name: str = COUNTS_ASSET) -> Any:
    source = _context().data_sources.get("citykpi")
    return source.add_dataframe_asset(asset_name).add_batch_definition_whole_dataframe("cities_of_the_run")


def _row_condition(where: Sequence[tuple[str, str, Any]]) -> Any:
    from great_expectations.expectations.row_conditions import Column

    condition: Any = None
    for column, op, value in where:
        term = Column(column).is_in(list(value)) if op == "in" else Column(column) == value
        condition = term if condition is None else condition & term
    return condition


def build_expectation(spec: Expect, meta: dict[str, Any], blocking: bool, description: str | None = None) -> Any:
    import great_expectations.expectations as gxe
    from great_expectations.expectations.metadata_types import FailureSeverity

    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in spec.kwargs}
    if spec.where:
        kwargs["row_condition"] = _row_condition(spec.where)
    if description:  # rendered by Data Docs instead of GX's template sentence
        kwargs["description"] = description
    return getattr(gxe, spec.type)(**kwargs, meta=meta,
                                   severity=FailureSeverity.CRITICAL if blocking else FailureSeverity.WARNING)


class _NotPlain(Exception):
    pass


def _plain_copy(value: Any) -> Any:
    """A copy of JSON made of dicts with text keys, lists, text, whole numbers, booleans, None and
    non-NaN floats: what GX's conversion returns for them. Anything else raises _NotPlain."""
    kind = type(value)
    if value is None or kind is str or kind is int or kind is bool or (kind is float and not math.isnan(value)):
        return value
    if kind is list:
        return [_plain_copy(item) for item in value]
    if kind is dict and all(type(key) is str for key in value):
        return {key: _plain_copy(item) for key, item in value.items()}
    raise _NotPlain


def _json(value: Any) -> Any:
    """`value` as JSON values, as GX converts them. Plain JSON (nearly every result) is copied here: GX's
    generic conversion of 91,000 results was a tenth of the core checks of 1,000 cities."""
    try:
        return _plain_copy(value)
    except _NotPlain:
        from great_expectations.util import convert_to_json_serializable

        return convert_to_json_serializable(value)


def _validate(asset: str, frame: Any, expectations: list[Any], suite_name: str, index_columns: list[str]) -> Any:
    import great_expectations as gx

    batch = _batch_definition(asset).get_batch(batch_parameters={"dataframe": frame})
    # Passing the list skips add_expectation's duplicate search (quadratic in the suite size).
    suite = gx.ExpectationSuite(name=suite_name, expectations=expectations)
    return batch.validate(suite, result_format={"result_format": "COMPLETE",
                                                "unexpected_index_column_names": index_columns})


def _raised(verdict: Any) -> str | None:
    info = verdict.exception_info or {}
    return str(info.get("exception_message")) if info.get("raised_exception") else None


def _status(failing: int, blocking: bool, raised: str | None) -> Status:
    return "passed" if failing == 0 and raised is None else "failed" if blocking else "warned"


# ---- native expectations on the tables -------------------------------------------------------------


def _detail(spec: Expect, check: ExpectationCheck, entry: dict[str, Any]) -> str:
    if spec.type == "ExpectColumnValuesToNotBeNull":
        return f"NULL in {dict(spec.kwargs)['column']}"
    if spec.type == "ExpectCompoundColumnsToBeUnique":
        return "duplicate key"
    if check.detail and "{" in check.detail:
        try:
            return check.detail.format(**entry)
        except (KeyError, ValueError, TypeError):
            pass
    column = check.detail if check.detail and "{" not in check.detail else dict(spec.kwargs).get("column")
    value = entry.get(column) if column else None
    shown = f"{value:.6g}" if isinstance(value, float) else str(value)
    return f"{column} {shown}" if column else "failed"


def validate_tables(checks: Sequence[ExpectationCheck], frames: Mapping[str, Any], keys: Mapping[str, Sequence[str]],
                    city_ids: Sequence[str], suite_name: str, sample_columns: Mapping[str, Sequence[str]],
                    sample_size: int) -> dict[str, list[CheckResult]]:
    """One GX validation per table frame (all cities); each check's verdict split per city."""
    out: dict[str, list[CheckResult]] = {c: [] for c in city_ids}
    for table in dict.fromkeys(c.table for c in checks):
        table_checks = [c for c in checks if c.table == table]
        frame = frames[table]
        index_columns = list(dict.fromkeys(["city_id", *keys[table], ROWID]))
        expectations = [build_expectation(spec, {"check": c.key, "part": i, "table": table, "severity": c.severity,
                                                 "description": c.description}, c.blocking)
                        for c in table_checks for i, spec in enumerate(c.expectations)]
        report = _validate(table, frame, expectations, f"{suite_name}.{table}", index_columns)
        verdicts: dict[tuple[str, int], Any] = {
            (r.expectation_config.meta["check"], r.expectation_config.meta["part"]): r for r in report.results}
        rows_per_city = frame.groupby("city_id").size().to_dict() if len(frame) else {}
        by_rowid = frame.set_index(ROWID) if len(frame) else frame
        for check in table_checks:
            parts = [(spec, verdicts[(check.key, i)]) for i, spec in enumerate(check.expectations)]
            for city in city_ids:
                out[city].append(_city_result(check, parts, city, int(rows_per_city.get(city, 0)), by_rowid,
                                              sample_columns.get(table, ()), sample_size))
    return out


def _city_part(spec: Expect, verdict: Any, mine: list[dict[str, Any]], city: str, city_rows: int) -> dict[str, Any]:
    """The city's part of a GX result, shaped as GX's own COMPLETE result so that Data Docs render its
    failing rows: grouped by the checked column(s) (`unexpected_list`, `partial_unexpected_counts`),
    each with the keys of its rows (`unexpected_index_list` / `unexpected_index_column_names`)."""
    from collections import Counter

    args = dict(spec.kwargs)
    domain = [args["column"]] if "column" in args else list(args.get("column_list", ()))
    names = [c for c in (verdict.result or {}).get("unexpected_index_column_names") or [] if c not in domain]
    shown = mine[:SAMPLE_IN_RESULT]
    values = [e.get(domain[0]) if len(domain) == 1 else {c: e.get(c) for c in domain} for e in shown]
    counts = Counter(tuple(v.values()) if isinstance(v, dict) else v for v in values)
    return {
        "expectation_config": verdict.expectation_config.to_json_dict(),
        "success": not mine and not _raised(verdict),
        "exception_info": verdict.exception_info,
        "result": {"element_count": city_rows, "unexpected_count": len(mine),
                   "unexpected_percent": 100.0 * len(mine) / city_rows if city_rows else 0.0,
                   "missing_count": 0, "missing_percent": 0.0,
                   "unexpected_index_column_names": names, "unexpected_index_list": shown,
                   "unexpected_list": values, "partial_unexpected_list": values,
                   "partial_unexpected_index_list": shown,
                   "partial_unexpected_counts": [{"value": v, "count": n} for v, n in counts.most_common()]},
        "meta": {"city_id": city, "rows_shown": len(shown),
                 "batch": "one validation of the table's rows for every city of the run"},
    }


def _city_result(check: ExpectationCheck, parts: list[tuple[Expect, Any]], city: str, city_rows: int,
                 frame: Any, sample_columns: Sequence[str], sample_size: int) -> CheckResult:
    rows: dict[int, str] = {}
    stored, raised = [], None
    for spec, verdict in parts:
        raised = raised or _raised(verdict)
        result = verdict.result or {}
        mine = [e for e in result.get("unexpected_index_list") or [] if e.get("city_id") == city]
        for entry in mine:
            rows.setdefault(int(entry[ROWID]), _detail(spec, check, entry))
        stored.append(_city_part(spec, verdict, mine, city, city_rows))
    failing = len(rows)
    sample = []
    if rows and len(frame):
        columns = [c for c in sample_columns if c in frame.columns]
        picked = frame.loc[sorted(rows)[:sample_size], columns]
        for rowid, record in zip(picked.index, picked.to_dict("records"), strict=True):
            sample.append({**record, "detail": rows[int(rowid)]})
    expectation = stored[0] if len(stored) == 1 else {"results": stored, "success": all(s["success"] for s in stored)}
    return CheckResult(check, _status(failing, check.blocking, raised), failing, city_rows, _json(sample),
                       _json(expectation), f"GX raised: {raised}" if raised else None, rows)


# ---- failing counts measured in DuckDB ---------------------------------------------------------------


def validate_counts(measured: Mapping[str, Sequence[Measurement]], suite_name: str) -> dict[str, list[CheckResult]]:
    """One GX validation of the failing counts of every city (rows) and check (columns); a check that
    could not be evaluated for a city (skipped) is NaN there, and gets no verdict for that city."""
    import pandas as pd

    cities = list(measured)
    first: dict[str, Measurement] = {}
    values: dict[str, dict[str, float]] = {}
    for city, measurements in measured.items():
        for m in measurements:
            first.setdefault(m.check.key, m)
            if m.failing is not None:
                values.setdefault(m.check.key, {})[city] = float(m.failing)
    verdicts: dict[str, Any] = {}
    if values:
        frame = pd.DataFrame({"city_id": cities, **{key: [by_city.get(c, math.nan) for c in cities]
                                                     for key, by_city in values.items()}})
        expectations = [build_expectation(
            Expect("ExpectColumnValuesToBeBetween", (("column", key), ("max_value", 0), ("min_value", 0))),
            {"check": key, "table": first[key].check.table, "severity": first[key].check.severity,
             "description": first[key].check.description, "measured": "failing count, measured in DuckDB"},
            first[key].check.blocking, _count_description(first[key].check)) for key in values]
        report = _validate(COUNTS_ASSET, frame, expectations, suite_name, ["city_id"])
        verdicts = {r.expectation_config.kwargs["column"]: r for r in report.results}
    # Each check's expectation as JSON once, not once per city (shared: a city's result copies it to change it).
    configs = {key: _json(verdict.expectation_config.to_json_dict()) for key, verdict in verdicts.items()}
    out: dict[str, list[CheckResult]] = {}
    for city, measurements in measured.items():
        out[city] = [_count_result(m, verdicts.get(m.check.key), city, configs.get(m.check.key))
                     for m in measurements]
    return out


def validate(measurements: Sequence[Measurement], suite_name: str, city_id: str = "city") -> list[CheckResult]:
    """One city's DuckDB measurements judged by GX (a batch of one)."""
    return validate_counts({city_id: measurements}, suite_name)[city_id]


def _count_result(m: Measurement, verdict: Any, city: str, config: dict[str, Any] | None) -> CheckResult:
    """`config`: the verdict's expectation configuration as JSON (made once per check by validate_counts)."""
    if m.failing is None or verdict is None:
        return CheckResult(m.check, "skipped", None, m.evaluated, [], None, m.note)
    raised = _raised(verdict)
    listed = [e for e in (verdict.result or {}).get("unexpected_index_list") or [] if e.get("city_id") == city]
    failing = int(m.failing)
    if bool(listed) != (failing > 0) and raised is None:
        raise AssertionError(f"GX and the measurement disagree on {m.check.key} for {city}")
    assert config is not None  # validate_counts makes one for every verdict
    config = dict(config)
    if m.sample:  # the failing rows DuckDB sampled, in the sentence Data Docs show for the expectation
        config["description"] = (f"{config.get('description') or m.check.description}. Failing in {city} "
                                 f"(first {len(m.sample)} of {failing:,}): "
                                 + "; ".join(_sample_text(row) for row in m.sample))
    expectation = _json({"success": not listed and raised is None,
                         "exception_info": verdict.exception_info,
                         "result": {"element_count": 1, "unexpected_count": len(listed), "observed_value": failing,
                                    "unexpected_percent": 100.0 * len(listed), "missing_count": 0,
                                    "missing_percent": 0.0, "unexpected_index_column_names": ["city_id"],
                                    "partial_unexpected_index_list": listed,
                                    "partial_unexpected_list": [failing] * len(listed)},
                         "meta": {"city_id": city, "evaluated": m.evaluated}})
    note = f"GX raised: {raised}" if raised else m.note
    return CheckResult(m.check, _status(failing, m.check.blocking, raised), failing, m.evaluated, m.sample,
                       {"expectation_config": config, **expectation}, note)


def _count_description(check: Any) -> str:
    return f"{check.table}.{check.name}: {check.description} (failing count measured in DuckDB: expected 0)"


def _sample_text(row: Mapping[str, Any]) -> str:
    # GX fills $name placeholders in descriptions: a sample value must not read as one.
    return ", ".join(f"{k} {v}" for k, v in row.items() if v is not None).replace("$", "＄")
