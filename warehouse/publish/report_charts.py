"""The report's charts as Vega-Lite specs (Altair), each from the release frame alone.

Every builder returns a spec dict or None when there is nothing to show, so the report can say
so in words instead of drawing an empty chart. Data is embedded in the spec (the report must
work offline), and only the rows a chart needs are kept, so the HTML stays small.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import altair as alt
import polars as pl

from kpis.benchmarking.scoring import group_order
from kpis.catalogue import Indicator
from warehouse.publish.changes import Changes
from warehouse.publish.scores import BAND_COLORS, NO_BAND_COLOR

STATUS_ORDER = ["computed", "missing", "failed_check", "not_applicable"]
STATUS_COLORS = ["#2e7d32", "#bdbdbd", "#c62828", "#6d4c41"]
GROUP_ORDER = ["Economy", "Environment", "Society and Culture", "SDG 11"]
WIDTH = 520


def group_of(catalogue: Sequence[Indicator]) -> pl.DataFrame:
    return pl.DataFrame({"indicator_id": [i.id for i in catalogue],
                         "group": [i.dimension if i.framework == "u4ssc" and i.dimension else "SDG 11"
                                   for i in catalogue],
                         "indicator_name": [i.name for i in catalogue]})


def latest_year_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Each city's rows of its latest reporting year (cities may report different years)."""
    return frame.filter(pl.col("year") == pl.col("year").max().over("city_id"))


def _spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    return chart.to_dict()


def _status_scale() -> alt.Scale:
    return alt.Scale(domain=STATUS_ORDER, range=STATUS_COLORS)


