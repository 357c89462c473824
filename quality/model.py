"""What a quality check is, what measuring it yields, and what its verdict is.

A check is declared once (in `suites.py` / `plausibility.py`) and measured in DuckDB; Great
Expectations then asserts the measured failing count (`gx.py`). Three shapes of measurement:

- `RowCheck`: a predicate on single rows. All row checks of a table are answered by one scan
  (`count(*) FILTER (WHERE ...)` plus a bounded sample per check).
- `QueryCheck`: a query returning the failing units (duplicate keys, a numerator above its
  denominator, a missing year, a plausibility rule broken in a year). Used where a rule relates
  rows to each other; these run on small tables only.
- `ComputedCheck`: measured by a function (the schema comparison, the readings scan, config facts).

And one shape that DuckDB does not measure at all:

- `ExpectationCheck`: native GX expectations (`expect_column_values_to_be_between`, `..._in_set`,
  `expect_compound_columns_to_be_unique`, ...) validated by GX on a pandas frame of the table's rows
  for every city of the run at once; GX's unexpected rows give each city's failing count, sample and
  the rows to mark (gx.py). Used on the city-sized tables (observations, kpi_values, kpi_scores).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb

Severity = Literal["error", "warning"]
Status = Literal["passed", "failed", "warned", "skipped"]
SAMPLE_SIZE = 5


@dataclass(frozen=True)
class Check:
    table: str
    name: str
    severity: Severity
    description: str

    @property
    def key(self) -> str:
        """Unique name across tables: the Dagster check name and the GX metric column."""
        return f"{self.table}__{self.name}"

    @property
    def blocking(self) -> bool:
        return self.severity == "error"


@dataclass(frozen=True)
class RowCheck(Check):
    """Fails every row where `fail_when` is true (NULL counts as passing: `not_null` covers NULLs)."""

    fail_when: str = "false"
    sample_columns: tuple[str, ...] = ()
    detail: str | None = None  # SQL text expression describing one failing row (shown in KPI reasons)


@dataclass(frozen=True)
class QueryCheck(Check):
    """`failing_sql` returns the failing units; it may use $city and $years.

    `count_sql` aggregates them into the failing count (default: one per row). `evaluated_sql`
    (optional) counts the units the rule could be evaluated on: 0 means skipped (inputs missing).
    `flag_sql`, for blocking checks on tables whose rows carry consequences, returns the `rowid`s of
    the rows to mark, with an optional `detail` column.
    """

    failing_sql: str = ""
    count_sql: str = "count(*)"
    evaluated_sql: str | None = None
    flag_sql: str | None = None


@dataclass(frozen=True)
class ComputedCheck(Check):
    """Measured by a function of the connection and the context (see `Measurement`), or by one of
    the connection and all the cities' contexts (`measure_many`)."""

    measure: Callable[[duckdb.DuckDBPyConnection, SuiteContext], Measurement] | None = field(
        default=None, compare=False, repr=False)
    # The same check for many cities in one pass (a query for all, or a result that does not depend on
    # the city): used instead of `measure` when set; returns a Measurement per city id.
    measure_many: Callable[[duckdb.DuckDBPyConnection, Sequence[SuiteContext]], dict[str, Measurement]] | None = (
        field(default=None, compare=False, repr=False))


