"""GX Data Docs in the release (role `quality_docs`): the quality validations as static HTML pages.

One page per table (`quality_docs/<table>.html`), as GX validated it: once for all the cities of the
run. Each page is rendered by Great Expectations' own renderer and page view
(`ValidationResultsPageRenderer`, `DefaultJinjaPageView`) from the results stored in
`quality_results`, whose `expectation` is each city's part of the GX result (the failing rows GX
found, with their city and key; for counts measured in DuckDB the count, and DuckDB's sample in the
expectation's sentence): the parts of one check are put back together into one result over all
cities. `quality_docs/index.html` lists the pages and every city's verdicts. One page per table, not
per city: GX's renderer takes ~50 ms per expectation, so a page per city and table would cost
minutes at hundreds of cities.

GX's page template loads Bootstrap, jQuery, Vega and fonts from CDNs. A release must open offline,
so every external script, stylesheet and image is removed and GX's own stylesheet (shipped in the
package) is inlined with a few rules for tables; the content itself is static HTML.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from kpis.catalogue import Indicator
from publish import FileEntry, PublishContext, file_entry, write_bytes

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


SHOWN_ROWS = 200          # failing rows listed per expectation on a page (all cities together)


def page_file(table: str) -> str:
    return f"{FOLDER}/{_safe(table)}.html"


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


def _parts(stored: dict[str, Any]) -> list[dict[str, Any]]:
    return list(stored.get("results", [stored]))


class _Merge:
    """One expectation's result over all cities, from the cities' parts given one at a time: only what the
    page shows is kept (the first config, the first failing sentence, sums, up to SHOWN_ROWS failing rows),
    so a table's parts are never held at once (1,000 cities: about 100,000 parsed parts, gigabytes)."""

    def __init__(self) -> None:
        self.config: dict[str, Any] | None = None
        self.failing = 0
        self.failing_description: Any = None  # the first failing part's sentence
        self.described = False                # some failing part has a sentence
        self.elements = 0
        self.unexpected = 0
        self.index: list[Any] = []
        self.values: list[Any] = []
        self.index_columns: Any = None
        self.partial_counts = False
        self.raised: Any = None

    def add(self, part: dict[str, Any]) -> None:
        if self.config is None:
            self.config = dict(part["expectation_config"])
        if not part.get("success"):
            if self.failing == 0:
                self.failing_description = part["expectation_config"].get("description", "")
            self.failing += 1
            self.described = self.described or bool(part["expectation_config"].get("description"))
        result = part.get("result") or {}
        self.elements += int(result.get("element_count") or 0)
        self.unexpected += int(result.get("unexpected_count") or 0)
        if len(self.index) < SHOWN_ROWS:
            self.index.extend((result.get("unexpected_index_list") or [])[:SHOWN_ROWS - len(self.index)])
        if len(self.values) < SHOWN_ROWS:
            listed = result.get("unexpected_list") or result.get("partial_unexpected_list") or []
            self.values.extend(listed[:SHOWN_ROWS - len(self.values)])
        if self.index_columns is None and result.get("unexpected_index_column_names"):
            self.index_columns = result["unexpected_index_column_names"]
        self.partial_counts = self.partial_counts or bool(result.get("partial_unexpected_counts"))
        if self.raised is None and (part.get("exception_info") or {}).get("raised_exception"):
            self.raised = part.get("exception_info")

    def result(self) -> Any:
        """The ExpectationValidationResult over every city added."""
        from collections import Counter

        from great_expectations.core.expectation_validation_result import ExpectationValidationResult
        from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

        assert self.config is not None
        cfg = dict(self.config)
        if self.failing and self.described:
            # The first failing city's sentence (it names its failing rows, measured in DuckDB), and how many more.
            more = self.failing - 1
            cfg["description"] = self.failing_description + (
                f" (and {more} more cit{'ies' if more > 1 else 'y'}: see the failing cities below)" if more > 0 else "")
        values, index = self.values, self.index
        result: dict[str, Any] = {
            "element_count": self.elements, "unexpected_count": self.unexpected,
            "unexpected_percent": 100.0 * self.unexpected / self.elements if self.elements else 0.0,
            "missing_count": 0, "missing_percent": 0.0, "unexpected_index_column_names": self.index_columns,
            "unexpected_index_list": index, "unexpected_list": values, "partial_unexpected_list": values,
            "partial_unexpected_index_list": index}
        if self.partial_counts:
            counts = Counter(tuple(v.values()) if isinstance(v, dict) else v for v in values)
            result["partial_unexpected_counts"] = [{"value": v, "count": n} for v, n in counts.most_common()]
        config = ExpectationConfiguration(type=cfg["type"], kwargs=cfg["kwargs"], meta=cfg.get("meta"),
                                          description=cfg.get("description"))
        return ExpectationValidationResult(success=not self.failing, expectation_config=config, result=result,
                                           exception_info=self.raised or {})


