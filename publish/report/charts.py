"""The report's charts as Vega-Lite specs (Altair), each fed only the rows it needs.

Every builder returns a spec dict, or None when there is nothing to show (the page then says so
in words). Data is embedded in the spec (the report works offline). Charts are fed aggregates,
never the release's rows: a national overview of 1,000 cities charts counts per dimension and
binned score distributions, so no chart's data grows with the number of cities beyond
`MAX_CHART_ROWS` (a chart that would is a bug and raises, instead of Altair's MaxRowsError at
5,000 rows in the middle of a release).

Honest axes: value axes start at zero (`zero=True`, Vega's rounded "nice" ticks), several data
points of one indicator share one axis, a target is drawn as a dashed line, Yes/No indicators are
never charted (the page shows the words), and comparisons between cities are direction-aware
(right is better), never bigger/smaller.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from functools import cache, lru_cache
from typing import Any

import altair as alt
import polars as pl

from kpis.benchmarking.scoring import group_order
from kpis.catalogue import Indicator
from publish.report.display import Directions, show
from publish.scores import BAND_COLORS, NO_BAND_COLOR

STATUS_ORDER = ["computed", "missing", "failed_check", "not_applicable"]
STATUS_COLORS = ["#2e7d32", "#bdbdbd", "#c62828", "#6d4c41"]
GROUP_ORDER = ["Economy", "Environment", "Society and Culture", "SDG 11"]
BAND_ORDER = ["<33", "33-66", "66-95", "95+"]
WIDTH = 520
MAX_CHART_ROWS = 2000  # far below Altair's 5,000: every chart is fed aggregates


def _spec(chart: Any) -> dict[str, Any]:
    """The chart's Vega-Lite spec, not validated by Altair here: validating was 13 of the 71 cpu s each
    release worker spent making 500 city pages (py-spy, 1,000 cities). The specs are the same either
    way; tests/test_publish_report_many.py validates every spec of its report's pages."""
    spec: dict[str, Any] = chart.to_dict(validate=False)
    return spec


class ChartTooBig(ValueError):
    """A chart was about to embed more rows than a report chart needs (a bug, not a data problem)."""


def _check_rows(name: str, rows: int) -> None:
    if rows > MAX_CHART_ROWS:
        raise ChartTooBig(f"report chart {name!r} would embed {rows} rows (at most {MAX_CHART_ROWS}): "
                          "aggregate before charting")


def group_name(indicator: Indicator) -> str:
    """The report's group of an indicator: its U4SSC dimension, or SDG 11."""
    return indicator.dimension if indicator.framework == "u4ssc" and indicator.dimension else "SDG 11"


def group_of(catalogue: Sequence[Indicator]) -> pl.DataFrame:
    return pl.DataFrame({"indicator_id": [i.id for i in catalogue],
                         "group": [group_name(i) for i in catalogue],
                         "indicator_name": [i.name for i in catalogue]})


def latest_year_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Each city's rows of its latest reporting year (cities may report different years)."""
    return frame.filter(pl.col("year") == pl.col("year").max().over("city_id"))


def _status_scale() -> alt.Scale:
    return alt.Scale(domain=STATUS_ORDER, range=STATUS_COLORS)


# ---- one city: trend per indicator, district map, bands -------------------------------------------


