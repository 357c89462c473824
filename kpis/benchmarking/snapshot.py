"""The City Snapshot as plain data, for the HTML report and the workbook (which own the layout).

`city_snapshot` gives one city and year: bands per KPI nested in the U4SSC hierarchy with the
roll-ups, the excluded KPIs with their reasons, and a progress arrow per SDG 11 indicator.
`compare_cities` gives the side-by-side roll-ups of a release with several cities.
Everything is JSON-serialisable (floats, ints, strings, None).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from kpis.benchmarking.scoring import BANDS, group_order
from kpis.catalogue import Indicator, indicators_by_id

DISCLAIMER = ("Targets are citykpi defaults from public references (WHO 2021 air quality guidelines, "
              "universal-access SDG targets, SDSN optimum values) or the city's own table; they are NOT "
              "the official U4SSC benchmarks, which are not public.")
# status -> (arrow, tone) for progress; trend_only uses the trend's arrow in a neutral tone.
PROGRESS_ARROWS: dict[str, tuple[str, str]] = {
    "target_achieved": ("✓", "good"), "on_track": ("↑", "good"), "acceleration_needed": ("↗", "fair"),
    "limited_progress": ("→", "poor"), "deterioration": ("↓", "bad"), "not_assessed": ("–", "neutral"),
}
TREND_ARROWS = {"up": "↑", "down": "↓", "flat": "→"}


def _pick(frame: pl.DataFrame, city_id: str | None) -> str:
    cities = sorted(set(frame["city_id"].to_list()))
    if city_id is None:
        if len(cities) != 1:
            raise ValueError(f"several cities {cities}: name one with city_id")
        return cities[0]
    return city_id


def _catalogue_rank(row: dict[str, Any], catalogue: dict[str, Indicator]) -> tuple[int, int]:
    """Catalogue order, then the catalogue's data point order (PM2.5 before NO2, not alphabetical)."""
    indicator = catalogue.get(row["indicator_id"])
    if indicator is None:
        return len(catalogue), 0
    points = indicator.data_points
    return list(catalogue).index(indicator.id), points.index(row["data_point"]) if row["data_point"] in points else -1


def _rollup(row: dict[str, Any] | None) -> dict[str, Any]:
    keys = ("score_pct", "band", "band_label", "n_scored_kpis", "n_kpis", "points_sum", "max_points")
    return {k: (row or {}).get(k) for k in keys}


def _kpi(row: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    keys = ("indicator_id", "data_point", "value", "unit", "target", "direction", "worst", "share_pct",
            "share_capped_pct", "points", "band", "band_label", "target_source", "target_citation", "status_reason")
    return {"name": names.get(row["indicator_id"], row["indicator_id"]), **{k: row[k] for k in keys}}


def _progress_item(row: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    if row["status"] == "trend_only":
        arrow, tone = TREND_ARROWS.get(row["trend"] or "flat", "→"), "neutral"
    else:
        arrow, tone = PROGRESS_ARROWS[row["status"]]
    keys = ("indicator_id", "data_point", "method", "status", "label", "base_year", "base_value", "latest_year",
            "latest_value", "target", "direction", "deadline", "cagr_actual", "cagr_required", "ratio", "trend",
            "target_source", "reason")
    return {"name": names.get(row["indicator_id"], row["indicator_id"]), "arrow": arrow, "tone": tone,
            **{k: row[k] for k in keys}}


def city_snapshot(
    scores: pl.DataFrame,
    rollups: pl.DataFrame,
    progress: pl.DataFrame,
    *,
    excluded: pl.DataFrame | None = None,
    city_id: str | None = None,
    year: int | None = None,
    method: str = "un",
    frameworks: tuple[str, ...] = ("sdg11",),
) -> dict[str, Any]:
    """The City Snapshot of one city (default: the only one) and year (default: its latest year
    with roll-ups). Progress rows are those of `method` and `frameworks` (SDG 11 by default)."""
    city = _pick(rollups, city_id)
    city_rollups = rollups.filter(pl.col("city_id") == city)
    if year is None:
        year = int(city_rollups["year"].max()) if city_rollups.height else None  # type: ignore[arg-type]
    catalogue = indicators_by_id()
    names = {ind_id: ind.name for ind_id, ind in catalogue.items()}
    rank = group_order()
    in_year = sorted(city_rollups.filter(pl.col("year") == year).iter_rows(named=True),
                     key=lambda r: rank.get(r["group_path"], len(rank)))
    by_path = {r["group_path"]: r for r in in_year}
    kpis = scores.filter((pl.col("city_id") == city) & (pl.col("year") == year))
    dimensions: list[dict[str, Any]] = []
    for dim in [r for r in by_path.values() if r["level"] == "dimension"]:
        subs = []
        for sub in [r for r in by_path.values() if r["level"] == "subdimension" and r["dimension"] == dim["dimension"]]:
            cats = []
            for cat in [r for r in by_path.values()
                        if r["level"] == "category" and r["group_path"].startswith(sub["group_path"] + " / ")]:
                rows = kpis.filter((pl.col("dimension") == cat["dimension"]) & (pl.col("subdimension") ==
                                   cat["subdimension"]) & (pl.col("category") == cat["category"]))
                listed = sorted(rows.iter_rows(named=True), key=lambda r: _catalogue_rank(r, catalogue))
                cats.append({"name": cat["category"], **_rollup(cat), "kpis": [_kpi(r, names) for r in listed]})
            subs.append({"name": sub["subdimension"], **_rollup(sub), "categories": cats})
        dimensions.append({"name": dim["dimension"], **_rollup(dim), "subdimensions": subs})
    left_out = [] if excluded is None else [
        {"indicator_id": r["indicator_id"], "name": names.get(r["indicator_id"], r["indicator_id"]),
         "data_point": r["data_point"], "reason": r["status_reason"]}
        for r in excluded.filter((pl.col("city_id") == city) & (pl.col("year") == year)).iter_rows(named=True)]
    chosen = progress.filter((pl.col("city_id") == city) & (pl.col("method") == method)
                             & pl.col("framework").is_in(list(frameworks)))
    return {
        "city_id": city, "year": year, "disclaimer": DISCLAIMER,
        "legend": [{"band": b.code, "label": b.label, "points": b.points} for b in BANDS],
        "dimensions": dimensions,
        "excluded": left_out,
        "progress_method": method,
        "progress": [_progress_item(r, names) for r in chosen.iter_rows(named=True)],
    }


def compare_cities(rollups: pl.DataFrame, *, level: str = "dimension", year: int | None = None) -> pl.DataFrame:
    """Side by side: one row per group of `level`, one score column per city (each city's latest
    year unless `year` is given), in catalogue order."""
    chosen = rollups.filter(pl.col("level") == level)
    if year is None:
        chosen = chosen.filter(pl.col("year") == pl.col("year").max().over("city_id"))
    else:
        chosen = chosen.filter(pl.col("year") == year)
    rank = group_order()
    groups = sorted(set(chosen["group_path"].to_list()), key=lambda p: (rank.get(p, len(rank)), p))
    out = pl.DataFrame({"group_path": groups}, schema={"group_path": pl.String})
    for city in sorted(set(chosen["city_id"].to_list())):
        scores = chosen.filter(pl.col("city_id") == city).select("group_path", pl.col("score_pct").alias(city))
        out = out.join(scores, on="group_path", how="left", maintain_order="left")
    return out
