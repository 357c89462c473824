"""The release's HTML report (role `report_html`), split by job.

- `bundle.py`: the Vega JavaScript, written once per release as `report/vega.js`;
- `display.py`: rounding, Yes/No words, direction-aware better/worse, the meaningful-change threshold;
- `charts.py`: Vega-Lite specs (Altair), each fed aggregates only;
- `page.py`: the HTML page, screen and print styles;
- `sections.py`: City Snapshot tables, quality, the release's files;
- `city.py`: one city's page; `overview.py`: the release overview for several cities.

`publish/report_html.py` writes the files (docs/releases.md, "HTML report").
"""
