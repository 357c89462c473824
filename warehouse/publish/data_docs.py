"""GX Data Docs in the release (role `quality_docs`): the quality validations as static HTML pages.

One page per city and table (`quality_docs/<city>/<table>.html`), rendered by Great Expectations'
own renderer and page view (`ValidationResultsPageRenderer`, `DefaultJinjaPageView`) from the
validation results stored in `quality_results` (each row's `expectation` is that city's part of
the GX result: the failing rows GX found, or for counts measured in DuckDB the count and DuckDB's
sample as a note), plus `quality_docs/index.html` listing every page with its verdicts.

GX's page template loads Bootstrap, jQuery, Vega and fonts from CDNs. A release must open offline,
so every external script, stylesheet and image is removed and GX's own stylesheet (shipped in the
package) is inlined with a few rules for tables; the content itself is static HTML.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from kpis.catalogue import Indicator
from warehouse.publish import FileEntry, PublishContext, file_entry, write_bytes

ROLE = "quality_docs"
FOLDER = "quality_docs"
INDEX = f"{FOLDER}/index.html"

_EXTERNAL = re.compile(
    r"<script\b[^>]*>.*?</script>"                                 # every script: CDN libraries, and inline
    r"|<link\b[^>]*>"                                              # code that needs them (jQuery)
    r"|<img\b[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>", re.S | re.I)
_EXTRA_CSS = """
body { font-family: system-ui, sans-serif; margin: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: .5rem 0; } td, th { border: 1px solid #ccc; padding: .2rem .4rem; }
.ge-breadcrumbs, .navbar, .cta-footer, footer, .d-none { display: none !important; }
.text-danger { color: #b00020; } .text-success { color: #1b5e20; }
"""


def page_file(city_id: str, table: str) -> str:
    return f"{FOLDER}/{_safe(city_id)}/{_safe(table)}.html"


def _safe(name: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}", name):
        return name
    import hashlib

    return (re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:60] or "x") + "-" + \
        hashlib.sha256(name.encode()).hexdigest()[:8]


def _gx_css() -> str:
    from importlib.resources import files

    path = files("great_expectations") / "render" / "view" / "static" / "styles" / "data_docs_default_styles.css"
    return path.read_text(encoding="utf-8")


def offline(page: str) -> str:
    """GX's page without anything fetched from elsewhere, with GX's stylesheet inlined."""
    stripped = _EXTERNAL.sub("", page)
    return stripped.replace("</head>", f"<style>{_gx_css()}{_EXTRA_CSS}</style></head>", 1)


def _evrs(stored: dict[str, Any]) -> list[Any]:
    """ExpectationValidationResults from a stored JSON (one, or several for a multi-expectation check)."""
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    out = []
    for part in stored.get("results", [stored]):
        cfg = part["expectation_config"]
        config = ExpectationConfiguration(type=cfg["type"], kwargs=cfg["kwargs"], meta=cfg.get("meta"),
                                          description=cfg.get("description"))
        out.append(ExpectationValidationResult(success=part.get("success"), expectation_config=config,
                                               result=part.get("result") or {},
                                               exception_info=part.get("exception_info") or {}))
    return out


def render_page(city_id: str, table: str, rows: list[dict[str, Any]]) -> str:
    """One GX validation page for a city's table from its stored results (skipped checks have none)."""
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
    from great_expectations.render.renderer.page_renderer import ValidationResultsPageRenderer
    from great_expectations.render.view.view import DefaultJinjaPageView

    evrs = [e for r in rows if r["expectation"] for e in _evrs(json.loads(r["expectation"]))]
    good = sum(1 for e in evrs if e.success)
    evaluated_at = max(str(r["evaluated_at"]) for r in rows)
    suite = ExpectationSuiteValidationResult(
        success=good == len(evrs), results=evrs, suite_name=f"citykpi.{table}",
        statistics={"evaluated_expectations": len(evrs), "successful_expectations": good,
                    "unsuccessful_expectations": len(evrs) - good,
                    "success_percent": 100.0 * good / len(evrs) if evrs else None},
        meta={"run_id": {"run_name": ", ".join(sorted({str(r["run_id"]) for r in rows})), "run_time": evaluated_at},
              "active_batch_definition": {"datasource_name": "citykpi", "data_asset_name": table,
                                          "batch_definition_name": city_id},
              "city_id": city_id})
    document = ValidationResultsPageRenderer().render(suite)
    return offline(DefaultJinjaPageView().render(document))


def _index(context: PublishContext, pages: list[tuple[str, str, str, dict[str, int]]]) -> str:
    """The site's front page: one row per city and table with its verdicts and a link."""
    rows = []
    for city_id, table, path, counts in pages:
        name = context.city(city_id).name
        failing = counts.get("failed", 0) + counts.get("warned", 0)
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td><a href=\"{html.escape(path)}\">{html.escape(table)}</a></td>"
            + "".join(f"<td>{counts.get(s, 0)}</td>" for s in ("passed", "failed", "warned", "skipped"))
            + f"<td>{'not all passed' if failing else 'all passed'}</td></tr>")
    run = (context.quality or {}).get("run_id") if isinstance(context.quality, dict) else None
    title = f"Quality checks (Great Expectations Data Docs) — release {context.release_id or ''}"
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_EXTRA_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>One page per city and table, rendered by Great Expectations from this release's validation results
(run {html.escape(str(run or 'newest result of each check'))}). Failed checks are blocking (their rows are marked and
the KPIs using them are <code>failed_check</code>); warned checks are reported only. A failing expectation shows
the failing rows GX found; checks measured in DuckDB show their failing count and a sample of rows as a note.</p>
<table><thead><tr><th>city</th><th>table</th><th>passed</th><th>failed</th><th>warned</th><th>skipped</th>
<th>verdict</th></tr></thead><tbody>{''.join(rows)}</tbody></table></body></html>
"""


def write_data_docs(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext,
                    folder: Path) -> list[FileEntry]:
    """The Data Docs site, when the release has stored quality results (no page otherwise)."""
    results = context.quality_results
    if results is None or results.is_empty():
        return []
    entries: list[FileEntry] = []
    pages: list[tuple[str, str, str, dict[str, int]]] = []
    for (city_id, table), group in results.sort("city_id", "table_name", "check_name").group_by(
            ["city_id", "table_name"], maintain_order=True):
        rows = group.to_dicts()
        relative = page_file(str(city_id), str(table))
        write_bytes(folder, relative, render_page(str(city_id), str(table), rows).encode("utf-8"))
        entries.append(file_entry(folder, relative, ROLE, f"GX Data Docs: {table} of {city_id}"))
        counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("passed", "failed", "warned", "skipped")}
        pages.append((str(city_id), str(table), relative.removeprefix(f"{FOLDER}/"), counts))
    write_bytes(folder, INDEX, _index(context, pages).encode("utf-8"))
    return [file_entry(folder, INDEX, ROLE, "GX Data Docs: the quality validations, one page per city and table"),
            *entries]
