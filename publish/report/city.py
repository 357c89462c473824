"""One city's report page: what an officer writing a Voluntary Local Review reads, with the working shown.

Order: title with city and years, table of contents, the City Snapshot (U4SSC bands, roll-ups,
progress towards the SDG 11 targets), year over year (coloured better / worse by each indicator's
direction, arrows only beyond a meaningful change: see display.py), then one section per indicator
(value, unit, trend chart with its target, target and band, formula, the inputs with their source
records, caveats, a district map where the indicator has district values), quality, and links to
the release's files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import polars as pl

from kpis.catalogue import Indicator
from publish import City, PublishContext
from publish.pieces import PieceJob
from publish.report import charts, sections
from publish.report.display import (
    TREND_MIN_RELATIVE,
    Directions,
    arrow,
    is_yes_no,
    show,
    verdict,
)
from publish.report.page import Page, band_cell, esc, slug, table

MAX_INPUT_ROWS = 60  # per indicator on the page; the rest are counted and left to kpi_values.parquet
MAX_MAPS = 4  # district maps per indicator (one per data point)


@dataclass(frozen=True)
class CityData:
    """One city's slice of the release, cut once so that a release of many cities stays linear."""

    city: City
    rows: pl.DataFrame  # the city's kpi_values rows (release frame columns)
    scores: pl.DataFrame | None = None
    rollups: pl.DataFrame | None = None
    progress: pl.DataFrame | None = None
    areas: Mapping[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # area id -> (name, GeoJSON)


@cache
def indicator_anchor(indicator_id: str) -> str:
    return "ind-" + slug(indicator_id)


def _years_text(years: Sequence[int]) -> str:
    if not years:
        return "no year"
    return str(years[0]) if years[0] == years[-1] else f"{years[0]}–{years[-1]}"


def _snapshot(page: Page, data: CityData) -> dict[tuple[str, str], dict[str, Any]]:
    """The City Snapshot section; returns the progress items by (indicator, data point) for the indicator
    sections."""
    from kpis.benchmarking.snapshot import city_snapshot

    page.add('<section id="city-snapshot"><h2>City Snapshot: U4SSC scores and progress towards 2030</h2>')
    page.add(sections.disclaimer())
    scores, rollups, progress = data.scores, data.rollups, data.progress
    if scores is None or rollups is None or progress is None or rollups.is_empty():
        page.add('<p class="note">This release holds no scores for this city (the run computed no '
                 "benchmarking).</p></section>")
        return {}
    snap = city_snapshot(scores.filter(pl.col("status") == "scored"), rollups, progress,
                         excluded=scores.filter(pl.col("status") == "excluded"), city_id=data.city.id)
    kpis, rollup_table, kpi_table = sections.snapshot_tables(snap)
    city = esc(data.city.id)
    page.add(f'<div class="city-snapshot" id="snapshot-{city}" data-city="{city}">'
             f"<p>Latest year with scores: <strong>{snap['year']}</strong>. Each U4SSC KPI with a value and a "
             "target is scored by its share of the target; a dimension's score is its points over 4 × its "
             "scored KPIs.</p>" + sections.snapshot_legend())
    page.add("<h3>Roll-ups per dimension</h3>" + rollup_table)
    page.add(f"<h3>Bands per KPI ({len(kpis)} scored, {len(snap['excluded'])} without a target)</h3>")
    page.chart(f"bands-{data.city.id}", charts.kpi_bands(kpis), "No KPI of this city and year could be scored.")
    page.add("<details><summary>Scored KPIs with their targets</summary>" + kpi_table + "</details>")
    page.add(f"<details><summary>KPIs not scored and why ({len(snap['excluded'])})</summary>"
             + sections.excluded_table(snap["excluded"]) + "</details>")
    page.add("<h3>Progress towards the targets: SDG 11 indicators</h3>"
             "<p>The growth rate since the first year from 2015 against the rate needed to reach the target by "
             "its deadline (UN method).</p>")
    page.add(sections.progress_table(snap["progress"], link=indicator_anchor) if snap["progress"]
             else '<p class="note">No SDG 11 indicator has a progress assessment.</p>')
    page.add("</div></section>")
    return {(p["indicator_id"], p["data_point"] or ""): p for p in snap["progress"]}


def _series(rows: pl.DataFrame) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Rows per (indicator, data point), sorted by year."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows.sort("year").iter_rows(named=True):
        out.setdefault((r["indicator_id"], r["data_point"] or ""), []).append(r)
    return out


def _year_over_year(page: Page, data: CityData, series: Mapping[tuple[str, str], list[dict[str, Any]]],
                    directions: Directions, names: Mapping[str, str]) -> None:
    years = sorted({int(y) for y in data.rows["year"].unique()})
    page.add('<section id="year-over-year"><h2>Year over year</h2>'
             "<p>Each computed value against the year before: "
             '<span class="yoy-better">&nbsp;better&nbsp;</span> / <span class="yoy-worse">&nbsp;worse&nbsp;</span> '
             "by the indicator's direction (higher or lower is better), "
             '<span class="yoy-up">&nbsp;↑ / ↓&nbsp;</span> where no direction is set, '
             f'<span class="yoy-same">&nbsp;→&nbsp;</span> for changes under {TREND_MIN_RELATIVE:.0%} '
             "(no meaningful change).</p>")
    if len(years) < 2:
        page.add('<p class="note">One reporting year: nothing to compare.</p></section>')
        return
    head = "".join(f"<th>{y}</th>" for y in years)
    body = []
    for (ind, point), rows in series.items():
        by_year = {r["year"]: r for r in rows if r["status"] == "computed" and r["value"] is not None}
        if len(by_year) < 2:
            continue
        direction = directions.of(data.city.id, ind, point or None)
        cells = []
        for n, year in enumerate(years):
            row = by_year.get(year)
            if row is None:
                cells.append('<td class="num">–</td>')
                continue
            before = by_year.get(years[n - 1]) if n else None
            old = before["value"] if before else None
            mark = verdict(old, row["value"], direction) if before else None
            tip = f' title="{esc(mark)} than {years[n - 1]}"' if mark in ("better", "worse") else ""
            cls = f"num yoy-{mark}" if mark and mark != "new" else "num"
            cells.append(f'<td class="{cls}"{tip}>{esc(show(row["value"], row["unit"]))} '
                         f"{esc(arrow(old, row['value']))}</td>")
        label = f'<a href="#{indicator_anchor(ind)}">{esc(ind)}</a>{" " + esc(point) if point else ""}'
        body.append(f'<tr><td title="{esc(names.get(ind, ""))}">{label}</td><td>{esc(rows[-1]["unit"])}</td>'
                    f"<td>{esc(directions.word(data.city.id, ind, point or None))}</td>{''.join(cells)}</tr>")
    page.add(f'<div class="scroll"><table><thead><tr><th>indicator</th><th>unit</th><th>better</th>{head}</tr>'
             f"</thead><tbody>{''.join(body)}</tbody></table></div></section>")


def _inputs(rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    found: list[dict[str, Any]] = []
    for row in rows:
        try:
            items = json.loads(row["inputs"]) if row["inputs"] else []
        except (TypeError, ValueError):
            items = []
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                found.append({**item, "_data_point": row["data_point"] or ""})
    return found, len(found)


def _inputs_table(items: Sequence[dict[str, Any]], total: int) -> str:
    shown = items[:MAX_INPUT_ROWS]
    rows = []
    for i in shown:
        value = i.get("value")
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        rows.append([i.get("variable"), i.get("data_point") or i["_data_point"],
                     f"{i.get('area_type', '')} {i.get('area_id', '')}".strip(), number, i.get("unit"),
                     i.get("source_id"), i.get("snapshot_id"), i.get("source_record")])
    note = (f'<p class="note">{total - len(shown)} more inputs are not listed here; kpi_values.parquet (column '
            "<code>inputs</code>) holds all of them.</p>" if total > len(shown) else "")
    return table(["variable", "data point", "area", "value", "unit", "source", "snapshot", "source record"],
                 rows, numeric=(3,)) + note


def _base_name(expression: str | None) -> str | None:
    match = re.match(r"\s*([A-Za-z_]\w*)", expression or "")
    return match.group(1) if match else None


def _maps(page: Page, indicator: Indicator, data: CityData, latest: Sequence[dict[str, Any]],
          direction_of: Callable[[str | None], str | None]) -> None:
    """District maps of the latest year's district values of an area-weighted indicator."""
    compute = indicator.compute
    if compute is None or compute.kind != "population_weighted_mean" or not data.areas:
        return
    variable, weight = _base_name(compute.variable), _base_name(compute.weight)
    drawn = 0
    maps = []
    for row in latest:
        if drawn >= MAX_MAPS or row["status"] != "computed":
            continue
        items, _ = _inputs([row])
        features = []
        for item in items:
            if (item.get("area_type") == compute.area_type and item.get("variable") == variable != weight
                    and item.get("area_id") in data.areas and isinstance(item.get("value"), int | float)):
                name, geometry = data.areas[item["area_id"]]
                features.append({"type": "Feature", "geometry": geometry, "properties": {
                    "name": name or item["area_id"], "value": item["value"],
                    "shown": f"{show(float(item['value']), row['unit'])} {row['unit'] or ''}".strip()}})
        point = row["data_point"] or ""
        spec = charts.district_map(features, row["unit"], direction_of(point or None),
                                   f"{indicator.id} {point} {row['year']}".strip())
        if spec is not None:
            maps.append((f"map-{slug(indicator.id)}-{slug(point or 'all')}", spec))
            drawn += 1
    if maps:
        page.add(f"<h4>By {esc(compute.area_type)}</h4><p>The {esc(compute.area_type)} values this indicator "
                 "averages (weighted by population), on the district boundaries.</p><div class=\"maps\">")
        for name, spec in maps:
            page.chart(name, spec, "")
        page.add("</div>")


def _target_text(score: dict[str, Any] | None, prog: dict[str, Any] | None, unit: str | None) -> str:
    """The target in force: the score's (U4SSC KPIs) or the progress assessment's (SDG 11)."""
    source = score if score and score.get("target") is not None else prog
    if not source or source.get("target") is None:
        return "no target in force"
    return f"{show(source['target'], unit)} by {source.get('deadline') or '–'}"


def _target_sources(scores: Sequence[dict[str, Any]]) -> list[str]:
    return sorted({str(s["target_citation"]) for s in scores if s.get("target_citation")})


def _indicator(page: Page, indicator: Indicator, data: CityData, own: Mapping[str, list[dict[str, Any]]],
               scores: Mapping[tuple[str, str], dict[str, Any]], progress: Mapping[tuple[str, str], dict[str, Any]],
               directions: Directions) -> None:
    if not own:
        return
    latest_year = max(r["year"] for rows in own.values() for r in rows)
    latest = [next((r for r in rows if r["year"] == latest_year), rows[-1]) for rows in own.values()]
    unit = latest[0]["unit"] or indicator.unit
    anchor = indicator_anchor(indicator.id)
    page.add(f'<section class="indicator" id="{anchor}" data-indicator="{esc(indicator.id)}">'
             f"<h3>{esc(indicator.id)} {esc(indicator.name)}</h3>")
    if indicator.definition:
        page.add(f"<p>{esc(indicator.definition)}</p>")

    def direction_of(point: str | None) -> str | None:
        return directions.of(data.city.id, indicator.id, point)

    if len(latest) == 1 and latest[0]["status"] == "computed":
        row = latest[0]
        page.add(f'<p class="big">{esc(show(row["value"], unit))} <small>{esc(unit)}</small> '
                 f'<span class="meta">({latest_year})</span></p>')
    header = ["data point", "year", "value", "status", "change on the year before", "target", "band", "progress"]
    body = []
    for row in latest:
        point = row["data_point"] or ""
        rows = own[point]
        before = next((r for r in reversed(rows) if r["year"] < row["year"] and r["status"] == "computed"), None)
        old = before["value"] if before else None
        mark = verdict(old, row["value"], direction_of(point or None)) if row["status"] == "computed" else None
        change = "" if mark in (None, "new") else (
            "no meaningful change" if mark == "same" else f"{mark} ({show(old, unit)} in {before['year']})"
            if before else mark)
        score = scores.get((indicator.id, point))
        prog = progress.get((indicator.id, point))
        status = row["status"] + (f": {row['status_reason']}" if row["status"] != "computed"
                                  and row["status_reason"] else "")
        body.append(f"<tr><td>{esc(point or '–')}</td><td>{row['year']}</td>"
                    f'<td class="num">{esc(show(row["value"], unit))}</td>'
                    f'<td class="status-{esc(row["status"])}">{esc(status)}</td>'
                    f'<td class="verdict-{esc(mark or "none")}">{esc(arrow(old, row["value"]))} {esc(change)}</td>'
                    f"<td>{esc(_target_text(score, prog, unit))}</td>"
                    + (band_cell(score.get("band"), score.get("band_label") or "N/A") if score else "<td>N/A</td>")
                    + f"<td>{esc(prog['arrow'] + ' ' + (prog['label'] or '')) if prog else ''}</td></tr>")
    page.add('<div class="scroll"><table><thead><tr>' + "".join(f"<th>{h}</th>" for h in header)
             + "</tr></thead><tbody>" + "".join(body) + "</tbody></table></div>")

    if is_yes_no(unit):
        words = "; ".join(f"{(p + ' ') if p else ''}{r['year']}: {show(r['value'], unit)}"
                          for p, rows in own.items() for r in rows if r["status"] == "computed")
        if words:
            page.add(f"<p>Yes/No by year: {esc(words)}.</p>")
    else:
        chart_rows = [{"year": r["year"], "value": r["value"], "data_point": p}
                      for p, rows in own.items() for r in rows if r["status"] == "computed"]
        targets = []
        for point in own:
            found = [t for t in ((scores.get((indicator.id, point)) or {}).get("target"),
                                 (progress.get((indicator.id, point)) or {}).get("target")) if t is not None]
            if found:
                targets.append({"target": found[0], "data_point": point})
        page.chart(f"trend-{slug(indicator.id)}", charts.trend(chart_rows, unit, targets), "")
    _maps(page, indicator, data, latest, direction_of)

    formulas = sorted({(r["formula"], r["formula_version"]) for r in latest if r["formula"]})
    better = "; ".join(dict.fromkeys(
        (f"{r['data_point']}: " if indicator.data_point_directions and r["data_point"] else "")
        + directions.word(data.city.id, indicator.id, r["data_point"]) for r in latest))
    facts = [("Unit", esc(unit)), ("Better", esc(better + (f". {indicator.direction_note}"
                                                          if indicator.direction_note else "")))]
    for text, version in formulas:
        facts.append(("Formula", f"<code>{esc(text)}</code> (version {esc(version)})"))
    if indicator.formula_text:
        facts.append(("Methodology", esc(indicator.formula_text)))
    cited = _target_sources([s for (i, p), s in scores.items() if i == indicator.id and p in own])
    if cited:
        facts.append(("Target source", "<br>".join(esc(c) for c in cited)))
    caveats = sorted({r["status_reason"] for r in latest if r["status"] == "computed" and r["status_reason"]})
    if indicator.compute and indicator.compute.note:
        caveats.append(indicator.compute.note)
    confidence = sorted({str(r["confidence"]) for r in latest if r.get("confidence")}) or (
        [indicator.confidence] if indicator.confidence else [])
    if confidence:
        caveats.append("confidence: " + ", ".join(confidence))
    if caveats:
        facts.append(("Caveats", "<br>".join(esc(c) for c in caveats)))
    page.add('<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>")
    items, total = _inputs(latest)
    if items:
        page.add(f"<details><summary>Inputs of {latest_year} with their source records ({total})</summary>"
                 + _inputs_table(items, total) + "</details>")
    page.add("</section>")


@dataclass(frozen=True)
class _Layout:
    names: dict[str, str]
    series: dict[tuple[str, str], list[dict[str, Any]]]
    per_indicator: dict[str, dict[str, list[dict[str, Any]]]]
    by_group: dict[str, list[Indicator]]
    ordered: list[str]


def _layout(data: CityData, catalogue: Sequence[Indicator]) -> _Layout:
    """The city's indicators by group, in the page's order."""
    series = _series(data.rows)
    per_indicator: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for (ind, point), rows in series.items():
        per_indicator.setdefault(ind, {})[point] = rows
    by_group, ordered = _grouped(set(per_indicator), catalogue)
    return _Layout({i.id: i.name for i in catalogue}, series, per_indicator, by_group, ordered)


def _grouped(indicator_ids: set[str], catalogue: Sequence[Indicator]) -> tuple[dict[str, list[Indicator]], list[str]]:
    """These indicators by group (catalogue order within a group), and the groups in the page's order."""
    by_group: dict[str, list[Indicator]] = {}
    for indicator in catalogue:
        if indicator.id in indicator_ids:
            by_group.setdefault(charts.group_name(indicator), []).append(indicator)
    return by_group, [g for g in charts.GROUP_ORDER if g in by_group]


def city_body(data: CityData, catalogue: Sequence[Indicator], directions: Directions) -> Page:
    """The page's body: the City Snapshot, year over year, one section per indicator (the costly charts).
    It names no release, so an unchanged city's body is reused by the next release (publish/pieces.py)."""
    layout = _layout(data, catalogue)
    part = Page()
    progress = _snapshot(part, data)
    _year_over_year(part, data, layout.series, directions, layout.names)
    scores: dict[tuple[str, str], dict[str, Any]] = {}
    if data.scores is not None and not data.scores.is_empty():
        latest_scores = data.scores.filter(pl.col("year") == pl.col("year").max())
        scores = {(r["indicator_id"], r["data_point"] or ""): r for r in latest_scores.iter_rows(named=True)}
    for group in layout.ordered:
        part.add(f'<section id="group-{slug(group)}"><h2>{esc(group)}</h2>')
        for indicator in layout.by_group[group]:
            _indicator(part, indicator, data, layout.per_indicator.get(indicator.id, {}), scores, progress,
                       directions)
        part.add("</section>")
    return part


def city_body_bytes(data: CityData, catalogue: Sequence[Indicator], directions: Directions) -> bytes:
    """city_body as stored bytes (what a worker process makes)."""
    return city_body(data, catalogue, directions).to_bytes()


BODY = "report_city_body"  # the piece cache's kind of a city page's body


def body_job(data: CityData, catalogue: Sequence[Indicator], directions: Directions, catalogue_digest: str) -> PieceJob:
    """The piece of a city's page body: its key's parts are everything city_body reads besides the code (in
    the cache's salt): the catalogue, the city's facts, rows, scores, roll-ups, progress, district shapes
    and its own comparison directions."""
    city = data.city
    own = {k: v for k, v in directions.per_city.items() if k[0] == city.id}
    facts = json.dumps([city.id, city.name, city.country, list(city.reporting_years),
                        sorted((k[1], k[2], v) for k, v in own.items()),
                        sorted(data.areas.items())], ensure_ascii=False, sort_keys=True, default=str)
    # The worker gets only this city's directions (a release of many cities has thousands).
    mine = Directions(directions.catalogue, own)
    return PieceJob(city.id, (catalogue_digest, facts, data.rows, data.scores, data.rollups, data.progress),
                    city_body_bytes, (data, catalogue, mine))


def city_page(data: CityData, catalogue: Sequence[Indicator], context: PublishContext, directions: Directions,
              files: Sequence[sections.FileLink], *, root: str, overview: str | None,
              body: Page | None = None) -> tuple[str, Page]:
    """The page and its title. `root`: the release folder relative to the page ("" or "../");
    `overview`: the link back to the release overview, None when this page is the only one; `body`: the
    city's body when the caller made it (else made here)."""
    page = Page()
    city = data.city
    years = sorted({int(y) for y in data.rows["year"].unique()})
    title = f"{city.name}: city indicators {_years_text(years)}"
    # The contents list needs only which indicators the city has (the body, made or kept, has the rest).
    by_group, ordered = _grouped(set(data.rows["indicator_id"].unique().to_list()), catalogue)

    back = f' · <a href="{esc(overview)}">Release overview (all cities)</a>' if overview else ""
    page.add(f"<header><h1>{esc(title)}</h1><p class=\"meta\">{esc(city.name)} ({esc(city.id)})"
             f"{', ' + esc(city.country) if city.country else ''}. U4SSC KPIs (ITU-T Y.4903) and SDG 11 indicators, "
             f"{data.rows.height} indicator rows. Release {esc(context.release_id or '')}, created "
             f"{esc(context.created_at or '')}{back}.</p></header>")
    toc = ['<li><a href="#city-snapshot">City Snapshot</a></li>',
           '<li><a href="#year-over-year">Year over year</a></li>']
    for group in ordered:
        inner = "".join(f'<li><a href="#{indicator_anchor(i.id)}">{esc(i.id)} {esc(i.name)}</a></li>'
                        for i in by_group[group])
        toc.append(f'<li><a href="#group-{slug(group)}">{esc(group)}</a> <details><summary>'
                   f"{len(by_group[group])} indicators</summary><ol>{inner}</ol></details></li>")
    toc += ['<li><a href="#quality">Quality checks</a></li>', '<li><a href="#files">Files of this release</a></li>',
            '<li><a href="#reading">How to read this report</a></li>']
    page.add(f'<nav class="toc" aria-label="Contents"><strong>Contents</strong><ol>{"".join(toc)}</ol></nav>')
    if body is None:
        pieces = context.pieces
        body = city_body(data, catalogue, directions) if pieces is None else Page.from_bytes(
            pieces.get_many(BODY, [body_job(data, catalogue, directions,
                                                            pieces.catalogue_digest(catalogue))])[0])
    page.extend(body)
    sections.quality_section(page, sections.quality_for(context.quality, city.id),
                             sections.data_docs_link(context, root))
    sections.files_section(page, files, root)
    page.add(READING)
    return title, page


READING = f"""<section id="reading"><h2>How to read this report</h2><ul>
<li>Values are rounded to 3 significant digits for reading; the data files keep full precision.</li>
<li>Yes/No indicators are shown as words (1 = Yes, 0 = No).</li>
<li>A change from one year to the next counts only when it is at least {TREND_MIN_RELATIVE:.0%} of the larger
value and visible after rounding; smaller changes show → (no meaningful change).</li>
<li>Better and worse follow each indicator's direction in the catalogue (docs/indicators.md): for
PM2.5 or disaster deaths lower is better, so a fall is coloured green. Target bands (e.g. equal pay at a
ratio of 1) and context figures have no better side: their changes show ↑ / ↓.</li>
<li>Charts start at zero; an indicator's data points share one axis; dashed lines are targets.</li>
</ul></section>"""