@cache
def _trend_template(multi: bool, has_target: bool) -> str:
    """The trend chart without data (built with Altair once, filled per indicator: thousands of charts
    per release must not each pay Altair's validation)."""
    tooltip = [alt.Tooltip("year:O"), alt.Tooltip("shown:N", title="value")]
    if multi:
        tooltip.insert(0, alt.Tooltip("data_point:N", title="data point"))
    encoding: dict[str, Any] = {
        "x": alt.X("year:O", title=None, axis=alt.Axis(labelAngle=0)),
        "y": alt.Y("value:Q", title=None, scale=alt.Scale(zero=True, nice=True), axis=alt.Axis(tickCount=5)),
        "tooltip": tooltip}
    if multi:
        encoding["color"] = alt.Color("data_point:N", title=None, legend=alt.Legend(orient="bottom", columns=3))
    layers: list[Any] = [alt.Chart(alt.NamedData("values")).mark_line(point=True).encode(**encoding)]
    if has_target:
        target = alt.Chart(alt.NamedData("targets"))
        layers.append(target.mark_rule(strokeDash=[5, 4], color="#333").encode(
            y="target:Q", tooltip=[alt.Tooltip("label:N", title="target")]))
        layers.append(target.mark_text(align="left", dx=3, dy=-5, fontSize=10, color="#333").encode(
            y="target:Q", x=alt.value(0), text="label:N"))
    chart = alt.layer(*layers).properties(width="container", height=150)
    return json.dumps(_spec(chart))


