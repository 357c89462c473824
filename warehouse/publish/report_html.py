"""report.html: the release as a self-contained HTML report with Vega-Lite charts (role `report_html`).

Sections: coverage per dimension, cities side by side, the SDG 11 panel, the City Snapshot (U4SSC
bands per KPI, roll-ups per dimension, progress arrows per SDG 11 indicator, and the roll-ups side
by side when the release holds several cities), each KPI against the previous release, the quality
summary from the manifest, and the values table. It must open
offline (a city officer's laptop, an archive): the Vega, Vega-Lite and vega-embed JavaScript is
inlined once in the page head, taken from `vl-convert-python` (the bundle altair's own
`inline=True` uses), and nothing is fetched from a CDN.

Bundling that JavaScript takes about a second, so the bundle is kept in `<home>/cache/` keyed by
the vl-convert and Vega-Lite versions, and `prefetch_bundle` lets the release start it early.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import tempfile
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl

from kpis.catalogue import Indicator
from warehouse.publish import FileEntry, PublishContext, file_entry, write_bytes
from warehouse.publish import report_charts as charts
from warehouse.publish.changes import diff_frames
from warehouse.publish.scores import BAND_COLORS, NO_BAND_COLOR

NAME = "report.html"
ROLE = "report_html"
EMBED_OPTIONS = {"actions": False, "renderer": "svg"}  # SVG: the charts are in the DOM (printable, testable)
_bundle_lock = threading.Lock()

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 1100px;
       padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
.meta { color: #555; } .note { color: #555; font-style: italic; }
table { border-collapse: collapse; font-size: .85rem; margin: .6rem 0; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; } th { background: #f0f4f8; }
.status-computed { color: #2e7d32; } .status-missing { color: #757575; } .status-failed_check { color: #c62828; }
.chart { margin: .8rem 0; } details summary { cursor: pointer; margin: .6rem 0; }
.disclaimer { border-left: 4px solid #fdae61; background: #fff8ec; padding: .5rem .8rem; }
.legend span { display: inline-block; padding: .1rem .45rem; border-radius: 3px; margin-right: .4rem;
               font-size: .85rem; }
td.band { font-weight: 600; white-space: nowrap; }
.arrow { font-size: 1.15rem; font-weight: 700; text-align: center; }
.tone-good { color: #1a7f37; } .tone-fair { color: #8a6d00; } .tone-poor { color: #c45100; }
.tone-bad { color: #c62828; } .tone-neutral { color: #666; }
"""
DARK_BANDS = {"<33", "95+"}  # white text on these fills, dark text on the lighter two


def _bundle_key() -> tuple[str, str]:
    import vl_convert
    from altair.utils._importers import vl_version_for_vl_convert

    return str(getattr(vl_convert, "__version__", "unknown")), vl_version_for_vl_convert()


@cache
def _bundle_from(cache_dir: Path | None) -> str:
    import vl_convert

    vlc_version, vl_version = _bundle_key()
    cached = cache_dir / f"vega-embed-vlc{vlc_version}-vl{vl_version}.js" if cache_dir else None
    if cached is not None and cached.is_file():
        return cached.read_text(encoding="utf-8")
    bundle = vl_convert.javascript_bundle(vl_version=vl_version)  # type: ignore[call-arg]  # snippet is optional
    if cached is not None:
        # Write-then-rename: a run killed mid-write leaves no truncated bundle for the next one.
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=".vega-", suffix=".js")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(bundle)
        os.replace(tmp, cached)
    return bundle


def vega_bundle(cache_dir: Path | None = None) -> str:
    """The Vega + Vega-Lite + vega-embed JavaScript (globals vega, vegaLite, vegaEmbed)."""
    with _bundle_lock:
        return _bundle_from(cache_dir)


def prefetch_bundle(cache_dir: Path | None) -> threading.Thread:
    """Start building the bundle in the background (vl-convert releases the GIL while it bundles)."""
    def warm() -> None:
        # A failure here is raised again by the report's own call, where the run reports it.
        with contextlib.suppress(Exception):
            vega_bundle(cache_dir)

    thread = threading.Thread(target=warm, name="vega-bundle", daemon=True)
    thread.start()
    return thread


