"""Sections the overview and the city pages share: the City Snapshot, quality, the release's files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from publish import FileEntry
from publish.report import charts
from publish.report.display import show
from publish.report.page import Page, band_cell, band_style, esc, table

# The roles of the files written after the report (the manifest lists them too).
LATER_FILES = (("citykpi.duckdb", "duckdb_snapshot", "read-only DuckDB database for dashboards"),
               ("SHA256SUMS", "checksums", "SHA-256 of every file (sha256sum -c)"),
               ("manifest.json", "manifest", "what this release holds: cities, years, inputs, files, quality"))


@dataclass(frozen=True)
class FileLink:
    path: str
    role: str
    description: str
    bytes: int | None = None


def release_files(data: Sequence[FileEntry], documents: Sequence[FileLink]) -> list[FileLink]:
    """Every file of the release: data files, the documents, and the files written after the report."""
    return ([FileLink(e.path, e.role, e.description, e.bytes) for e in data] + list(documents)
            + [FileLink(path, role, description) for path, role, description in LATER_FILES])


def _size(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n = n / 1000  # type: ignore[assignment]
    return ""


def files_section(page: Page, files: Sequence[FileLink], root: str, *, fold_over: int = 12,
                  list_at_most: int | None = None) -> None:
    """Links to the files, grouped by manifest role; a role with many files (one workbook per city and
    year) is folded; a role with more than `list_at_most` files is counted, not listed (the national
    overview: each city's page links its own files, manifest.json lists them all)."""
    page.add('<section id="files"><h2>Files of this release</h2><p>Every value in this report comes from '
             "these files, which keep full precision (the report rounds). <code>manifest.json</code> lists them "
             "with their SHA-256.</p>")
    by_role: dict[str, list[FileLink]] = {}
    for f in files:
        by_role.setdefault(f.role, []).append(f)
    for role, items in by_role.items():
        if list_at_most is not None and len(items) > list_at_most:
            total = sum(f.bytes or 0 for f in items)
            page.add(f'<h3><code>{esc(role)}</code></h3><p data-role="{esc(role)}">{len(items):,} files'
                     f"{' (' + _size(total) + ')' if total else ''}, e.g. <code>{esc(items[0].path)}</code>: each "
                     "city's page links its own; <code>manifest.json</code> lists them all.</p>")
            continue
        links = "".join(f'<li><a href="{esc(root + f.path)}">{esc(f.path)}</a> <span class="meta">'
                        f"{esc(f.description)}{' · ' + _size(f.bytes) if f.bytes is not None else ''}</span></li>"
                        for f in items)
        block = f'<ul data-role="{esc(role)}">{links}</ul>'
        if len(items) > fold_over:
            page.add(f"<details><summary><code>{esc(role)}</code>: {len(items)} files</summary>{block}</details>")
        else:
            page.add(f"<h3><code>{esc(role)}</code></h3>{block}")
    page.add("</section>")


def _plain_check(item: dict[str, Any]) -> str:
    """One warned or failed check as a sentence: what was expected (the check's description), where, how
    many rows failed, and the GX expectation it is, if a native one (the raw record is kept in the
    details below)."""
    name = str(item.get("check") or item.get("name") or "a check").replace("_", " ")
    description = item.get("description")
    what = f"expected {description}" if isinstance(description, str) and description else name
    where = ", ".join(f"{k.replace('_id', '')} {item[k]}" for k in ("city_id", "table") if item.get(k))
    count = item.get("failing_count")
    rows = f": {count:,} row{'s' if count != 1 else ''} failed" if isinstance(count, int) else ""
    gx = item.get("gx_expectations")
    named = f" (GX {', '.join(map(str, gx))})" if isinstance(gx, list) and gx else ""
    return (f"{what} ({where}){rows}" if where else f"{what}{rows}") + named


LISTED_CHECKS = ("failed_checks", "warned_checks")
# The last summary's entries by city (the summary held, so its id is not reused): every city page of a
# release asks, and filtering all entries for each city was quadratic in the cities.
_by_city: list[tuple[dict[str, Any], dict[str, dict[Any, list[tuple[int, Any]]]]]] = []


def _entries_by_city(summary: dict[str, Any]) -> dict[str, dict[Any, list[tuple[int, Any]]]]:
    if _by_city and _by_city[0][0] is summary:
        return _by_city[0][1]
    index: dict[str, dict[Any, list[tuple[int, Any]]]] = {}
    for key in LISTED_CHECKS:
        if isinstance(summary.get(key), list):
            grouped = index.setdefault(key, {})
            for position, item in enumerate(summary[key]):
                if isinstance(item, dict):
                    grouped.setdefault(item.get("city_id"), []).append((position, item))
    _by_city[:] = [(summary, index)]
    return index


def quality_for(summary: Any, city_id: str) -> Any:
    """The quality summary with only this city's warned and failed checks listed (and those of no city)."""
    if not isinstance(summary, dict):
        return summary
    index = _entries_by_city(summary)
    return {**summary, **{key: [item for _, item in sorted(grouped.get(None, []) + grouped.get(city_id, []),
                                                            key=lambda entry: entry[0])]
                          for key, grouped in index.items()}}


def data_docs_link(context: Any, root: str) -> str | None:
    """The Data Docs' front page relative to a page `root` ("" or "../"), when the release has them
    (publish/data_docs.py writes them before the report, from the same results)."""
    from publish.data_docs import INDEX

    results = getattr(context, "quality_results", None)
    return f"{root}{INDEX}" if results is not None and not results.is_empty() else None


def _grouped_checks(listed: Sequence[dict[str, Any]], name_at_most: int = 5) -> list[str]:
    """Warned or failed checks of many cities, one line per check: in how many cities, which (the first
    few), how many rows in all: what the national overview shows instead of one line per city."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for item in listed:
        city_free = {k: v for k, v in item.items() if k not in ("city_id", "failing_count", "sample")}
        key = (str(item.get("table") or ""), str(item.get("check") or item.get("name") or ""),
               _plain_check(city_free))
        groups.setdefault(key, []).append(item)
    lines = []
    for (_table, _check, sentence), items in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        cities = sorted({str(i.get("city_id")) for i in items if i.get("city_id")})
        rows = sum(i["failing_count"] for i in items if isinstance(i.get("failing_count"), int))
        named = ", ".join(cities[:name_at_most]) + (f" and {len(cities) - name_at_most:,} more"
                                                    if len(cities) > name_at_most else "")
        lines.append(f"{sentence}: in {len(cities):,} cit{'y' if len(cities) == 1 else 'ies'} ({named})"
                     + (f", {rows:,} rows in all" if rows else ""))
    return lines


def quality_section(page: Page, summary: Any, data_docs: str | None = None, *, by_check: bool = False) -> None:
    """The run's checks in words; `data_docs`: the link to the release's GX Data Docs (every
    expectation with its failing rows), when the release has them. `by_check` (the overview of many
    cities): one line per check naming its cities, and the raw summary left to manifest.json, so the
    section does not grow with every city's warnings."""
    page.add('<section id="quality"><h2>Quality checks</h2>')
    if data_docs:
        page.add(f'<p>Every check, with the failing rows it found: <a href="{esc(data_docs)}">Great Expectations '
                 "Data Docs</a> of this release (opens offline).</p>")
    if summary is None:
        page.add('<p class="note">This release\'s manifest holds no quality summary (no checks were recorded '
                 "for this run).</p></section>")
        return
    if isinstance(summary, dict):
        counts = ", ".join(f"{summary[k]} {k}" for k in charts.QUALITY_STATUSES
                           if isinstance(summary.get(k), int) and not isinstance(summary.get(k), bool))
        if counts:
            page.add(f"<p>Checks of this run: {esc(counts)}.</p>")
    page.chart("quality", charts.quality(summary), "No quality check ran for this run.")
    for key, title in (("failed_checks", "Failed blocking checks"), ("warned_checks", "Warnings")):
        listed = summary.get(key) if isinstance(summary, dict) else None
        if isinstance(listed, list) and listed and all(isinstance(item, dict) for item in listed):
            lines = _grouped_checks(listed) if by_check else [_plain_check(item) for item in listed]
            items = "".join(f"<li>{esc(line)}</li>" for line in lines)
            page.add(f"<h3>{esc(title)} ({len(listed)})</h3><ul>{items}</ul>")
    if by_check:
        page.add('<p class="meta">Each city\'s page lists its own checks; the summary as recorded is in '
                 "<code>manifest.json</code> (<code>quality</code>).</p></section>")
        return
    page.add(f"<details><summary>Quality summary as recorded in manifest.json</summary><pre>"
             f"{esc(json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False))}</pre></details></section>")


def snapshot_legend() -> str:
    from kpis.benchmarking.scoring import BANDS

    legend = "".join(f'<span style="{band_style(b.code)}">'
                     f"{b.points} point{'s' if b.points > 1 else ''}: {esc(b.label)}</span>"
                     for b in sorted(BANDS, key=lambda b: b.points))
    return f'<p class="legend">{legend}<span style="{band_style(None)}">N/A: not scored</span></p>'


def disclaimer() -> str:
    from kpis.benchmarking.snapshot import DISCLAIMER

    return (f'<p class="disclaimer"><strong>Not the official U4SSC benchmark.</strong> {esc(DISCLAIMER)} '
            "Scores computed with them are not U4SSC verification results (docs/benchmarking.md).</p>")


def _cells(values: Sequence[Any], units: Sequence[str | None] = (), numeric: Sequence[int] = ()) -> str:
    out = []
    for i, v in enumerate(values):
        text = show(v, units[i] if i < len(units) else None) if isinstance(v, float) else ("" if v is None else str(v))
        cls = ' class="num"' if i in numeric else ""
        out.append(f"<td{cls}>{esc(text)}</td>")
    return "".join(out)


def snapshot_tables(snap: dict[str, Any]) -> tuple[list[dict[str, Any]], str, str]:
    """The snapshot's scored KPIs (flat, with their dimension), the roll-up table and the KPI table."""
    kpis: list[dict[str, Any]] = []
    rollup_rows, kpi_rows = [], []
    for dim in snap["dimensions"]:
        score = "N/A" if dim["score_pct"] is None else f"{dim['score_pct']:.0f} %"
        rollup_rows.append(f"<tr><th>{esc(dim['name'])}</th>{band_cell(dim['band'], score)}"
                           + _cells([dim["band_label"] or "no KPI scored", dim["n_scored_kpis"], dim["n_kpis"]],
                                    numeric=(1, 2)) + "</tr>")
        for sub in dim["subdimensions"]:
            sub_score = "N/A" if sub["score_pct"] is None else f"{sub['score_pct']:.0f} %"
            rollup_rows.append(f"<tr><td>&nbsp;&nbsp;{esc(sub['name'])}</td>{band_cell(sub['band'], sub_score)}"
                               + _cells([sub["band_label"] or "", sub["n_scored_kpis"], sub["n_kpis"]],
                                        numeric=(1, 2)) + "</tr>")
            for cat in sub["categories"]:
                for kpi in cat["kpis"]:
                    kpis.append({**kpi, "dimension": dim["name"]})
                    share = "" if kpi["share_capped_pct"] is None else f"{kpi['share_capped_pct']:.0f} %"
                    unit = kpi["unit"]
                    kpi_rows.append(
                        "<tr>" + _cells([kpi["indicator_id"], kpi["name"], kpi["data_point"] or "", kpi["value"],
                                         unit, kpi["target"], kpi["direction"], share],
                                        units=(None, None, None, unit, None, unit), numeric=(3, 5, 7))
                        + band_cell(kpi["band"], kpi["band_label"] or "N/A") + "</tr>")
    rollups = ('<div class="scroll"><table><thead><tr><th>dimension / sub-dimension</th><th>score</th><th>band</th>'
               "<th>scored KPIs</th><th>KPIs</th></tr></thead><tbody>" + "".join(rollup_rows)
               + "</tbody></table></div>")
    kpi_table = ('<div class="scroll"><table><thead><tr><th>KPI</th><th>name</th><th>data point</th><th>value</th>'
                 "<th>unit</th><th>target</th><th>better</th><th>share of target</th><th>band</th></tr></thead>"
                 "<tbody>" + "".join(kpi_rows) + "</tbody></table></div>")
    return kpis, rollups, kpi_table


def progress_table(items: Sequence[dict[str, Any]], link: Any = None) -> str:
    rows = []
    for item in items:
        years = (f"{item['base_year']}–{item['latest_year']}" if item["base_year"] is not None
                 and item["latest_year"] is not None else "")
        label = esc(item["label"] or "")
        ident = esc(item["indicator_id"])
        if link is not None:
            ident = f'<a href="#{esc(link(item["indicator_id"]))}">{ident}</a>'
        rows.append(f'<tr><td class="arrow tone-{esc(item["tone"])}" title="{label}">{esc(item["arrow"])}</td>'
                    f'<td title="{esc(item["name"])}">{ident}</td>'
                    + _cells([item["data_point"] or "", item["label"], years, item["latest_value"], item["target"],
                              item["deadline"]], numeric=(3, 4)) + "</tr>")
    return ('<div class="scroll"><table><thead><tr><th></th><th>indicator</th><th>data point</th><th>status</th>'
            "<th>years</th><th>latest value</th><th>target</th><th>by</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></div>")


def excluded_table(excluded: Sequence[dict[str, Any]]) -> str:
    return table(["indicator", "name", "data point", "reason"],
                 [[e["indicator_id"], e["name"], e["data_point"] or "", e["reason"]] for e in excluded])
