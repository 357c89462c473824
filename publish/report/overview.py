"""The release overview (report.html when the release holds several cities): small at any city count.

It holds aggregates only: coverage per dimension, how the dimension scores spread (binned),
direction-aware rankings (best, median and worst city per indicator, by each indicator's
direction), one row per city with a link to its page, and, for a handful of cities
(`SIDE_BY_SIDE_MAX`), the cities side by side. Each city's detail lives on its own page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from kpis.catalogue import Indicator
from publish import City, PublishContext
from publish.changes import diff_frames
from publish.report import charts, sections
from publish.report.display import Directions, better_word, show
from publish.report.page import Page, band_cell, esc, table

SIDE_BY_SIDE_MAX = 12  # cities drawn side by side; more cities get distributions and rankings only
CITY_TABLE_OPEN_MAX = 100  # more cities: the table of all cities is folded
RANKED_PER_END = 5  # best and worst cities listed per dimension


def _title(cities: Sequence[City], years: Sequence[int]) -> str:
    span = "no year" if not years else (str(years[0]) if years[0] == years[-1] else f"{years[0]}–{years[-1]}")
    if len(cities) <= 3:
        names = " and ".join(c.name for c in cities) if len(cities) < 3 else \
            f"{cities[0].name}, {cities[1].name} and {cities[2].name}"
    else:
        names = f"{len(cities):,} cities"
    return f"{names}: city indicators {span}"


def _cities_table(frame: pl.DataFrame, rollups: pl.DataFrame | None, cities: Sequence[City],
                  links: Mapping[str, str]) -> str:
    latest = charts.latest_year_rows(frame)
    counts = {r["city_id"]: r for r in latest.group_by("city_id").agg(
        pl.col("year").first(), pl.len().alias("rows"), (pl.col("status") == "computed").sum().alias("computed"))
        .iter_rows(named=True)}
    dims: list[str] = []
    scores: dict[tuple[str, str], dict[str, Any]] = {}
    if rollups is not None and not rollups.is_empty():
        level = rollups.filter(pl.col("level") == "dimension", pl.col("year") == pl.col("year").max().over("city_id"))
        dims = [d for d in charts.GROUP_ORDER if d in set(level["dimension"].to_list())]
        scores = {(r["city_id"], r["dimension"]): r for r in level.iter_rows(named=True)}
    head = "".join(f"<th>{esc(h)}</th>" for h in ["city", "country", "latest year", "computed", *dims])
    body = []
    for city in cities:
        c = counts.get(city.id)
        share = f"{c['computed']} of {c['rows']}" if c else "–"
        cells = "".join(band_cell(scores[(city.id, d)]["band"], "N/A" if scores[(city.id, d)]["score_pct"] is None
                                  else f"{scores[(city.id, d)]['score_pct']:.0f} %")
                        if (city.id, d) in scores else "<td>–</td>" for d in dims)
        body.append(f'<tr><td><a href="{esc(links[city.id])}">{esc(city.name)}</a> <span class="meta">'
                    f"({esc(city.id)})</span></td><td>{esc(city.country)}</td>"
                    f"<td class=\"num\">{c['year'] if c else '–'}</td><td class=\"num\">{esc(share)}</td>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _coverage_table(frame: pl.DataFrame, catalogue: Sequence[Indicator]) -> str:
    rows = charts.latest_year_rows(frame).join(charts.group_of(catalogue), on="indicator_id", how="left")
    counts = rows.with_columns(pl.col("group").fill_null("SDG 11")).group_by("group").agg(
        *(pl.col("status").eq(s).sum().alias(s) for s in charts.STATUS_ORDER), pl.len().alias("rows"))
    order = {g: n for n, g in enumerate(charts.GROUP_ORDER)}
    counts = counts.sort(pl.col("group").replace_strict(order, default=9))
    return table(["group", *charts.STATUS_ORDER, "rows", "computed"],
                 [[r["group"], *(r[s] for s in charts.STATUS_ORDER), r["rows"],
                   f"{100 * r['computed'] / r['rows']:.0f} %" if r["rows"] else ""]
                  for r in counts.iter_rows(named=True)], numeric=range(1, 7))


def _dimension_rankings(rollups: pl.DataFrame, names: Mapping[str, str], links: Mapping[str, str]) -> str:
    level = rollups.filter(pl.col("level") == "dimension", pl.col("score_pct").is_not_null(),
                           pl.col("year") == pl.col("year").max().over("city_id"))
    parts = []
    for dim in [d for d in charts.GROUP_ORDER if d in set(level["dimension"].to_list())]:
        # Equal scores share a rank (competition ranking: 1, 1, 3), and the list says how many share it: among
        # many cities hundreds may tie, and an order by city id would rank them for no reason.
        ranked = level.filter(pl.col("dimension") == dim).with_columns(
            pl.col("score_pct").rank("min", descending=True).cast(pl.Int64).alias("rank"),
            pl.len().over("score_pct").alias("sharing")).sort("score_pct", "city_id", descending=[True, False])
        n = ranked.height

        def item(r: dict[str, Any]) -> str:
            shared = f" (shared by {r['sharing']:,} cities)" if r["sharing"] > 1 else ""
            return (f'<li value="{r["rank"]}"><a href="{esc(links.get(r["city_id"], "#"))}">'
                    f"{esc(names.get(r['city_id'], r['city_id']))}</a>: {r['score_pct']:.0f} %{shared}</li>")

        rows = list(ranked.iter_rows(named=True))
        if n <= 2 * RANKED_PER_END:
            body = f"<ol>{''.join(item(r) for r in rows)}</ol>"
        else:
            body = (f"<p>Highest scores:</p><ol>{''.join(item(r) for r in rows[:RANKED_PER_END])}</ol>"
                    f"<p>Lowest scores:</p><ol>{''.join(item(r) for r in rows[-RANKED_PER_END:])}</ol>")
        parts.append(f"<div><h3>{esc(dim)} ({n} cities scored)</h3>{body}</div>")
    return "".join(parts)


def _indicator_rankings(frame: pl.DataFrame, catalogue: Sequence[Indicator], directions: Directions,
                        names: Mapping[str, str]) -> str:
    """Best, median and worst city per indicator with a direction: best means best by that direction."""
    latest = charts.latest_year_rows(frame).filter(pl.col("status") == "computed", pl.col("value").is_not_null())
    indicator_names = {i.id: i.name for i in catalogue}
    rows = []
    for (ind, point), part in sorted(latest.group_by("indicator_id", "data_point"),
                                     key=lambda kv: (str(kv[0][0]), str(kv[0][1] or ""))):
        point_text = str(point) if point is not None else None
        direction = directions.side(str(ind), point_text)
        if direction is None or part.height < 2:
            continue
        ordered = part.sort("value", "city_id", descending=[direction == "higher", False])
        best, worst = ordered.row(0, named=True), ordered.row(-1, named=True)
        unit = best["unit"]

        def end(r: dict[str, Any], unit: str = unit, part: pl.DataFrame = part) -> str:
            """The city at one end, and how many others share its value (then it is best or worst with them)."""
            others = int((part["value"] == r["value"]).sum()) - 1
            more = f" and {others:,} more" if others else ""
            return f"{names.get(r['city_id'], r['city_id'])}{more}: {show(r['value'], unit)}"

        rows.append([str(ind), indicator_names.get(str(ind), ""), point_text or "", unit, better_word(direction),
                     part.height, end(best), show(float(part["value"].median()), unit),  # type: ignore[arg-type]
                     end(worst)])
    if not rows:
        return '<p class="note">No indicator with a direction has values for two or more cities.</p>'
    return table(["indicator", "name", "data point", "unit", "better", "cities", "best", "median", "worst"], rows,
                 numeric=(5, 7))


def _values_table(frame: pl.DataFrame, catalogue: Sequence[Indicator]) -> str:
    """Latest-year values, one column per city: the side-by-side comparison as numbers (rounded)."""
    names = {i.id: i.name for i in catalogue}
    latest = charts.latest_year_rows(frame).filter(pl.col("status") == "computed")
    if latest.is_empty():
        return '<p class="note">No computed values.</p>'
    cities = sorted(latest["city_id"].unique())
    year_of = {r["city_id"]: r["year"] for r in latest.select("city_id", "year").unique().iter_rows(named=True)}
    wide: dict[tuple[str, str], dict[str, Any]] = {}
    for r in latest.sort("framework", "indicator_id", "data_point", nulls_last=False).iter_rows(named=True):
        item = wide.setdefault((r["indicator_id"], r["data_point"] or ""), {"unit": r["unit"]})
        item[r["city_id"]] = show(r["value"], r["unit"])
    header = ["indicator", "name", "data point", "unit", *(f"{c} ({year_of[c]})" for c in cities)]
    rows = [[k[0], names.get(k[0], ""), k[1], v["unit"], *(v.get(c, "–") for c in cities)] for k, v in wide.items()]
    return table(header, rows, numeric=range(4, 4 + len(cities)))


def overview_page(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext,
                  directions: Directions, links: Mapping[str, str], files: Sequence[sections.FileLink],
                  rollups: pl.DataFrame | None) -> tuple[str, Page]:
    page = Page()
    cities = list(context.cities)
    names = {c.id: c.name for c in cities}
    years = sorted({int(y) for y in frame["year"].unique()})
    title = _title(cities, years)
    few = len(cities) <= SIDE_BY_SIDE_MAX
    page.add(f"<header><h1>{esc(title)}</h1><p class=\"meta\">Release overview: {len(cities):,} cities, "
             f"years {esc(', '.join(map(str, years)))}, {frame.height:,} indicator rows (U4SSC KPIs and SDG 11 "
             f"indicators, one per data point and year). Release {esc(context.release_id or '')}, created "
             f"{esc(context.created_at or '')}. Each city has its own page with the working shown.</p></header>")
    toc = [("cities", "Cities"), ("coverage", "Coverage per dimension"), ("scores", "U4SSC scores across the cities"),
           ("rankings", "Rankings per indicator")]
    if few and len(cities) > 1:
        toc.append(("side-by-side", "Cities side by side"))
    toc += [("previous", "Against the previous release"), ("quality", "Quality checks"),
            ("files", "Files of this release")]
    page.add('<nav class="toc" aria-label="Contents"><strong>Contents</strong><ol>'
             + "".join(f'<li><a href="#{a}">{esc(t)}</a></li>' for a, t in toc) + "</ol></nav>")

    cities_table = _cities_table(frame, rollups, cities, links)
    if len(cities) > CITY_TABLE_OPEN_MAX:  # a national overview opens on its aggregates; the list is a click away
        cities_table = (f"<details><summary>All {len(cities):,} cities (each links to its page)</summary>"
                        f"{cities_table}</details>")
    page.add('<section id="cities"><h2>Cities</h2><p>Each city\'s latest year: computed indicator rows and the '
             "U4SSC dimension scores (not the official U4SSC benchmark: see a city's page).</p>"
             + cities_table + "</section>")
    page.add('<section id="coverage"><h2>Coverage per dimension</h2><p>Indicator rows of every city\'s latest '
             "reporting year, by status.</p>")
    page.chart("coverage", charts.coverage(frame, catalogue), "No indicator rows in this release.")
    page.add(_coverage_table(frame, catalogue) + "</section>")

    page.add('<section id="scores"><h2>U4SSC scores across the cities</h2>' + sections.disclaimer())
    if rollups is None or rollups.is_empty():
        page.add('<p class="note">This release holds no scores.</p></section>')
    else:
        page.add("<p>How many cities reach each score band per dimension (each city's latest year).</p>")
        page.chart("score-distribution", charts.score_distribution(rollups), "No dimension was scored.")
        page.add(_dimension_rankings(rollups, names, links) + "</section>")

    page.add('<section id="rankings"><h2>Rankings per indicator</h2><p>For every indicator with a direction '
             "(targets table), the best, the median and the worst city of their latest years. Best follows the "
             "direction: for lower-is-better indicators (PM2.5, disaster deaths) the lowest value is best.</p>"
             + _indicator_rankings(frame, catalogue, directions, names) + "</section>")

    if few and len(cities) > 1:
        page.add('<section id="side-by-side"><h2>Cities side by side</h2><p>Each indicator with a direction: '
                 "how far each city is from the average of these cities, in % of that average; right is better "
                 "(for lower-is-better indicators a lower value is to the right). Hover for the values.</p>")
        page.chart("cities", charts.cities_side_by_side(frame, directions, names),
                   "No indicator with a direction has values for two cities.")
        page.add("<details open><summary>Latest values per city</summary>" + _values_table(frame, catalogue)
                 + "</details>")
        if rollups is not None:
            page.add('<div id="snapshot-comparison"><h3>U4SSC roll-ups side by side</h3>')
            page.chart("snapshot-comparison", charts.rollups_side_by_side(rollups), "Nothing to compare.")
            page.add("</div>")
        page.add("</section>")

    page.add('<section id="previous"><h2>Against the previous release</h2>')
    previous = context.previous
    if previous is None:
        page.add('<p class="note">First release: there is no previous release to compare with.</p>')
    else:
        changes = diff_frames(previous.frame, frame)
        page.add(f"<p>Compared with release {esc(previous.release_id)}: {changes.added.height:,} rows added, "
                 f"{changes.removed.height:,} removed, {changes.changed.height:,} changed, {changes.unchanged:,} "
                 'unchanged. <a href="CHANGES.md">CHANGES.md</a> lists every row.</p>')
    page.add("</section>")
    # Past a handful of cities the overview summarises what grows with them (per-city warnings, per-city
    # files); each city's page keeps the detail.
    sections.quality_section(page, context.quality, sections.data_docs_link(context, ""), by_check=not few)
    sections.files_section(page, files, "", list_at_most=None if few else 2 * SIDE_BY_SIDE_MAX)
    return title, page