@dataclass(frozen=True)
class Expect:
    """One GX expectation by GX's class name and arguments (built in gx.py, which imports GX lazily).

    `where` is GX's row_condition as (column, op, value) terms joined by AND; op is "==" or "in".
    Sequences are tuples so that checks stay hashable.
    """

    type: str                                     # e.g. "ExpectColumnValuesToBeBetween"
    kwargs: tuple[tuple[str, Any], ...]
    where: tuple[tuple[str, str, Any], ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """The frame columns the expectation reads."""
        args = dict(self.kwargs)
        found = [args[k] for k in ("column", "column_A", "column_B") if k in args]
        found += list(args.get("column_list", ()))
        return tuple(dict.fromkeys([*found, *(c for c, _, _ in self.where)]))


@dataclass(frozen=True)
class ExpectationCheck(Check):
    """Native GX expectations on the table's rows; a row fails the check when it fails any of them.

    `detail` describes a failing row in mark reasons and samples: a column name ("<column> <value>"),
    or a `str.format` template over the row's columns ("negative value {value:g}")."""

    expectations: tuple[Expect, ...] = ()
    detail: str | None = None


@dataclass(frozen=True)
class QualitySettings:
    yoy_bound: float = 0.5      # year-over-year relative change above which a KPI value is implausible
    sample_size: int = SAMPLE_SIZE
    row_drop: float = 0.5       # share of a source's rows it may lose between two checks (sources.rows_present)

    @classmethod
    def from_env(cls, yoy_bound: float | None = None) -> QualitySettings:
        """`yoy_bound` if given, else $CITYKPI_QUALITY_YOY_BOUND, else 0.5 (50 %); `row_drop` from
        $CITYKPI_QUALITY_ROW_DROP (a share in [0, 1]), else 0.5."""
        if yoy_bound is None:
            text = os.environ.get("CITYKPI_QUALITY_YOY_BOUND")
            yoy_bound = float(text) if text else cls.yoy_bound
        text = os.environ.get("CITYKPI_QUALITY_ROW_DROP")
        row_drop = float(text) if text else cls.row_drop
        if not 0 <= row_drop <= 1:
            raise ValueError(f"CITYKPI_QUALITY_ROW_DROP must be a share between 0 and 1, got {text!r}")
        return cls(yoy_bound=yoy_bound, row_drop=row_drop)


@dataclass(frozen=True)
class SuiteContext:
    """Everything a suite needs besides the warehouse: the city and its reporting years."""

    city_id: str
    country: str
    reporting_years: tuple[int, ...]
    settings: QualitySettings = QualitySettings()
    # The share of a year's hours (days for daily samplers) an annual mean needs: the city config's
    # air_quality.min_coverage_pct, the same rule warehouse/derive.py applies (AirRules).
    min_coverage: float = 0.75


@dataclass
class Measurement:
    """What DuckDB found: `failing` is None when the check could not be evaluated (skipped)."""

    check: Check
    failing: int | None
    evaluated: int
    sample: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None
    # Observation keys (year, variable, data_point, area_type, area_id) whose values were derived from
    # failing rows of another table: the readings scan names the station annual means to mark.
    affected: list[dict[str, Any]] = field(default_factory=list)
    # ExpectationCheck: warehouse rowids of the failing rows -> a short detail (what the marks name).
    rows: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TableSuite:
    table: str
    checks: tuple[Check, ...]
    # Measures the suite's checks that are neither row, query nor computed checks, all in one pass per
    # city, for the cities given (core_readings: see readings.py); each city's Measurements by city id.
    scan: Callable[[duckdb.DuckDBPyConnection, Sequence[SuiteContext], Sequence[Check]],
                   dict[str, list[Measurement]]] | None = field(default=None, compare=False, repr=False)


@dataclass
class CheckResult:
    """The verdict on one check, as stored in `quality_results` and reported to Dagster."""

    check: Check
    status: Status
    failing: int | None
    evaluated: int
    sample: list[dict[str, Any]]
    expectation: dict[str, Any] | None = None   # GX ExpectationValidationResult.to_json_dict()
    note: str | None = None
    rows: dict[int, str] = field(default_factory=dict)  # ExpectationCheck: failing rowids -> detail

    @property
    def blocking_failure(self) -> bool:
        return self.status == "failed" and self.check.blocking

    def summary(self) -> str:
        if self.status == "skipped":
            return f"{self.check.key}: skipped ({self.note or 'not evaluable'})"
        return f"{self.check.key}: {self.status} ({self.failing} failing of {self.evaluated})"
