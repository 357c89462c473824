"""Load-report warnings as sentences a person reads: printed by `citykpi run` and logged by the deployment."""

from __future__ import annotations

from typing import Any

from canonical.listing import first_and_more

# Report keys that mean rows were not turned into observations, with how to say it.
_COUNTED = {
    "duplicate_rows": "rows repeating an earlier row cell for cell",
    "filtered_rows": "rows left out by `where`",
    "rows_without_year": "rows whose year did not match `year_pattern`",
    "empty_cells": "empty or missing-value cells",
    "empty_values": "empty readings values",
    "invalid_values": "readings flagged invalid",
    "skipped_features": "features skipped",
    "duplicate_readings": "duplicate readings (same station, variable and hour)",
}


def _listed(values: dict[str, Any] | list[Any], limit: int = 5) -> str:
    """`a (3), b (1), and 4 more` for counts per code; `x, y, and 2 more` for a list."""
    shown = [f"{k} ({v})" for k, v in values.items()] if isinstance(values, dict) else [str(v) for v in values]
    return first_and_more(shown, limit, ", ")


def source_messages(source_id: str, report: dict[str, Any]) -> list[str]:
    """One line per thing a person should know about one source's load (nothing for a clean load)."""
    if report.get("removed"):
        tables = ", ".join(f"{n:,} from {t}" for t, n in report.get("rows_deleted", {}).items()) or "no rows"
        return [f"{source_id}: removed from the config; its rows were deleted ({tables})"]
    if report.get("unchanged"):
        return []
    lines = []
    for key, what in _COUNTED.items():
        n = report.get(key)
        if isinstance(n, int) and n:
            lines.append(f"{source_id}: {n:,} {what}")
    if report.get("unmapped_codes"):
        lines.append(f"{source_id}: codes not in the config, ignored: {_listed(report['unmapped_codes'])}")
    if report.get("incomplete_aggregates"):
        lines.append(f"{source_id}: values withheld as incomplete: {_listed(report['incomplete_aggregates'], 3)}")
    for key in ("warnings", "rejected"):
        for text in report.get(key, [])[:5]:
            lines.append(f"{source_id}: {text}")
    return lines


def load_messages(report: dict[str, Any]) -> list[str]:
    """Every source's lines of a city load report (`pipelines.steps.load_city`), sources in order."""
    lines = []
    for source_id, source_report in report.get("sources", {}).items():
        if isinstance(source_report, dict):
            lines += source_messages(source_id, source_report)
    rejected = report.get("derived", {}).get("station_years_rejected_low_coverage")
    if isinstance(rejected, int) and rejected:
        lines.append(f"{rejected:,} station-years of readings below the 75 % coverage rule: no annual mean for them")
    return lines