def render_page(table: str, rows: Iterable[dict[str, Any]]) -> str:
    """The GX validation page of one table: every check's result over all cities (skipped ones have none).
    `rows` are read once, each stored result parsed and merged as it comes."""
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
    from great_expectations.render.renderer.page_renderer import ValidationResultsPageRenderer
    from great_expectations.render.view.view import DefaultJinjaPageView

    by_expectation: dict[tuple[str, int], _Merge] = {}
    cities: set[str] = set()
    runs: set[str] = set()
    evaluated: list[str] = []
    for row in rows:
        cities.add(str(row["city_id"]))
        runs.add(str(row["run_id"]))
        evaluated.append(str(row["evaluated_at"]))
        if row["expectation"]:
            for i, part in enumerate(_parts(json.loads(row["expectation"]))):
                by_expectation.setdefault((str(row["check_name"]), i), _Merge()).add(part)
    evrs = [merge.result() for merge in by_expectation.values()]
    good = sum(1 for e in evrs if e.success)
    listed = sorted(cities)
    suite = ExpectationSuiteValidationResult(
        success=good == len(evrs), results=evrs, suite_name=f"citykpi.{table}",
        statistics={"evaluated_expectations": len(evrs), "successful_expectations": good,
                    "unsuccessful_expectations": len(evrs) - good,
                    "success_percent": 100.0 * good / len(evrs) if evrs else None},
        meta={"run_id": {"run_name": ", ".join(sorted(runs)), "run_time": max(evaluated)},
              "active_batch_definition": {"datasource_name": "citykpi", "data_asset_name": table,
                                          "batch_definition_name": f"{len(listed)} cities"},
              "cities": listed[:50]})
    document = ValidationResultsPageRenderer().render(suite)
    return offline(DefaultJinjaPageView().render(document))


_STATUSES = ("passed", "failed", "warned", "skipped")


def _counts(rows: list[dict[str, Any]]) -> str:
    return "".join(f"<td>{sum(1 for r in rows if r['status'] == s)}</td>" for s in _STATUSES)


def _index(context: PublishContext, results: pl.DataFrame, pages: dict[str, str]) -> str:
    """The site's front page: one row per table (its page) and one per city, with the verdicts."""
    head = "".join(f"<th>{s}</th>" for s in _STATUSES)
    results = results.select("table_name", "city_id", "status")  # not each result's JSON (all cities' rows)
    tables = "".join(
        f'<tr><td><a href="{html.escape(pages[str(t)])}">{html.escape(str(t))}</a></td>{_counts(g.to_dicts())}</tr>'
        for (t,), g in results.group_by(["table_name"], maintain_order=True))
    cities = []
    for (city_id,), group in results.group_by(["city_id"], maintain_order=True):
        rows = group.to_dicts()
        bad = sorted({f"{r['table_name']}" for r in rows if r["status"] in ("failed", "warned")})
        links = ", ".join(f'<a href="{html.escape(pages[t])}">{html.escape(t)}</a>' for t in bad)
        cities.append(f"<tr><td>{html.escape(context.city(str(city_id)).name)}</td>{_counts(rows)}"
                      f"<td>{links or 'all passed'}</td></tr>")
    run = (context.quality or {}).get("run_id") if isinstance(context.quality, dict) else None
    title = f"Quality checks (Great Expectations Data Docs) — release {context.release_id or ''}"
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_EXTRA_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>One page per table, as Great Expectations validated it: once for all the cities of the run
({html.escape(str(run or 'newest result of each check'))}). Failed checks are blocking (their rows are marked and
the KPIs using them are <code>failed_check</code>); warned checks are reported only. A failing expectation lists the
failing rows GX found, with their city and key; a check measured in DuckDB names its failing rows in its sentence.</p>
<h2>Tables</h2><table><thead><tr><th>table</th>{head}</tr></thead><tbody>{tables}</tbody></table>
<h2>Cities</h2><table><thead><tr><th>city</th>{head}<th>not passed in</th></tr></thead>
<tbody>{''.join(cities)}</tbody></table></body></html>
"""


def write_data_docs(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext,
                    folder: Path) -> list[FileEntry]:
    """The Data Docs site, when the release has stored quality results (no page otherwise)."""
    results = context.quality_results
    if results is None or results.is_empty():
        return []
    results = results.sort("table_name", "city_id", "check_name")
    entries: list[FileEntry] = []
    pages: dict[str, str] = {}
    for (table,), group in results.group_by(["table_name"], maintain_order=True):
        relative = page_file(str(table))
        write_bytes(folder, relative, render_page(str(table), group.iter_rows(named=True)).encode("utf-8"))
        entries.append(file_entry(folder, relative, ROLE, f"GX Data Docs: {table}, every city"))
        pages[str(table)] = relative.removeprefix(f"{FOLDER}/")
    write_bytes(folder, INDEX, _index(context, results.sort("city_id", "table_name"), pages).encode("utf-8"))
    return [file_entry(folder, INDEX, ROLE, "GX Data Docs: the quality validations, one page per table"),
            *entries]