def coverage(frame: pl.DataFrame, catalogue: Sequence[Indicator]) -> dict[str, Any] | None:
    """Indicator rows by status per dimension, each city's latest year, cities side by side."""
    rows = latest_year_rows(frame).join(group_of(catalogue), on="indicator_id", how="left")
    if rows.is_empty():
        return None
    counts = (rows.with_columns(pl.col("group").fill_null("SDG 11"),
                                city=pl.col("city_id") + " " + pl.col("year").cast(pl.String))
              .group_by("city", "group", "status").len("rows").sort("city", "group", "status"))
    chart = alt.Chart(counts).mark_bar().encode(
        y=alt.Y("group:N", sort=GROUP_ORDER, title=None),
        x=alt.X("rows:Q", stack="zero", title="indicator rows (indicator x data point)"),
        color=alt.Color("status:N", scale=_status_scale(), title="status"),
        order=alt.Order("status_rank:Q"),
        tooltip=["city:N", "group:N", "status:N", "rows:Q"],
    ).transform_calculate(
        status_rank=f"indexof({json.dumps(STATUS_ORDER)}, datum.status)"
    ).properties(width=min(WIDTH, 900 // max(counts["city"].n_unique(), 1)), height=120).facet(
        column=alt.Column("city:N", title=None))
    return _spec(chart)


def cities_side_by_side(frame: pl.DataFrame, catalogue: Sequence[Indicator]) -> dict[str, Any] | None:
    """Each computed indicator of the latest common year, every city as a share of the highest city."""
    if frame["city_id"].n_unique() < 2:
        return None
    years = frame.group_by("city_id").agg(pl.col("year").max())["year"]
    year = int(years.min())  # type: ignore[arg-type]
    rows = (frame.filter(pl.col("year") == year, pl.col("status") == "computed")
            .join(group_of(catalogue), on="indicator_id", how="left")
            .with_columns(kpi=pl.col("indicator_id") + pl.when(pl.col("data_point").is_not_null())
                          .then(" [" + pl.col("data_point") + "]").otherwise(pl.lit("")))
            .with_columns(highest=pl.col("value").abs().max().over("kpi"))
            .with_columns(relative=pl.when(pl.col("highest") > 0).then(pl.col("value") / pl.col("highest"))
                          .otherwise(pl.lit(0.0)))  # all zero (e.g. no disaster deaths): on the 0 line
            .select("kpi", "indicator_name", "city_id", "value", "unit", "relative", "group"))
    if rows.is_empty():
        return None
    chart = alt.Chart(rows).mark_point(filled=True, size=70).encode(
        y=alt.Y("kpi:N", title=None, sort=alt.EncodingSortField("kpi")),
        x=alt.X("relative:Q", title=f"value as a share of the highest city ({year})", axis=alt.Axis(format="%")),
        color=alt.Color("city_id:N", title="city"),
        shape=alt.Shape("city_id:N", title="city"),
        tooltip=["kpi:N", "indicator_name:N", "city_id:N", "value:Q", "unit:N"],
    ).properties(width=WIDTH, height=alt.Step(14))
    return _spec(chart)


def sdg_panel(frame: pl.DataFrame, catalogue: Sequence[Indicator]) -> dict[str, Any] | None:
    """Every SDG 11 series with values (indicator x data point): one small chart each, one line per city."""
    names = {i.id: i.name for i in catalogue}
    rows = (frame.filter(pl.col("framework") == "sdg11", pl.col("status") == "computed")
            .with_columns(title=pl.col("indicator_id") + pl.when(pl.col("data_point").is_not_null())
                          .then(" " + pl.col("data_point")).otherwise(pl.lit("")) + " (" + pl.col("unit") + ")")
            .select("indicator_id", "data_point", "title", "year", "value", "unit", "city_id"))
    if rows.is_empty():
        return None
    rows = rows.with_columns(name=pl.col("indicator_id").replace_strict(names, default=""))
    chart = alt.Chart(rows).mark_line(point=True).encode(
        x=alt.X("year:O", title=None),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        color=alt.Color("city_id:N", title="city"),
        tooltip=["indicator_id:N", "name:N", "data_point:N", "city_id:N", "year:O", "value:Q", "unit:N"],
    ).properties(width=240, height=140).facet(
        facet=alt.Facet("title:N", title=None, sort=alt.EncodingSortField("title")), columns=3,
    ).resolve_scale(y="independent")
    return _spec(chart)


def sdg_status(frame: pl.DataFrame, catalogue: Sequence[Indicator]) -> dict[str, Any] | None:
    """Which SDG 11 indicators each city reports in its latest year."""
    rows = latest_year_rows(frame).filter(pl.col("framework") == "sdg11")
    if rows.is_empty():
        return None
    order = [i.id for i in catalogue if i.framework == "sdg11"]
    status = (rows.group_by("city_id", "year", "indicator_id")
              .agg(pl.col("status").sort_by(pl.col("status").replace_strict(
                  {s: n for n, s in enumerate(STATUS_ORDER)}, default=9)).first())
              .with_columns(city=pl.col("city_id") + " " + pl.col("year").cast(pl.String))
              .sort("city", "indicator_id"))
    chart = alt.Chart(status).mark_rect(stroke="white").encode(
        x=alt.X("indicator_id:N", sort=order, title=None),
        y=alt.Y("city:N", title=None),
        color=alt.Color("status:N", scale=_status_scale(), title="status"),
        tooltip=["city:N", "indicator_id:N", "status:N"],
    ).properties(width=alt.Step(32), height=alt.Step(22))
    return _spec(chart)


def against_previous(changes: Changes | None, frame: pl.DataFrame) -> dict[str, Any] | None:
    """Each KPI value of the latest year as a share of its value in the previous release (100 %: unchanged)."""
    if changes is None:
        return None
    latest = latest_year_rows(frame).filter(pl.col("status") == "computed")
    key = ["city_id", "year", "indicator_id", "data_point"]
    # Rows new in this release, or without a value before, have nothing to compare with (CHANGES.md lists them).
    fresh = pl.concat([changes.added.select(key), changes.changed.filter(pl.col("old_value").is_null()).select(key)])
    changed = changes.changed.filter(pl.col("old_value").is_not_null())
    rows = (latest.select(*key, "value", "unit").with_columns(pl.col("data_point").fill_null(""))
            .join(fresh, on=key, how="anti")
            .join(changed.select(*key, "old_value"), on=key, how="left")
            .with_columns(previous=pl.coalesce("old_value", "value"))
            .with_columns(share=pl.when(pl.col("previous") != 0).then(pl.col("value") / pl.col("previous"))
                          .otherwise(pl.lit(1.0)),
                          kpi=pl.col("indicator_id") + pl.when(pl.col("data_point") != "")
                          .then(" [" + pl.col("data_point") + "]").otherwise(pl.lit("")))
            .select("kpi", "city_id", "year", "previous", "value", "unit", "share"))
    if rows.is_empty():
        return None
    rule = alt.Chart(pl.DataFrame({"share": [1.0]})).mark_rule(color="#888", strokeDash=[4, 3]).encode(x="share:Q")
    points = alt.Chart(rows).mark_point(filled=True, size=60).encode(
        y=alt.Y("kpi:N", title=None),
        yOffset=alt.YOffset("city_id:N"),
        x=alt.X("share:Q", title="value as a share of the previous release's value (100 %: unchanged)",
                axis=alt.Axis(format="%"), scale=alt.Scale(zero=False, padding=20)),
        color=alt.Color("city_id:N", title="city"),
        tooltip=["kpi:N", "city_id:N", "year:O", "previous:Q", "value:Q", "unit:N",
                 alt.Tooltip("share:Q", format=".2%")],
    )
    return _spec(alt.layer(rule, points).properties(width=WIDTH, height=alt.Step(14)))


QUALITY_STATUSES = ["passed", "warned", "failed", "skipped"]
QUALITY_COLORS = ["#2e7d32", "#f9a825", "#c62828", "#bdbdbd"]


def quality(summary: Any) -> dict[str, Any] | None:
    """The manifest's quality summary (issue #5: checks run, passed, warned, failed, skipped) as one bar."""
    if not isinstance(summary, dict):
        return None
    counts = [{"status": k, "checks": summary[k], "rank": n} for n, k in enumerate(QUALITY_STATUSES)
              if isinstance(summary.get(k), int) and not isinstance(summary.get(k), bool) and summary[k] > 0]
    if not counts:
        return None
    chart = alt.Chart(pl.DataFrame(counts)).mark_bar().encode(
        x=alt.X("checks:Q", stack="zero", title="quality checks"),
        color=alt.Color("status:N", scale=alt.Scale(domain=QUALITY_STATUSES, range=QUALITY_COLORS), title=None),
        order=alt.Order("rank:Q"), tooltip=["status:N", "checks:Q"]).properties(width=WIDTH, height=28)
    return _spec(chart)


# ---- City Snapshot (issue #9): bands per KPI, roll-ups side by side ----------------------------------------

BAND_ORDER = ["<33", "33-66", "66-95", "95+"]


def _band_scale() -> alt.Scale:
    return alt.Scale(domain=BAND_ORDER, range=[BAND_COLORS[b] for b in BAND_ORDER])


def kpi_bands(kpis: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """One bar per scored KPI data point: its share of target (capped at 100 %) coloured by U4SSC band,
    with the band boundaries (33, 66, 95 %) as dashed rules. `kpis`: the snapshot's KPI items."""
    rows = [{"kpi": k["indicator_id"] + (f" [{k['data_point']}]" if k["data_point"] else "") + f" {k['name']}",
             "name": k["name"], "dimension": k.get("dimension", ""), "share": k["share_capped_pct"], "band": k["band"],
             "band_label": k["band_label"], "points": k["points"], "value": k["value"], "target": k["target"],
             "unit": k["unit"] or ""} for k in kpis if k.get("band")]
    if not rows:
        return None
    order = [r["kpi"] for r in rows]
    rules = alt.Chart(pl.DataFrame({"share": [33.0, 66.0, 95.0]})).mark_rule(
        color="#666", strokeDash=[4, 3]).encode(x="share:Q")
    bars = alt.Chart(pl.DataFrame(rows)).mark_bar().encode(
        y=alt.Y("kpi:N", sort=order, title=None, axis=alt.Axis(labelLimit=320)),
        x=alt.X("share:Q", title="share of target (%, capped at 100; dashed: band boundaries 33 / 66 / 95)",
                scale=alt.Scale(domain=[0, 100])),
        color=alt.Color("band:N", scale=_band_scale(), title="U4SSC band (% of target)", sort=BAND_ORDER),
        tooltip=["kpi:N", "name:N", "dimension:N", "value:Q", "target:Q", "unit:N",
                 alt.Tooltip("share:Q", format=".1f"), "points:Q", "band_label:N"],
    )
    return _spec(alt.layer(bars, rules).properties(width=WIDTH, height=alt.Step(16)))


def rollups_side_by_side(rollups: pl.DataFrame) -> dict[str, Any] | None:
    """Roll-up scores per dimension and sub-dimension, one column per city (each city's latest year),
    each cell coloured by its band and labelled with the score."""
    if rollups.is_empty() or rollups["city_id"].n_unique() < 2:
        return None
    latest = rollups.filter(pl.col("level").is_in(["dimension", "subdimension"]),
                            pl.col("year") == pl.col("year").max().over("city_id"))
    rows = latest.with_columns(
        city=pl.col("city_id") + " " + pl.col("year").cast(pl.String),
        group=pl.col("group_path"),
        label=pl.when(pl.col("score_pct").is_null()).then(pl.lit("N/A"))
        .otherwise(pl.col("score_pct").round(0).cast(pl.Int64).cast(pl.String) + " %"),
        band=pl.col("band").fill_null("N/A"),
    ).select("city", "group", "group_path", "level", "score_pct", "band", "label", "n_scored_kpis", "n_kpis")
    rank = group_order()
    order = [r["group"] for r in sorted(rows.unique("group_path").iter_rows(named=True),
                                        key=lambda r: rank.get(r["group_path"], len(rank)))]
    base = alt.Chart(rows).encode(x=alt.X("city:N", title=None, axis=alt.Axis(orient="top", labelAngle=0)),
                                  y=alt.Y("group:N", sort=order, title=None, axis=alt.Axis(labelLimit=360)))
    scale = alt.Scale(domain=[*BAND_ORDER, "N/A"], range=[*(BAND_COLORS[b] for b in BAND_ORDER), NO_BAND_COLOR])
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color("band:N", scale=scale, title="U4SSC band (% of target)"),
        tooltip=["city:N", "group_path:N", alt.Tooltip("score_pct:Q", format=".1f"), "band:N",
                 "n_scored_kpis:Q", "n_kpis:Q"])
    text = base.mark_text(fontSize=11).encode(text="label:N")
    return _spec(alt.layer(cells, text).properties(width=alt.Step(120), height=alt.Step(20)))