def _script_json(value: Any) -> str:
    # "</" inside a <script> would end it early; JSON allows the escaped form.
    return json.dumps(value, ensure_ascii=False, sort_keys=True).replace("</", "<\\/")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for index, cell in enumerate(row):
            text = "" if cell is None else (f"{cell:,.6g}" if isinstance(cell, float) else str(cell))
            cls = ' class="num"' if index in numeric else ""
            if header[index] == "status" and cell:
                cls = f' class="status-{html.escape(str(cell))}"'
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class _Page:
    """Collects sections; charts become divs filled by vegaEmbed at the end of the body."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.specs: list[tuple[str, dict[str, Any]]] = []

    def add(self, text: str) -> None:
        self.parts.append(text)

    def chart(self, name: str, spec: dict[str, Any] | None, empty: str) -> None:
        if spec is None:
            self.add(f'<p class="note">{html.escape(empty)}</p>')
            return
        div = f"chart-{name}"
        self.specs.append((div, spec))
        self.add(f'<div class="chart" id="{div}" data-chart="{name}"></div>')

    def render(self, title: str, bundle: str) -> str:
        script = bundle.replace("</script", "<\\/script")  # the bundle must not close its own tag
        embeds = "\n".join(f"vegaEmbed('#{div}', {_script_json(spec)}, embedOpt).catch(report);"
                           for div, spec in self.specs)
        return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n"
                f"<script>\n{script}\n</script>\n</head>\n<body>\n"
                + "\n".join(self.parts)
                + "\n<script>\nconst embedOpt = " + _script_json(EMBED_OPTIONS) + ";\n"
                "function report(error) { console.error(error); }\n" + embeds + "\n</script>\n</body>\n</html>\n")


def _summary_rows(frame: pl.DataFrame, catalogue: Sequence[Indicator]) -> list[list[Any]]:
    rows = charts.latest_year_rows(frame).join(charts.group_of(catalogue), on="indicator_id", how="left")
    counts = rows.group_by("city_id", "year", "group").agg(
        *(pl.col("status").eq(s).sum().alias(s) for s in charts.STATUS_ORDER), pl.len().alias("rows"))
    order = {g: n for n, g in enumerate(charts.GROUP_ORDER)}
    counts = counts.with_columns(pl.col("group").replace_strict(order, default=9).alias("_o")).sort(
        "city_id", "_o")
    return [[r["city_id"], r["year"], r["group"], *(r[s] for s in charts.STATUS_ORDER), r["rows"],
             f"{100 * r['computed'] / r['rows']:.0f} %" if r["rows"] else ""] for r in counts.iter_rows(named=True)]


def _values_table(frame: pl.DataFrame, catalogue: Sequence[Indicator]) -> str:
    """Latest-year values, one column per city: the side-by-side comparison as numbers."""
    names = {i.id: i.name for i in catalogue}
    latest = charts.latest_year_rows(frame).filter(pl.col("status") == "computed")
    if latest.is_empty():
        return '<p class="note">No computed values.</p>'
    cities = sorted(latest["city_id"].unique())
    wide: dict[tuple[str, str], dict[str, Any]] = {}
    for r in latest.sort("framework", "indicator_id", "data_point", nulls_last=False).iter_rows(named=True):
        key = (r["indicator_id"], r["data_point"] or "")
        item = wide.setdefault(key, {"unit": r["unit"]})
        item[r["city_id"]] = r["value"]
    header = ["indicator", "name", "data point", "unit", *(f"{c} ({latest.filter(pl.col('city_id') == c)['year'][0]})"
                                                           for c in cities)]
    rows = [[k[0], names.get(k[0], ""), k[1], v["unit"], *(v.get(c) for c in cities)] for k, v in wide.items()]
    return _table(header, rows, numeric=range(4, 4 + len(cities)))


def _quality_section(page: _Page, summary: Any) -> None:
    page.add("<h2>Quality checks</h2>")
    if summary is None:
        page.add('<p class="note">This release\'s manifest holds no quality summary (no checks were recorded '
                 "for this run).</p>")
        return
    page.chart("quality", charts.quality(summary), "No quality check ran for this run.")
    for key, title in (("failed_checks", "Failed blocking checks"), ("warned_checks", "Warnings")):
        listed = summary.get(key) if isinstance(summary, dict) else None
        if isinstance(listed, list) and listed and all(isinstance(item, dict) for item in listed):
            header = list(dict.fromkeys(k for item in listed for k in item))
            page.add(f"<h3>{html.escape(title)} ({len(listed)})</h3>"
                     + _table(header, [[item.get(k) for k in header] for item in listed]))
    page.add(f"<details><summary>Quality summary as recorded in manifest.json</summary><pre>"
             f"{html.escape(json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False))}</pre></details>")


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    return f"{value:,.{digits}g}" if isinstance(value, float) else str(value)


def _band_style(band: str | None) -> str:
    """Fill and ink of a U4SSC band (grey for N/A)."""
    return f"background:{BAND_COLORS.get(band or '', NO_BAND_COLOR)};color:{'#fff' if band in DARK_BANDS else '#222'}"


def _band_cell(band: str | None, text: str) -> str:
    return f'<td class="band" style="{_band_style(band)}">{html.escape(text)}</td>'


def _cells(values: Sequence[Any], numeric: Sequence[int] = ()) -> str:
    num = ' class="num"'
    return "".join(f"<td{num if i in numeric else ''}>{html.escape(_fmt(v))}</td>" for i, v in enumerate(values))


def _snapshot_tables(snap: dict[str, Any]) -> tuple[list[dict[str, Any]], str, str]:
    """The snapshot's scored KPIs (flat, with their dimension), the roll-up table and the KPI table."""
    kpis: list[dict[str, Any]] = []
    rollup_rows, kpi_rows = [], []
    for dim in snap["dimensions"]:
        score = "N/A" if dim["score_pct"] is None else f"{dim['score_pct']:.1f} %"
        rollup_rows.append(f"<tr><th>{html.escape(dim['name'])}</th>{_band_cell(dim['band'], score)}"
                           + _cells([dim["band_label"] or "no KPI scored", dim["n_scored_kpis"], dim["n_kpis"],
                                     dim["points_sum"], dim["max_points"]], numeric=(1, 2, 3, 4)) + "</tr>")
        for sub in dim["subdimensions"]:
            sub_score = "N/A" if sub["score_pct"] is None else f"{sub['score_pct']:.1f} %"
            rollup_rows.append(f"<tr><td>&nbsp;&nbsp;{html.escape(sub['name'])}</td>"
                               f"{_band_cell(sub['band'], sub_score)}"
                               + _cells([sub["band_label"] or "", sub["n_scored_kpis"], sub["n_kpis"],
                                         sub["points_sum"], sub["max_points"]], numeric=(1, 2, 3, 4)) + "</tr>")
            for cat in sub["categories"]:
                for kpi in cat["kpis"]:
                    kpis.append({**kpi, "dimension": dim["name"]})
                    share = "" if kpi["share_capped_pct"] is None else f"{kpi['share_capped_pct']:.0f} %"
                    kpi_rows.append(
                        "<tr>" + _cells([kpi["indicator_id"], kpi["name"], kpi["data_point"] or "", kpi["value"],
                                         kpi["unit"], kpi["target"], kpi["direction"], kpi["worst"]],
                                        numeric=(3, 5, 7))
                        + _cells([share, kpi["points"]], numeric=(0, 1))
                        + _band_cell(kpi["band"], kpi["band_label"] or "N/A")
                        + _cells([kpi["target_citation"]]) + "</tr>")
    rollups = ("<table><thead><tr><th>dimension / sub-dimension</th><th>score</th><th>band</th><th>scored KPIs</th>"
               "<th>KPIs</th><th>points</th><th>max points</th></tr></thead><tbody>" + "".join(rollup_rows)
               + "</tbody></table>")
    table = ("<table><thead><tr><th>KPI</th><th>name</th><th>data point</th><th>value</th><th>unit</th>"
             "<th>target</th><th>better</th><th>worst</th><th>share of target</th><th>points</th><th>band</th>"
             "<th>target source</th></tr></thead><tbody>" + "".join(kpi_rows) + "</tbody></table>")
    return kpis, rollups, table


