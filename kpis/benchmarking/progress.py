"""Progress towards the targets (SDG 11 and any indicator with a target): is the city on track?

For every indicator and data point with computed values in at least two years since the 2015
baseline, the actual compound annual growth rate between the first and the latest of those years
is compared with the rate required to reach the target by its deadline (UN Statistics Division,
Progress Chart technical note, method with an explicit numerical target):

    CAGR_a = (x_t / x_b) ^ (1 / (t - b)) - 1          b = first year >= 2015 with a value, t = latest
    CAGR_r = (x_target / x_b) ^ (1 / (T - b)) - 1     T = the target's deadline (2030 by default)

- ``un``: ratio = CAGR_a / CAGR_r; >= 0.95 on track, [0.5, 0.95) acceleration needed,
  [-0.1, 0.5) limited or no progress, < -0.1 deterioration.
- ``eurostat`` (Eurostat / Statistics Canada, as implemented by Open SDG's sdg-build
  ProgressMeasure.py): ratio = d * CAGR_a / |CAGR_r|, d = +1 higher / -1 lower is better;
  >= 0.95 on track, [0.6, 0.95) acceleration needed, [0, 0.6) limited, < 0 deterioration.

While the base value has not reached the target, CAGR_r points in the desired direction, so both
ratios are equal and only the cut-offs differ. Lower bounds are inclusive (sdg-build compares with
``>=``; the UN note's inclusivity was not confirmed). Ratios are rounded to 9 decimals before
classification so hand-made boundary cases land where they are meant to.

Statuses beyond the four classes, each with its reason:
- ``target_achieved``: the latest value meets the target (Eurostat / Open SDG's separate status;
  the ratio is meaningless once the target is met). If the base year met it and the latest value
  no longer does, the series is ``deterioration`` (no ratio: the required rate points backwards).
- ``trend_only``: no target, or a target the CAGR method cannot measure (a non-positive value or
  target, a deadline not after the base year): the direction of change only.
- ``not_assessed``: fewer than two years with a computed value since 2015.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from kpis.catalogue import load_catalogue

BASELINE_YEAR = 2015
RATIO_DECIMALS = 9
Method = Literal["un", "eurostat"]


@dataclass(frozen=True)
class ProgressClass:
    lower: float  # inclusive lower bound of the ratio
    status: str
    label: str


# Highest first; labels as the reference notes transcribe them (UN Progress Chart technical note 2022;
# Open SDG / Eurostat wording).
CUTOFFS: dict[str, tuple[ProgressClass, ...]] = {
    "un": (
        ProgressClass(0.95, "on_track", "Substantial progress / on track"),
        ProgressClass(0.5, "acceleration_needed", "Fair progress, acceleration needed"),
        ProgressClass(-0.1, "limited_progress", "Limited or no progress"),
        ProgressClass(-math.inf, "deterioration", "Deterioration"),
    ),
    "eurostat": (
        ProgressClass(0.95, "on_track", "On track / significant progress"),
        ProgressClass(0.6, "acceleration_needed", "Acceleration needed / moderate progress"),
        ProgressClass(0.0, "limited_progress", "Limited / insufficient progress"),
        ProgressClass(-math.inf, "deterioration", "Deterioration / movement away"),
    ),
}
TARGET_ACHIEVED = "Target achieved"
NOT_ASSESSED = "Not assessed"
TREND_LABELS = {"up": "Increasing", "down": "Decreasing", "flat": "No change"}

PROGRESS_COLUMNS: dict[str, Any] = {
    "city_id": pl.String, "framework": pl.String, "indicator_id": pl.String, "data_point": pl.String,
    "method": pl.String, "base_year": pl.Int32, "base_value": pl.Float64, "latest_year": pl.Int32,
    "latest_value": pl.Float64, "n_years": pl.Int32, "target": pl.Float64, "direction": pl.String,
    "deadline": pl.Int32, "target_source": pl.String, "cagr_actual": pl.Float64, "cagr_required": pl.Float64,
    "ratio": pl.Float64, "trend": pl.String, "status": pl.String, "label": pl.String, "reason": pl.String,
}


def cagr(start: float, end: float, years: int) -> float:
    """Compound annual growth rate from `start` to `end` over `years` years (positive values only)."""
    return float((end / start) ** (1 / years) - 1)


def progress_ratio(method: Method, cagr_actual: float, cagr_required: float, direction: str) -> float:
    if method == "un":
        return cagr_actual / cagr_required
    sign = 1 if direction == "higher" else -1
    return sign * cagr_actual / abs(cagr_required)


def classify(ratio: float, method: Method = "un") -> ProgressClass:
    """The class of a progress ratio (lower bounds inclusive)."""
    rounded = round(ratio, RATIO_DECIMALS)
    return next(c for c in CUTOFFS[method] if rounded >= c.lower)


def _meets(value: float, target: float, direction: str) -> bool:
    return value >= target if direction == "higher" else value <= target


def _trend(base: float, latest: float) -> str:
    return "up" if latest > base else "down" if latest < base else "flat"


def _assess(series: dict[int, float], target: dict[str, Any] | None, method: Method,
            baseline_year: int) -> dict[str, Any]:
    years = sorted(y for y in series if y >= baseline_year)
    out: dict[str, Any] = {"method": method, "n_years": len(years)}
    if target is not None:
        out.update({k: target[k] for k in ("target", "direction", "deadline", "target_source")})
    if len(years) < 2:
        have = ", ".join(map(str, years)) or "none"
        before = sorted(y for y in series if y < baseline_year)
        note = f"; values before the {baseline_year} baseline are not used ({', '.join(map(str, before))})" \
            if before else ""
        return {**out, "status": "not_assessed", "label": NOT_ASSESSED,
                "reason": f"needs computed values in at least two years since {baseline_year}; has: {have}{note}"}
    b, t = years[0], years[-1]
    xb, xt = series[b], series[t]
    trend = _trend(xb, xt)
    positive = xb > 0 and xt > 0
    out.update({"base_year": b, "base_value": xb, "latest_year": t, "latest_value": xt, "trend": trend,
                "cagr_actual": cagr(xb, xt, t - b) if positive else None})
    used = f"years {b} (base) and {t} (latest)"

    def trend_only(why: str) -> dict[str, Any]:
        return {**out, "status": "trend_only", "label": TREND_LABELS[trend],
                "reason": f"{why}: trend direction only ({xb:g} in {b}, {xt:g} in {t})"}

    if target is None:
        return trend_only("no target in force")
    goal, direction, deadline = target["target"], target["direction"], target["deadline"]
    if _meets(xt, goal, direction):
        return {**out, "status": "target_achieved", "label": TARGET_ACHIEVED,
                "reason": f"{xt:g} in {t} meets the target {goal:g} ({direction} is better); {used}"}
    if not positive:
        return trend_only(f"a growth rate needs positive values ({xb:g} in {b}, {xt:g} in {t})")
    if goal <= 0:
        return trend_only(f"the target {goal:g} is not positive, so no compound growth rate reaches it")
    if deadline <= b:
        return trend_only(f"the deadline {deadline} is not after the base year {b}")
    worst_class = CUTOFFS[method][-1]
    if _meets(xb, goal, direction):
        return {**out, "status": worst_class.status, "label": worst_class.label,
                "reason": f"{xb:g} in {b} met the target {goal:g}, {xt:g} in {t} no longer does; {used}"}
    required = cagr(xb, goal, deadline - b)
    ratio = round(progress_ratio(method, out["cagr_actual"], required, direction), RATIO_DECIMALS)
    found = classify(ratio, method)
    return {**out, "cagr_required": required, "ratio": ratio, "status": found.status, "label": found.label,
            "reason": (f"{out['cagr_actual']:+.2%} a year from {b} to {t} against {required:+.2%} a year needed "
                       f"to reach {goal:g} by {deadline}: ratio {ratio:.3f}; {used}")}


def assess_progress(
    kpi_values: pl.DataFrame,
    targets: pl.DataFrame,
    method: Method = "un",
    *,
    baseline_year: int = BASELINE_YEAR,
) -> pl.DataFrame:
    """One row per city, indicator and data point of `kpi_values` (every framework; filter on
    `framework` for SDG 11 only), ordered by city, catalogue order and data point."""
    if method not in CUTOFFS:
        raise ValueError(f"unknown progress method {method!r}; use one of {sorted(CUTOFFS)}")
    target_rows = {(t["indicator_id"], t["data_point"]): t for t in targets.iter_rows(named=True)}
    series: dict[tuple[str, str, str, str | None], dict[int, float]] = {}
    for row in kpi_values.iter_rows(named=True):
        key = (row["city_id"], row["framework"], row["indicator_id"], row["data_point"])
        values = series.setdefault(key, {})
        if row["status"] == "computed" and row["value"] is not None and math.isfinite(row["value"]):
            values[int(row["year"])] = float(row["value"])
    rows = [{"city_id": city, "framework": framework, "indicator_id": ind_id, "data_point": dp,
             **_assess(values, target_rows.get((ind_id, dp)), method, baseline_year)}
            for (city, framework, ind_id, dp), values in series.items()]
    rows.sort(key=_order_key())
    return pl.DataFrame(rows, schema=PROGRESS_COLUMNS, orient="row") if rows else pl.DataFrame(
        schema=PROGRESS_COLUMNS)


def _order_key() -> Any:
    catalogue = load_catalogue()
    order = {ind.id: n for n, ind in enumerate(catalogue)}
    points = {(ind.id, dp): n for ind in catalogue for n, dp in enumerate(ind.data_points or [None])}

    def key(row: dict[str, Any]) -> tuple[str, int, str, int, str]:
        ind_id, dp = row["indicator_id"], row["data_point"]
        return (row["city_id"], order.get(ind_id, len(order)), ind_id, points.get((ind_id, dp), -1), dp or "")

    return key


def assess_all(kpi_values: pl.DataFrame, targets: pl.DataFrame,
               methods: Sequence[Method] = ("un", "eurostat")) -> pl.DataFrame:
    """Every method's assessment stacked (the warehouse keeps both; the report picks one)."""
    return pl.concat([assess_progress(kpi_values, targets, m) for m in methods])
