"""Native GX expectations on the city-sized tables, generated from the same metadata as the suites.

observations, kpi_values and kpi_scores are a few thousand rows per city: GX validates them itself on
pandas frames (one frame per table for every city of the run, gx.py), with its own expectation types,
so the verdicts a data person reads, in quality_results, Dagster and the release's Data Docs, are
`expect_column_values_to_be_between(value, min_value=0)` and the like. Rules that relate rows to each
other (shares of a whole, sums, completeness against the catalogue), pair code lists (GX's
`expect_column_pair_values_to_be_in_set` costs ~4 s per 20,000 rows) and the schema stay measured
in DuckDB (measure.py), their failing counts judged by GX.

Everything here follows from the migrations (NOT NULL columns, keys), `canonical/variables.yaml` and
the indicator catalogue (`metadata.py`); nothing is written per column by hand.
"""

from __future__ import annotations

from typing import Any

from quality import metadata as md
from quality.model import Expect, ExpectationCheck, Severity
from quality.schema import required_columns

KPI_STATUSES = ("computed", "missing", "failed_check", "not_applicable")
SCORE_STATUSES = ("scored", "excluded")
SCORE_BANDS = ("<33", "33-66", "66-95", "95+")


def expect(type_: str, where: tuple[tuple[str, str, Any], ...] = (), **kwargs: Any) -> Expect:
    return Expect(type_, tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in kwargs.items())), where)


def not_null(table: str) -> ExpectationCheck:
    """One `expect_column_values_to_not_be_null` per NOT NULL column of the migrations."""
    required = required_columns(table)
    return ExpectationCheck(
        table, "not_null", "error", f"no NULL in the key and required columns ({', '.join(required)})",
        expectations=tuple(expect("ExpectColumnValuesToNotBeNull", column=c) for c in required))


def unique_key(table: str, key: tuple[str, ...]) -> ExpectationCheck:
    # pandas (and so GX) treats NULLs as equal here, like GROUP BY: the unique indexes of the migrations
    # let two rows with data_point NULL through, because SQL unique indexes treat NULLs as distinct.
    return ExpectationCheck(
        table, "unique_key", "error",
        f"one row per ({', '.join(key)}); the failing count is the number of rows sharing a key with another",
        expectations=(expect("ExpectCompoundColumnsToBeUnique", column_list=list(key),
                             ignore_row_if="never"),))


def in_set(table: str, name: str, severity: Severity, description: str, column: str, values: list[Any],
           where: tuple[tuple[str, str, Any], ...] = ()) -> ExpectationCheck:
    return ExpectationCheck(table, name, severity, description, detail=column,
                            expectations=(expect("ExpectColumnValuesToBeInSet", where, column=column,
                                                 value_set=list(values)),))


def between(table: str, name: str, severity: Severity, description: str, column: str, *,
            min_value: float | None = None, max_value: float | None = None,
            where: tuple[tuple[str, str, Any], ...] = (), detail: str | None = None) -> ExpectationCheck:
    bounds = {k: v for k, v in (("min_value", min_value), ("max_value", max_value)) if v is not None}
    return ExpectationCheck(table, name, severity, description, detail=detail or column,
                            expectations=(expect("ExpectColumnValuesToBeBetween", where, column=column, **bounds),))


# ---- per table ----------------------------------------------------------------------------------


def observations_expectations(key: tuple[str, ...]) -> list[ExpectationCheck]:
    return [
        not_null("observations"),
        unique_key("observations", key),
        in_set("observations", "variable_codelist", "error",
               "variable is a canonical variable (canonical/variables.yaml)", "variable",
               sorted(md.canonical_units())),  # detail: "variable <name>"
        between("observations", "non_negative", "error",
                "value >= 0 (every canonical unit is an amount; see metadata.SIGNED_UNITS)", "value",
                min_value=0, where=(("variable", "in", tuple(md.non_negative_variables())),),
                detail="negative value {value:g}"),
    ]


def kpi_expectations(key: tuple[str, ...]) -> list[ExpectationCheck]:
    computed = ("status", "==", "computed")
    return [
        not_null("kpi_values"),
        unique_key("kpi_values", key),
        in_set("kpi_values", "status_codelist", "error",
               f"status is one of {', '.join(KPI_STATUSES)}", "status", list(KPI_STATUSES)),
        between("kpi_values", "percentage_range", "error",
                "percentage KPIs (catalogue unit '%...') are between 0 and 100", "value",
                min_value=0, max_value=100,
                where=(computed, ("indicator_id", "in", tuple(md.percentage_indicators()))),
                detail="value {value:.4g} % is outside 0-100 %"),
        between("kpi_values", "non_negative", "error",
                "count and rate KPIs (per 100,000, per capita, number, ...) are >= 0", "value",
                min_value=0, where=(computed, ("indicator_id", "in", tuple(md.non_negative_indicators()))),
                detail="negative value {value:.4g}"),
    ]


def scores_expectations(key: tuple[str, ...]) -> list[ExpectationCheck]:
    """kpi_scores (migration 0003): the U4SSC scoring's bands and points."""
    scored = ("status", "==", "scored")
    return [
        not_null("kpi_scores"),
        unique_key("kpi_scores", key),
        in_set("kpi_scores", "status_codelist", "error", "status is scored or excluded", "status",
               list(SCORE_STATUSES)),
        in_set("kpi_scores", "indicator_codelist", "error", "indicator_id is a catalogue indicator",
               "indicator_id", sorted(md.indicator_facts())),
        between("kpi_scores", "points_range", "error", "a scored KPI has 1 to 4 points (U4SSC bands)", "points",
                min_value=1, max_value=4, where=(scored,)),
        ExpectationCheck("kpi_scores", "scored_complete", "error",
                         "a scored KPI has a value, a target, points and a band",
                         expectations=tuple(expect("ExpectColumnValuesToNotBeNull", (scored,), column=c)
                                            for c in ("value", "target", "points", "band"))),
        in_set("kpi_scores", "band_codelist", "error", f"band is one of {', '.join(SCORE_BANDS)}", "band",
               list(SCORE_BANDS), where=(scored,)),
        between("kpi_scores", "share_capped_range", "error",
                "the capped share of the target is between 0 and 100 %", "share_capped_pct",
                min_value=0, max_value=100, where=(scored,)),
    ]
