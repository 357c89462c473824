"""U4SSC scoring: each KPI against its target in four bands, rolled up the U4SSC hierarchy.

The rule is public (U4SSC verification reports: Kristiansund 2020 p.12, Krimpen p.11, Valencia
2020 p.14, Pully p.12); the per-KPI targets are not (see `kpis.benchmarking.targets`).

- Share of target: higher is better ``value / target``; lower is better
  ``(worst - value) / (worst - target)`` (the reference notes' formula, as Trondheim's U4SSC
  dashboard scores against a start value). Reported uncapped, then clamped to [0, 100] % for
  banding, as SDSN clips its normalised scores to [0, 100]; U4SSC's top band is open ("95%+"), so
  the clamp changes no points and only keeps "% of target" readable.
- Points by band, lower bound inclusive (the reports do not say which side of a boundary is
  inclusive; this is the rule of the only implementation found, Trondheim's dashboard):
  ``[0, 33) -> 1, [33, 66) -> 2, [66, 95) -> 3, >= 95 -> 4``. Shares are rounded to 9 decimals of
  a per cent first, so that a value exactly on a boundary is not pushed under it by binary
  floating point (72.6 / 110 * 100 == 65.99999999999999; PM2.5 25.1 against target 5 and worst 35:
  (35 - 25.1) / 30 * 100 == 32.99999999999999).
- Roll-ups per category, sub-dimension and dimension: sum of points / (4 x number of scored KPIs)
  (worked example, Kristiansund 2020 p.12: 1 + 3 + 4 + 1 = 9 of 16 = 56.25 %), reported in the same
  bands. A KPI with several scored data points contributes the mean of their points, so it weighs
  as one KPI (U4SSC's handling of data points in roll-ups is not published).
- KPIs (data points) without a computed value or without a usable target are excluded and listed
  with the reason; they count neither in the numerator nor in the denominator.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from kpis.catalogue import Indicator, load_catalogue

SHARE_DECIMALS = 9
POINTS_MAX = 4
LEVELS = ("dimension", "subdimension", "category")


@dataclass(frozen=True)
class Band:
    points: int
    lower_pct: float  # inclusive lower bound of the band, in % of target
    code: str
    label: str  # the City Snapshot legend (Aukra 2021 p.4), hyphens normalised


# Highest first: the first band whose lower bound the share reaches is the band.
BANDS: tuple[Band, ...] = (
    Band(4, 95.0, "95+", "95%+ Target"),
    Band(3, 66.0, "66-95", "66-95% of Target"),
    Band(2, 33.0, "33-66", "33-66% of Target"),
    Band(1, float("-inf"), "<33", "Less than 33% of Target"),
)

SCORE_COLUMNS: dict[str, Any] = {
    "city_id": pl.String, "year": pl.Int32, "indicator_id": pl.String, "data_point": pl.String,
    "dimension": pl.String, "subdimension": pl.String, "category": pl.String,
    "value": pl.Float64, "unit": pl.String, "target": pl.Float64, "direction": pl.String, "worst": pl.Float64,
    "deadline": pl.Int32, "share_pct": pl.Float64, "share_capped_pct": pl.Float64, "points": pl.Int32,
    "band": pl.String, "band_label": pl.String, "official_u4ssc_benchmark": pl.Boolean,
    "target_source": pl.String, "target_citation": pl.String, "status": pl.String, "status_reason": pl.String,
}
ROLLUP_COLUMNS: dict[str, Any] = {
    "city_id": pl.String, "year": pl.Int32, "level": pl.String, "group_path": pl.String,
    "dimension": pl.String, "subdimension": pl.String, "category": pl.String,
    "n_kpis": pl.Int32, "n_scored_kpis": pl.Int32, "n_scored_data_points": pl.Int32,
    "points_sum": pl.Float64, "max_points": pl.Int32, "score_pct": pl.Float64,
    "band": pl.String, "band_label": pl.String,
}


def share_of_target(value: float, target: float, direction: str, worst: float | None = None) -> float:
    """Share of target as a fraction, uncapped (1.0 = target reached exactly)."""
    if direction == "higher":
        return value / target
    if worst is None:
        raise ValueError("lower-is-better scoring needs a worst value")
    return (worst - value) / (worst - target)


def band_for(share_pct: float) -> Band:
    """The band of a share of target in % (already rounded); lower bounds are inclusive."""
    return next(band for band in BANDS if share_pct >= band.lower_pct)


def points_for(share_pct: float) -> int:
    return band_for(round(share_pct, SHARE_DECIMALS)).points


def _group_path(indicator: Indicator, level: str) -> str:
    parts = [indicator.dimension, indicator.subdimension, indicator.category][: LEVELS.index(level) + 1]
    return " / ".join(str(p) for p in parts)


def group_order(catalogue: Sequence[Indicator] | None = None) -> dict[str, int]:
    """Rank of every roll-up group path in catalogue order (for listings read back from SQL)."""
    paths: dict[str, int] = {}
    for indicator in catalogue if catalogue is not None else load_catalogue():
        if indicator.framework == "u4ssc":
            for level in LEVELS:
                paths.setdefault(_group_path(indicator, level), len(paths))
    return paths


def _score_row(kpi: dict[str, Any], indicator: Indicator, target: dict[str, Any] | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "city_id": kpi["city_id"], "year": kpi["year"], "indicator_id": indicator.id, "data_point": kpi["data_point"],
        "dimension": indicator.dimension, "subdimension": indicator.subdimension, "category": indicator.category,
        "value": kpi["value"], "unit": kpi.get("unit") or indicator.unit,
    }
    if target is not None:
        row.update({"target": target["target"], "direction": target["direction"], "worst": target["worst"],
                    "deadline": target["deadline"], "official_u4ssc_benchmark": target["official_u4ssc_benchmark"],
                    "target_source": target["target_source"], "target_citation": target["source"]})
    reasons = []
    if kpi["status"] != "computed" or kpi["value"] is None:
        why = f": {kpi['status_reason']}" if kpi.get("status_reason") else ""
        reasons.append(f"no computed value (status {kpi['status']}{why})")
    if target is None:
        reasons.append("no target in force for this KPI / data point")
    elif target["direction"] == "lower" and target["worst"] is None:
        reasons.append("lower-is-better target without a worst value, so no share of target")
    if reasons:
        return {**row, "status": "excluded", "status_reason": "; ".join(reasons)}
    assert target is not None
    share = round(100 * share_of_target(kpi["value"], target["target"], target["direction"], target["worst"]),
                  SHARE_DECIMALS)
    capped = min(max(share, 0.0), 100.0)
    band = band_for(capped)
    note = None
    if share > 100:
        note = f"beyond the target: share {share:g} % capped at 100 %"
    elif share < 0:
        note = f"worse than the worst value {target['worst']:g}: share {share:g} % clamped to 0 %"
    return {**row, "share_pct": share, "share_capped_pct": capped, "points": band.points, "band": band.code,
            "band_label": band.label, "status": "scored", "status_reason": note}


def _ranks(catalogue: Sequence[Indicator]) -> tuple[dict[str, int], dict[tuple[str, str | None], int]]:
    order = {ind.id: n for n, ind in enumerate(catalogue)}
    points = {(ind.id, dp): n for ind in catalogue for n, dp in enumerate(ind.data_points or [None])}
    return order, points


def _frame(rows: list[dict[str, Any]], schema: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def _rollups(scored: list[dict[str, Any]], city_years: list[tuple[str, int]],
             u4ssc: Sequence[Indicator]) -> list[dict[str, Any]]:
    # Points per KPI per city-year: the mean over its scored data points (one KPI weighs as one).
    per_kpi: dict[tuple[str, int, str], list[int]] = defaultdict(list)
    for row in scored:
        per_kpi[row["city_id"], row["year"], row["indicator_id"]].append(row["points"])
    rows: list[dict[str, Any]] = []
    for city_id, year in city_years:
        for level in LEVELS:
            groups: dict[str, list[Indicator]] = {}
            for indicator in u4ssc:
                groups.setdefault(_group_path(indicator, level), []).append(indicator)
            for path, members in groups.items():
                kpi_points = [per_kpi[city_id, year, m.id] for m in members if (city_id, year, m.id) in per_kpi]
                n_scored = len(kpi_points)
                total = sum(sum(p) / len(p) for p in kpi_points)
                score = round(100 * total / (POINTS_MAX * n_scored), SHARE_DECIMALS) if n_scored else None
                band = band_for(score) if score is not None else None
                first = members[0]
                rows.append({
                    "city_id": city_id, "year": year, "level": level, "group_path": path,
                    "dimension": first.dimension,
                    "subdimension": first.subdimension if level != "dimension" else None,
                    "category": first.category if level == "category" else None,
                    "n_kpis": len(members), "n_scored_kpis": n_scored,
                    "n_scored_data_points": sum(len(p) for p in kpi_points),
                    "points_sum": round(total, SHARE_DECIMALS) if n_scored else None,
                    "max_points": POINTS_MAX * n_scored, "score_pct": score,
                    "band": band.code if band else None, "band_label": band.label if band else None,
                })
    return rows


def score_release(
    kpi_values: pl.DataFrame,
    targets: pl.DataFrame,
    catalogue: Sequence[Indicator] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Score every U4SSC KPI row of `kpi_values` against `targets` (from `load_targets`).

    Returns (scores, rollups, excluded): `scores` and `excluded` share SCORE_COLUMNS (status
    'scored' / 'excluded', status_reason says why), ordered by city, year, catalogue order and
    data point; `rollups` has one row per city, year, level and group of the catalogue (score null
    when no KPI of the group was scored). Non-U4SSC rows (SDG 11) are ignored: they have no
    U4SSC hierarchy to roll up into."""
    catalogue = catalogue if catalogue is not None else load_catalogue()
    u4ssc = [ind for ind in catalogue if ind.framework == "u4ssc"]
    by_id = {ind.id: ind for ind in u4ssc}
    target_rows = {(t["indicator_id"], t["data_point"]): t for t in targets.iter_rows(named=True)}
    order, point_order = _ranks(u4ssc)
    kpis = [k for k in kpi_values.iter_rows(named=True) if k["indicator_id"] in by_id]
    kpis.sort(key=lambda k: (k["city_id"], k["year"], order[k["indicator_id"]],
                             point_order.get((k["indicator_id"], k["data_point"]), -1)))
    rows = [_score_row(k, by_id[k["indicator_id"]], target_rows.get((k["indicator_id"], k["data_point"])))
            for k in kpis]
    scored = [r for r in rows if r["status"] == "scored"]
    city_years = sorted({(str(c), int(y)) for c, y in kpi_values.select("city_id", "year").unique().iter_rows()})
    return (_frame(scored, SCORE_COLUMNS), _frame(_rollups(scored, city_years, u4ssc), ROLLUP_COLUMNS),
            _frame([r for r in rows if r["status"] == "excluded"], SCORE_COLUMNS))
