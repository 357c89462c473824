"""report.html: the release as a self-contained HTML report with Vega-Lite charts (role `report_html`).

Sections: coverage per dimension, cities side by side, the SDG 11 panel, each KPI against the
previous release, the quality summary from the manifest, and the values table. It must open
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
"""


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
                                           "side by side, SDG 11 panel, changes, quality); opens offline")]