def trend(rows: Sequence[Mapping[str, Any]], unit: str | None,
          targets: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """One indicator of one city over the years: one line per data point on one zero-based axis, the
    target(s) as dashed lines. `rows`: year, value, data_point; `targets`: target, data_point. None
    with fewer than two years (a single value is printed, not charted)."""
    values = [r for r in rows if r["value"] is not None]
    if len({r["year"] for r in values}) < 2:
        return None
    _check_rows("trend", len(values) + len(targets))
    multi = len({r["data_point"] for r in values}) > 1
    spec = json.loads(_trend_template(multi, bool(targets)))
    spec["datasets"] = {
        "values": [{"year": r["year"], "value": r["value"], "data_point": r["data_point"] or "",
                    "shown": f"{show(r['value'], unit)} {unit or ''}".strip()} for r in values],
    }
    if targets:
        spec["datasets"]["targets"] = [{"target": t["target"], "label": (
            f"target{' ' + t['data_point'] if multi and t['data_point'] else ''}: {show(t['target'], unit)}")}
            for t in targets]
    return spec


@cache
def _district_map_template(reverse: bool) -> str:
    """The district map without data, title or legend title (built with Altair once, filled per map)."""
    chart = alt.Chart(alt.Data(values={"type": "FeatureCollection", "features": []},
                               format=alt.DataFormat(property="features"))).mark_geoshape(
        stroke="white", strokeWidth=1).encode(
        color=alt.Color("properties.value:Q", title="",
                        scale=alt.Scale(scheme="orangered", reverse=reverse, zero=False),
                        legend=alt.Legend(orient="bottom", gradientLength=200)),
        tooltip=[alt.Tooltip("properties.name:N", title="district"),
                 alt.Tooltip("properties.shown:N", title="value")],
    ).project(type="mercator").properties(width=280, height=240, title="")
    return json.dumps(_spec(chart))


def district_map(features: Sequence[dict[str, Any]], unit: str | None, direction: str | None,
                 title: str) -> dict[str, Any] | None:
    """District values on the district polygons (GeoJSON features with properties name, value, shown).
    Darker is worse when the direction is known; otherwise darker is higher."""
    if not features:
        return None
    _check_rows("district_map", len(features))
    legend = {"higher": "darker: worse (lower)", "lower": "darker: worse (higher)"}.get(direction or "",
                                                                                       "darker: higher")
    spec: dict[str, Any] = json.loads(_district_map_template(direction == "higher"))
    spec["encoding"]["color"]["title"] = f"{unit or ''}, {legend}"
    spec["title"] = title
    spec["data"]["values"]["features"] = list(features)
    return spec


@cache
def _kpi_bands_template() -> str:
    """The bands chart without its bars' rows or their order (built with Altair once, filled per city)."""
    rules = alt.Chart(pl.DataFrame({"share": [33.0, 66.0, 95.0]})).mark_rule(
        color="#666", strokeDash=[4, 3]).encode(x="share:Q")
    bars = alt.Chart(alt.NamedData("kpis")).mark_bar().encode(
        y=alt.Y("kpi:N", sort=[], title=None),
        x=alt.X("share:Q", title="share of target (%, capped at 100)", scale=alt.Scale(domain=[0, 100]),
                axis=alt.Axis(values=[0, 33, 66, 95, 100])),
        color=alt.Color("band:N", scale=_band_scale(), title="U4SSC band", sort=BAND_ORDER,
                        legend=alt.Legend(orient="bottom")),
        tooltip=["kpi:N", "name:N", "dimension:N", "value:N", "target:N", "unit:N",
                 alt.Tooltip("share:Q", format=".0f"), "points:Q", "band_label:N"],
    )
    return json.dumps(_spec(alt.layer(bars, rules).properties(width="container", height=alt.Step(14))))


def kpi_bands(kpis: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """One bar per scored KPI data point: its share of target (capped at 100 %) coloured by U4SSC band,
    with the band boundaries (33, 66, 95 %) as dashed rules. `kpis`: the snapshot's KPI items."""
    rows = [{"kpi": k["indicator_id"] + (f" [{k['data_point']}]" if k["data_point"] else ""),
             "name": k["name"], "dimension": k.get("dimension", ""), "share": k["share_capped_pct"], "band": k["band"],
             "band_label": k["band_label"], "points": k["points"], "value": show(k["value"], k["unit"]),
             "target": show(k["target"], k["unit"]), "unit": k["unit"] or ""} for k in kpis if k.get("band")]
    if not rows:
        return None
    _check_rows("kpi_bands", len(rows))
    spec: dict[str, Any] = json.loads(_kpi_bands_template())
    spec["layer"][0]["encoding"]["y"]["sort"] = [r["kpi"] for r in rows]
    spec["datasets"]["kpis"] = rows
    return spec


def _band_scale() -> alt.Scale:
    return alt.Scale(domain=BAND_ORDER, range=[BAND_COLORS[b] for b in BAND_ORDER])


# ---- the release overview: aggregates only ----------------------------------------------------------


def coverage(frame: pl.DataFrame, catalogue: Sequence[Indicator]) -> dict[str, Any] | None:
    """Indicator rows by status per dimension, all cities' latest years together (16 rows at most)."""
    rows = latest_year_rows(frame).join(group_of(catalogue), on="indicator_id", how="left")
    if rows.is_empty():
        return None
    counts = (rows.with_columns(pl.col("group").fill_null("SDG 11")).group_by("group", "status").len("rows")
              .with_columns(rank=pl.col("status").replace_strict(
                  {s: n for n, s in enumerate(STATUS_ORDER)}, default=len(STATUS_ORDER)))
              .sort("group", "rank"))
    _check_rows("coverage", counts.height)
    cities = frame["city_id"].n_unique()
    chart = alt.Chart(counts).mark_bar().encode(
        y=alt.Y("group:N", sort=GROUP_ORDER, title=None),
        x=alt.X("rows:Q", stack="zero",
                title=f"indicator rows, latest year of {cities} cit{'y' if cities == 1 else 'ies'}"),
        color=alt.Color("status:N", scale=_status_scale(), title="status", legend=alt.Legend(orient="bottom")),
        order=alt.Order("rank:Q"),
        tooltip=["group:N", "status:N", alt.Tooltip("rows:Q", format=",")],
    ).properties(width="container", height=120)
    return _spec(chart)


def score_distribution(rollups: pl.DataFrame) -> dict[str, Any] | None:
    """How the cities' dimension scores spread: cities per 10-point score bin and dimension (each city's
    latest year); 4 dimensions x 10 bins at most, whatever the number of cities."""
    latest = rollups.filter(pl.col("level") == "dimension", pl.col("score_pct").is_not_null(),
                            pl.col("year") == pl.col("year").max().over("city_id"))
    if latest.is_empty():
        return None
    binned = (latest.with_columns(low=(pl.col("score_pct").clip(0, 99.999) // 10 * 10).cast(pl.Int32))
              .group_by("dimension", "low").agg(pl.len().alias("cities"))
              .with_columns(high=pl.col("low") + 10).sort("dimension", "low"))
    _check_rows("score_distribution", binned.height)
    chart = alt.Chart(binned).mark_bar(stroke="white").encode(
        x=alt.X("low:Q", bin="binned", title="score, % of max. points",  # fits under a 150 px facet
                scale=alt.Scale(domain=[0, 100]), axis=alt.Axis(values=[0, 50, 100])),
        x2="high:Q",
        y=alt.Y("cities:Q", title="cities", scale=alt.Scale(zero=True), axis=alt.Axis(tickMinStep=1)),
        tooltip=["dimension:N", alt.Tooltip("low:Q", title="from %"), alt.Tooltip("high:Q", title="to %"),
                 "cities:Q"],
    ).properties(width=150, height=100).facet(facet=alt.Facet("dimension:N", title=None), columns=2)
    return _spec(chart)


def cities_side_by_side(frame: pl.DataFrame, directions: Directions, names: Mapping[str, str]) -> dict[str, Any] | None:
    """A few cities (the caller limits them) on each indicator with a direction: how far each city is from the
    average of these cities, in % of that average, signed so that right is better (lower-is-better indicators
    read the right way round). Equal values sit on the centre line; small differences stay small (a min-max
    scale would show 0.4699 against 0.4700 as worst against best). Beyond ±100 % the dot is pinned to the edge
    (the tooltip gives the values)."""
    if frame["city_id"].n_unique() < 2:
        return None
    latest = latest_year_rows(frame).filter(pl.col("status") == "computed", pl.col("value").is_not_null())
    rows = []
    for r in latest.iter_rows(named=True):
        direction = directions.of(r["city_id"], r["indicator_id"], r["data_point"])
        if direction is not None:
            rows.append({**{k: r[k] for k in ("city_id", "year", "indicator_id", "data_point", "value", "unit")},
                         "sign": 1.0 if direction == "higher" else -1.0, "direction": direction})
    if not rows:
        return None
    data = pl.DataFrame(rows).with_columns(
        kpi=pl.col("indicator_id") + pl.when(pl.col("data_point").is_not_null())
        .then(" [" + pl.col("data_point") + "]").otherwise(pl.lit("")))
    mean = pl.col("value").mean().over("kpi")
    data = data.filter(pl.col("kpi").count().over("kpi") > 1).with_columns(
        relative=pl.when(mean.abs() > 0).then(pl.col("sign") * (pl.col("value") - mean) / mean.abs())
        .otherwise(pl.lit(0.0)))
    if data.is_empty():
        return None
    _check_rows("cities_side_by_side", data.height)
    widest = float(data["relative"].abs().max() or 0.0)  # type: ignore[arg-type]
    edge = min(max(math.ceil(widest * 20) / 20, 0.05), 1.0)  # symmetric, rounded up to 5 %
    data = data.with_columns(
        position=pl.col("relative").clip(-edge, edge),
        city=pl.col("city_id").replace_strict(dict(names), default=pl.col("city_id")),
        shown=pl.struct("value", "unit").map_elements(lambda s: f"{show(s['value'], s['unit'])} {s['unit'] or ''}",
                                                      return_dtype=pl.String),
        better=pl.col("direction") + " is better").select("kpi", "city", "year", "shown", "better", "relative",
                                                          "position")
    zero = alt.Chart(pl.DataFrame({"position": [0.0]})).mark_rule(color="#888").encode(x="position:Q")
    dots = alt.Chart(data).mark_point(filled=True, size=60).encode(
        y=alt.Y("kpi:N", title=None, sort=alt.EncodingSortField("kpi")),
        x=alt.X("position:Q", title="← worse · difference from the average of these cities · better →",
                scale=alt.Scale(domain=[-edge, edge]), axis=alt.Axis(format="+.0%", tickCount=5)),
        color=alt.Color("city:N", title="city", legend=alt.Legend(orient="bottom", columns=3)),
        shape=alt.Shape("city:N", title="city"),
        tooltip=["kpi:N", "city:N", "year:O", alt.Tooltip("shown:N", title="value"), "better:N",
                 alt.Tooltip("relative:Q", title="vs. average (better +)", format="+.1%")],
    )
    return _spec(alt.layer(zero, dots).properties(width="container", height=alt.Step(13)))


def rollups_side_by_side(rollups: pl.DataFrame) -> dict[str, Any] | None:
    """Roll-up scores per dimension and sub-dimension, one column per city (each city's latest year),
    each cell coloured by its band and labelled with the score. The caller limits the cities."""
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
    _check_rows("rollups_side_by_side", rows.height)
    rank = group_order()
    order = [r["group"] for r in sorted(rows.unique("group_path").iter_rows(named=True),
                                        key=lambda r: rank.get(r["group_path"], len(rank)))]
    base = alt.Chart(rows).encode(x=alt.X("city:N", title=None, axis=alt.Axis(orient="top", labelAngle=0)),
                                  y=alt.Y("group:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)))
    scale = alt.Scale(domain=[*BAND_ORDER, "N/A"], range=[*(BAND_COLORS[b] for b in BAND_ORDER), NO_BAND_COLOR])
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color("band:N", scale=scale, title="U4SSC band", legend=alt.Legend(orient="bottom")),
        tooltip=["city:N", "group_path:N", alt.Tooltip("score_pct:Q", format=".0f"), "band:N",
                 "n_scored_kpis:Q", "n_kpis:Q"])
    text = base.mark_text(fontSize=11).encode(text="label:N")
    return _spec(alt.layer(cells, text).properties(width=alt.Step(110), height=alt.Step(20)))


QUALITY_STATUSES = ["passed", "warned", "failed", "skipped"]
QUALITY_COLORS = ["#2e7d32", "#f9a825", "#c62828", "#bdbdbd"]


def quality(summary: Any) -> dict[str, Any] | None:
    """The manifest's quality summary (checks run, passed, warned, failed, skipped) as one bar."""
    if not isinstance(summary, dict):
        return None
    counts = tuple((k, summary[k]) for k in QUALITY_STATUSES
                   if isinstance(summary.get(k), int) and not isinstance(summary.get(k), bool) and summary[k] > 0)
    if not counts:
        return None
    return copy.deepcopy(_quality_bar(counts))


@lru_cache(maxsize=256)
def _quality_bar(counts: tuple[tuple[str, int], ...]) -> dict[str, Any]:
    """Built once per distinct set of counts: the cities of a release mostly share them, and Altair
    takes milliseconds per chart (0.8 s for a 100-city release's pages)."""
    rows = [{"status": k, "checks": n, "rank": QUALITY_STATUSES.index(k)} for k, n in counts]
    chart = alt.Chart(pl.DataFrame(rows)).mark_bar().encode(
        x=alt.X("checks:Q", stack="zero", title="quality checks"),
        color=alt.Color("status:N", scale=alt.Scale(domain=QUALITY_STATUSES, range=QUALITY_COLORS), title=None,
                        legend=alt.Legend(orient="bottom")),
        order=alt.Order("rank:Q"), tooltip=["status:N", "checks:Q"]).properties(width="container", height=28)
    return _spec(chart)


def embedded_rows(spec: Mapping[str, Any]) -> int:
    """How many data rows a spec embeds (all inline datasets and values): what the tests bound."""
    total = 0
    stack: list[Any] = [copy.deepcopy(dict(spec))]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "datasets" and isinstance(value, dict):
                    total += sum(len(v) for v in value.values() if isinstance(v, list))
                elif key == "values" and isinstance(value, list):
                    total += len(value)
                elif key == "values" and isinstance(value, dict) and isinstance(value.get("features"), list):
                    total += len(value["features"])
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return total
