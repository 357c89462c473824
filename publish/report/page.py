"""One HTML page of the report: sections, charts filled by vegaEmbed, screen and print styles.

Pages load the shared `vega.js` with a relative `<script src>` (see bundle.py). Wide content
(tables, faceted charts) scrolls inside its own box, so the page itself never scrolls sideways,
down to a 390 px phone. Printing opens every `<details>`, hides navigation and keeps each
indicator section on one page where it fits: a clean PDF annex.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from publish.report.display import show
from publish.scores import BAND_COLORS, NO_BAND_COLOR

EMBED_OPTIONS = {"actions": False, "renderer": "svg"}  # SVG: the charts are in the DOM (printable, testable)
DARK_BANDS = {"<33", "95+"}  # white text on these fills, dark text on the lighter two

STYLE = """
*, *::before, *::after { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5rem auto; max-width: 1100px;
       padding: 0 1rem; color: #222; line-height: 1.45; overflow-wrap: anywhere; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
h3 { margin-top: 1.6rem; }
a { color: #0b5cad; }
.meta { color: #555; } .note { color: #555; font-style: italic; }
nav.toc { background: #f6f8fa; border: 1px solid #e1e4e8; padding: .4rem 1rem; margin: 1rem 0; }
nav.toc ol { margin: .3rem 0; padding-left: 1.2rem; } nav.toc li { margin: .1rem 0; }
nav.toc ol ol { columns: 2 16rem; font-size: .9rem; }
nav.toc details { display: inline-block; margin-left: .4rem; } nav.toc details[open] { display: block; }
nav.toc details summary { margin: 0; color: #555; font-size: .9rem; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: .85rem; margin: .6rem 0; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
/* Cells wrap at word boundaries only (the table scrolls in its box instead of breaking words letter by letter). */
th, td { overflow-wrap: break-word; word-break: normal; max-width: 28rem; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; } th { background: #f0f4f8; }
.status-computed { color: #2e7d32; } .status-missing { color: #757575; } .status-failed_check { color: #c62828; }
.chart { margin: .8rem 0; max-width: 100%; overflow-x: auto; }
/* vega-embed makes its div inline-block; charts sized to their container need a block of the page's width. */
div.chart.vega-embed { display: block; width: 100%; }
.maps div.chart.vega-embed { width: auto; display: inline-block; } details summary { cursor: pointer; margin: .6rem 0; }
.disclaimer { border-left: 4px solid #fdae61; background: #fff8ec; padding: .5rem .8rem; }
.legend span { display: inline-block; padding: .1rem .45rem; border-radius: 3px; margin: .1rem .4rem .1rem 0;
               font-size: .85rem; }
td.band { font-weight: 600; white-space: nowrap; }
.arrow { font-size: 1.15rem; font-weight: 700; text-align: center; }
.tone-good { color: #1a7f37; } .tone-fair { color: #8a6d00; } .tone-poor { color: #c45100; }
.tone-bad { color: #c62828; } .tone-neutral { color: #666; }
.yoy-better { background: #dff3e3; } .yoy-worse { background: #fbe0dc; } .yoy-same { background: #f3f3f3; }
.yoy-up, .yoy-down { background: #e8eef7; }
.verdict-better { color: #1a7f37; font-weight: 600; } .verdict-worse { color: #c62828; font-weight: 600; }
section.indicator { border-top: 1px solid #e5e5e5; padding-top: .4rem; }
dl.facts { display: grid; grid-template-columns: minmax(6rem, max-content) 1fr; gap: .15rem .8rem; margin: .5rem 0; }
dl.facts dt { font-weight: 600; color: #444; } dl.facts dd { margin: 0; }
.big { font-size: 1.35rem; font-weight: 700; }
code, pre { font-size: .82rem; background: #f6f8fa; } pre { white-space: pre-wrap; padding: .4rem; }
.maps { display: flex; flex-wrap: wrap; gap: 1rem; }
@media (max-width: 600px) { body { margin: .8rem auto; padding: 0 .6rem; } h1 { font-size: 1.3rem; }
  dl.facts { grid-template-columns: 1fr; } dl.facts dd { margin-bottom: .3rem; } nav.toc ol ol { columns: 1; } }
@media print {
  body { max-width: none; margin: 0; font-size: 10pt; } nav.toc, .noprint { display: none; }
  h2 { break-before: page; } h2:first-of-type { break-before: auto; }
  section.indicator, table, .chart { break-inside: avoid; }
  .scroll, .chart { overflow: visible; }
  a[href$=".csv"]::after, a[href$=".parquet"]::after, a[href$=".json"]::after, a[href$=".xlsx"]::after {
    content: " (" attr(href) ")"; font-size: .8em; color: #555; }
  .yoy-better, .yoy-worse, td.band { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def script_json(value: Any) -> str:
    # "</" inside a <script> would end it early; JSON allows the escaped form.
    return json.dumps(value, ensure_ascii=False, sort_keys=True).replace("</", "<\\/")


def slug(text: str) -> str:
    """A stable HTML id / file name piece: letters, digits and '-' only."""
    out = "".join(ch if ch.isalnum() else "-" for ch in text.lower())
    return "-".join(part for part in out.split("-") if part) or "x"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = (),
          units: Sequence[str | None] | None = None) -> str:
    """An HTML table in a horizontally scrolling box; floats are shown rounded (`display.show`)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for n, row in enumerate(rows):
        cells = []
        for index, cell in enumerate(row):
            text = show(cell, units[n] if units else None) if isinstance(cell, float) else esc_text(cell)
            cls = ' class="num"' if index in numeric else ""
            if header[index] == "status" and cell:
                cls = f' class="status-{esc(cell)}"'
            cells.append(f"<td{cls}>{esc(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def esc_text(cell: Any) -> str:
    return "" if cell is None else str(cell)


def band_style(band: str | None) -> str:
    """Fill and ink of a U4SSC band (grey for N/A)."""
    return f"background:{BAND_COLORS.get(band or '', NO_BAND_COLOR)};color:{'#fff' if band in DARK_BANDS else '#222'}"


def band_cell(band: str | None, text: str) -> str:
    return f'<td class="band" style="{band_style(band)}">{esc(text)}</td>'


class Page:
    """Collects sections; charts become divs filled by vegaEmbed at the end of the body.

    A chart's spec is written as script JSON when it is added (its shape without the data, and its data):
    a page body kept between releases (publish/pieces.py) is then read back and rendered without decoding
    and encoding a hundred chart specs again."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.specs: list[tuple[str, str, str]] = []  # (div id, the spec without datasets, the datasets or null)

    def add(self, text: str) -> None:
        self.parts.append(text)

    def chart(self, name: str, spec: dict[str, Any] | None, empty: str) -> None:
        if spec is None:
            self.add(f'<p class="note">{esc(empty)}</p>')
            return
        div = f"chart-{name}"
        shape = script_json({k: v for k, v in spec.items() if k != "datasets"})
        self.specs.append((div, shape, script_json(spec["datasets"]) if "datasets" in spec else "null"))
        self.add(f'<div class="chart" id="{esc(div)}" data-chart="{esc(name)}"></div>')

    def extend(self, other: Page) -> None:
        """Append another page's sections and charts (chart ids are the callers' to keep unique)."""
        self.parts.extend(other.parts)
        self.specs.extend(other.specs)

    def to_bytes(self) -> bytes:
        return json.dumps({"parts": self.parts, "specs": self.specs}, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Page:
        stored = json.loads(data)
        page = cls()
        page.parts = list(stored["parts"])
        page.specs = [(str(div), str(shape), str(datasets)) for div, shape, datasets in stored["specs"]]
        return page

    def render(self, title: str, script_src: str) -> str:
        # Charts of one kind differ only in their `datasets` (the trend of each indicator): the rest of the
        # spec is written once per page and shared, which keeps a page with a hundred charts small.
        shapes: dict[str, int] = {}
        calls = []
        for div, shape, data in self.specs:
            index = shapes.setdefault(shape, len(shapes))
            calls.append(f"chart({script_json('#' + div)}, {index}, {data});")
        embeds = ("const shapes = [" + ",\n".join(shapes) + "];\n"
                  "function chart(div, shape, datasets) {\n"
                  "  const spec = Object.assign({}, shapes[shape]);\n"
                  "  if (datasets) spec.datasets = datasets;\n"
                  "  vegaEmbed(div, spec, embedOpt).catch(report);\n}\n" + "\n".join(calls))
        return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n"
                f"<script src=\"{esc(script_src)}\"></script>\n</head>\n<body>\n"
                + "\n".join(self.parts)
                + "\n<script>\nconst embedOpt = " + script_json(EMBED_OPTIONS) + ";\n"
                "function report(error) { console.error(error); }\n"
                # A PDF annex shows everything: open the folded parts before printing.
                "window.addEventListener('beforeprint', () => "
                "document.querySelectorAll('details').forEach(d => { d.open = true; }));\n"
                + embeds + "\n</script>\n</body>\n</html>\n")