def _progress_table(items: Sequence[dict[str, Any]]) -> str:
    rows = []
    for item in items:
        years = (f"{item['base_year']}–{item['latest_year']}" if item["base_year"] is not None
                 and item["latest_year"] is not None else "")
        label = html.escape(item["label"] or "")
        rows.append(f'<tr><td class="arrow tone-{html.escape(item["tone"])}" title="{label}">'
                    f"{html.escape(item['arrow'])}</td>"
                    f'<td title="{html.escape(item["name"])}">{html.escape(item["indicator_id"])}</td>'
                    + _cells([item["data_point"] or "", item["label"], years, item["latest_value"], item["target"],
                              item["deadline"], item["reason"]], numeric=(3, 4)) + "</tr>")
    return ("<table><thead><tr><th></th><th>indicator</th><th>data point</th><th>status</th>"
            "<th>years</th><th>latest value</th><th>target</th><th>by</th><th>why</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _snapshot_section(page: _Page, context: PublishContext) -> None:
    """The City Snapshot of every city of the release, then the roll-ups side by side."""
    from kpis.benchmarking.scoring import BANDS
    from kpis.benchmarking.snapshot import DISCLAIMER, city_snapshot, compare_cities

    page.add('<section id="city-snapshot"><h2>City Snapshot: U4SSC scores and progress towards 2030</h2>')
    page.add(f'<p class="disclaimer"><strong>Not the official U4SSC benchmark.</strong> {html.escape(DISCLAIMER)} '
             "Scores computed with them are not U4SSC verification results (docs/benchmarking.md).</p>")
    scores, rollups = context.benchmark("kpi_scores"), context.benchmark("kpi_rollups")
    progress = context.benchmark("kpi_progress")
    if scores is None or rollups is None or progress is None or rollups.is_empty():
        page.add('<p class="note">This release holds no scores (the run computed no benchmarking).</p></section>')
        return
    legend = "".join(f'<span style="{_band_style(b.code)}">'
                     f"{b.points} point{'s' if b.points > 1 else ''}: {html.escape(b.label)}</span>"
                     for b in sorted(BANDS, key=lambda b: b.points))
    page.add(f'<p class="legend">{legend}<span style="{_band_style(None)}">N/A: not scored</span></p>')
    page.add("<p>Each U4SSC KPI with a computed value and a target is scored by its share of the target "
             "(higher is better: value / target; lower is better: (worst − value) / (worst − target)); roll-ups "
             "are the points over 4 × the number of scored KPIs. Progress compares the growth rate since the "
             "first year from 2015 with the rate needed to reach the target by its deadline (UN cut-offs).</p>")
    cities = [c for c in context.cities if c.id in set(rollups["city_id"].to_list())]
    for city in cities:
        snap = city_snapshot(scores.filter(pl.col("status") == "scored"), rollups, progress,
                             excluded=scores.filter(pl.col("status") == "excluded"), city_id=city.id)
        kpis, rollup_table, kpi_table = _snapshot_tables(snap)
        slug = html.escape(city.id)
        page.add(f'<div class="city-snapshot" id="snapshot-{slug}" data-city="{slug}">'
                 f"<h3>{html.escape(city.name)} ({slug}), {snap['year']}</h3>")
        page.add("<h4>Roll-ups per dimension</h4>" + rollup_table)
        page.add(f"<h4>Bands per KPI ({len(kpis)} KPI data points scored, {len(snap['excluded'])} excluded)</h4>")
        page.chart(f"bands-{city.id}", charts.kpi_bands(kpis), "No KPI of this city and year could be scored.")
        page.add("<details><summary>Scored KPIs with their targets</summary>" + kpi_table + "</details>")
        page.add(f"<details><summary>Excluded KPIs and why ({len(snap['excluded'])})</summary>"
                 + _table(["indicator", "name", "data point", "reason"],
                          [[e["indicator_id"], e["name"], e["data_point"] or "", e["reason"]]
                           for e in snap["excluded"]]) + "</details>")
        page.add("<h4>Progress towards the targets: SDG 11 indicators</h4>")
        page.add(_progress_table(snap["progress"]) if snap["progress"]
                 else '<p class="note">No SDG 11 indicator has a progress assessment.</p>')
        page.add("</div>")
    if len(cities) > 1:
        page.add('<div id="snapshot-comparison"><h3>Cities side by side: U4SSC roll-ups</h3>'
                 "<p>Each city's latest year with scores; N/A: no KPI of the group was scored.</p>")
        page.chart("snapshot-comparison", charts.rollups_side_by_side(rollups), "Nothing to compare.")
        wide = compare_cities(rollups, level="dimension")
        latest = rollups.filter(pl.col("level") == "dimension", pl.col("year") == pl.col("year").max().over("city_id"))
        bands = {(r["city_id"], r["group_path"]): r["band"] for r in latest.iter_rows(named=True)}
        head = "".join(f"<th>{html.escape(c)}</th>" for c in wide.columns)
        body = "".join(
            f"<tr><th>{html.escape(row['group_path'])}</th>"
            + "".join(_band_cell(bands.get((c, row["group_path"])), "N/A" if row[c] is None else f"{row[c]:.1f} %")
                      for c in wide.columns[1:]) + "</tr>"
            for row in wide.iter_rows(named=True))
        page.add(f"<table><thead><tr>{head.replace('group_path', 'dimension')}</tr></thead><tbody>{body}</tbody>"
                 "</table></div>")
    page.add("</section>")


def report_html(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext, bundle: str) -> str:
    page = _Page()
    cities = ", ".join(f"{c.name} ({c.id})" for c in context.cities)
    years = sorted({int(y) for y in frame["year"].unique()})
    previous = context.previous
    changes = diff_frames(previous.frame, frame) if previous else None
    title = f"citykpi release {context.release_id}"
    page.add(f"<h1>{html.escape(title)}</h1>")
    page.add(f'<p class="meta">Cities: {html.escape(cities)}. Years: {", ".join(map(str, years))}. '
             f"Created {html.escape(context.created_at or '')}. "
             f"{frame.height} indicator rows (U4SSC KPIs and SDG 11 indicators, one per data point and year).</p>")

    page.add("<h2>Coverage per dimension</h2><p>Indicator rows of each city's latest reporting year by status.</p>")
    page.chart("coverage", charts.coverage(frame, catalogue), "No indicator rows in this release.")
    summary_header = ["city", "year", "group", *charts.STATUS_ORDER, "rows", "computed"]
    page.add(_table(summary_header, _summary_rows(frame, catalogue), numeric=range(3, 9)))

    page.add("<h2>Cities side by side</h2>")
    page.chart("cities", charts.cities_side_by_side(frame, catalogue),
               "One city in this release: nothing to compare side by side (the table lists its values).")
    page.add("<details open><summary>Latest values per city</summary>" + _values_table(frame, catalogue)
             + "</details>")

    page.add("<h2>SDG 11 panel</h2>")
    page.chart("sdg-status", charts.sdg_status(frame, catalogue), "No SDG 11 rows in this release.")
    page.chart("sdg-panel", charts.sdg_panel(frame, catalogue), "No SDG 11 indicator has a computed value yet.")

    _snapshot_section(page, context)

    page.add("<h2>Against the previous release</h2>")
    if previous is None or changes is None:
        page.add('<p class="note">First release: there is no previous release to compare with.</p>')
    else:
        page.add(f"<p>Compared with release {html.escape(previous.release_id)}: {changes.added.height} rows added, "
                 f"{changes.removed.height} removed, {changes.changed.height} changed, {changes.unchanged} "
                 "unchanged. The chart shows each KPI value of each city's latest year against its value in the "
                 "previous release (on the dashed line: unchanged); CHANGES.md lists every row.</p>")
        page.chart("previous", charts.against_previous(changes, frame), "No computed values to compare.")
    _quality_section(page, context.quality)
    page.add('<p class="meta">Written by citykpi. The data files of this release (kpi_values.parquet, .csv, '
             "datapackage.json, SDMX-CSV, Open SDG, NGSI-LD, U4SSC workbooks) hold every value with its "
             "provenance; manifest.json lists them.</p>")
    return page.render(title, bundle)


def write_report_html(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext,
                      folder: Path) -> list[FileEntry]:
    text = report_html(frame, catalogue, context, vega_bundle(context.cache_dir))
    write_bytes(folder, NAME, text.encode("utf-8"))
    return [file_entry(folder, NAME, ROLE, "self-contained HTML report with Vega-Lite charts (coverage, cities "
                                           "side by side, SDG 11 panel, City Snapshot, changes, quality); "
                                           "opens offline")]
