"""The report at many cities (issue #16: 64 cities failed with Altair's MaxRowsError) and its number rules.

Synthetic kpi_values rows for 64 cities (no pipeline run): the report must be written, the overview
must stay small, every city gets its own page, the Vega JavaScript is written once, and no chart
embeds more rows than `MAX_CHART_ROWS`. Altair's own 5,000-row limit stays switched on.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import altair as alt
import polars as pl
import pytest

from kpis.catalogue import load_catalogue
from publish import City, PublishContext
from publish.releases import RELEASE_COLUMNS
from publish.report import charts
from publish.report.display import Directions, arrow, meaningful, show, verdict
from publish.report_html import BUNDLE, NAME, city_file, write_report_html

YEARS = (2022, 2023, 2024)
SHAPES = re.compile(r"^const shapes = (\[.*?\]);$", re.M | re.S)
CALL = re.compile(r"^chart\((\"[^\"]+\"), (\d+), (.*)\);$", re.M)


def synthetic_release(n_cities: int) -> tuple[pl.DataFrame, PublishContext]:
    """kpi_values rows (every catalogue indicator and data point, three years) and dimension roll-ups."""
    catalogue = load_catalogue()
    rows, rollups = [], []
    for c in range(n_cities):
        city = f"city-{c:03d}"
        for indicator in catalogue:
            for point in indicator.data_points or [None]:
                for y, year in enumerate(YEARS):
                    value = float((c * 7 + y * 3 + len(indicator.id)) % 97) + 0.000001 * c
                    missing = (c + y) % 11 == 0
                    rows.append({"city_id": city, "year": year, "framework": indicator.framework,
                                 "indicator_id": indicator.id, "data_point": point,
                                 "value": None if missing else value, "unit": indicator.unit,
                                 "status": "missing" if missing else "computed", "status_reason": None,
                                 "numerator": None, "denominator": None, "missing_inputs": [],
                                 "inputs": "[]", "formula": "synthetic", "formula_version": "1",
                                 "confidence": None, "method_variant": None, "caveats": None})
        for d, dimension in enumerate(("Economy", "Environment", "Society and Culture")):
            rollups.append({"city_id": city, "year": YEARS[-1], "level": "dimension", "group_path": dimension,
                            "dimension": dimension, "subdimension": None, "category": None, "n_kpis": 20,
                            "n_scored_kpis": 5, "n_scored_data_points": 5, "points_sum": 10.0, "max_points": 20,
                            "score_pct": float((c * 13 + d * 29) % 101), "band": "33-66", "band_label": "x"})
    frame = pl.DataFrame(rows, schema_overrides={"year": pl.Int32}, infer_schema_length=None).select(RELEASE_COLUMNS)
    cities = tuple(City(f"city-{c:03d}", f"City {c}", "XX", YEARS) for c in range(n_cities))
    context = PublishContext(cities=cities, benchmarks={"kpi_rollups": pl.DataFrame(rollups)},
                             release_id="20261205T000000Z-test", created_at="2026-12-05T00:00:00+00:00")
    return frame, context


def embedded_specs(page: Path) -> list[dict]:
    """Every chart's spec as vegaEmbed gets it: the page's shared shape plus the chart's own datasets."""
    text = page.read_text(encoding="utf-8")
    found = SHAPES.search(text)
    assert found, f"{page.name}: no chart shapes"
    shapes = json.loads(found.group(1))
    specs = []
    for call in CALL.finditer(text):
        spec = dict(shapes[int(call.group(2))])
        datasets = json.loads(call.group(3))
        if datasets is not None:
            spec["datasets"] = datasets
        specs.append(spec)
    return specs


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame]:
    frame, context = synthetic_release(64)
    assert frame.height > 5000 * 3  # far more rows than Altair would chart
    folder = tmp_path_factory.mktemp("many")
    write_report_html(frame, load_catalogue(), context, folder)
    return folder, frame


def test_64_cities_get_a_small_overview_and_one_page_each(many: tuple[Path, pl.DataFrame]) -> None:
    folder, _ = many
    assert alt.data_transformers.options.get("max_rows", 5000) == 5000  # the limit is on, not disabled
    overview = (folder / NAME).read_text(encoding="utf-8")
    assert len(overview) < 300_000, f"overview is {len(overview)} bytes for 64 cities"
    assert "64 cities: city indicators 2022–2024" in overview
    assert 'class="indicator"' not in overview  # the detail lives on the city pages
    assert 'id="chart-cities"' not in overview  # 64 cities are not drawn side by side
    pages = sorted((folder / "report").glob("*.html"))
    assert [p.name for p in pages] == [Path(city_file(f"city-{c:03d}")).name for c in range(64)]
    bundle = (folder / BUNDLE).stat().st_size
    assert bundle > 100_000
    for page in [folder / NAME, *pages]:
        text = page.read_text(encoding="utf-8")
        assert "<script src=" in text and "vegaEmbed" in text
        assert text.count("function vegaEmbed") == 0 and len(text) < bundle, f"{page.name} inlines the bundle"
    # Each city's links point inside the release, to its own page's neighbours only.
    assert 'href="report/city-063.html"' in overview
    first = (folder / "report" / "city-000.html").read_text(encoding="utf-8")
    assert 'href="../report.html"' in first and "City 0: city indicators 2022–2024" in first


def test_no_chart_embeds_more_rows_than_it_needs(many: tuple[Path, pl.DataFrame]) -> None:
    folder, _ = many
    overview_specs = embedded_specs(folder / NAME)
    assert len(overview_specs) >= 2  # coverage and the score distribution
    for spec in overview_specs:
        assert charts.embedded_rows(spec) <= 60, spec.get("$schema")  # aggregates: independent of 64 cities
    for page in sorted((folder / "report").glob("*.html"))[:5]:
        specs = embedded_specs(page)
        assert len(specs) > 20
        assert max(charts.embedded_rows(s) for s in specs) <= charts.MAX_CHART_ROWS


def test_every_chart_spec_is_valid_vega_lite(many: tuple[Path, pl.DataFrame]) -> None:
    """The report makes its specs without Altair's validation (publish/report/charts.py:_spec): here
    every spec of the overview and of five city pages is validated against the Vega-Lite schema."""
    from altair.utils.schemapi import validate_jsonschema
    from altair.vegalite.v6.schema import load_schema

    folder, _ = many
    schema = load_schema()
    specs = [*embedded_specs(folder / NAME)]
    for page in sorted((folder / "report").glob("*.html"))[:5]:
        specs += embedded_specs(page)
    assert len(specs) > 100
    for spec in specs:
        validate_jsonschema(spec, schema)  # raises on the first spec that is not valid Vega-Lite


def test_a_chart_fed_too_many_rows_fails_loudly() -> None:
    rows = [{"year": 2000 + n, "value": float(n), "data_point": ""} for n in range(charts.MAX_CHART_ROWS + 1)]
    with pytest.raises(charts.ChartTooBig, match="aggregate before charting"):
        charts.trend(rows, "%", [])


def test_display_values_are_rounded_and_yes_no_is_words() -> None:
    assert show(0.280001) == "0.28"
    assert show(99.82033) == "99.8"
    assert show(118277.4) == "118,277"
    assert show(0.0038312) == "0.00383"
    assert show(1.0, "Yes/No (the city's country)") == "Yes" and show(0.0, "Yes/No") == "No"
    assert show(None) == "–"


def test_trends_need_a_meaningful_change_and_follow_the_direction() -> None:
    assert not meaningful(99.82033, 99.82034)
    assert arrow(99.82033, 99.82034) == "→"
    assert arrow(10.0, 11.0) == "↑"
    # Falling disaster deaths (lower is better) are better, not "down, red".
    assert verdict(5.0, 4.0, "lower") == "better" and verdict(5.0, 6.0, "lower") == "worse"
    assert verdict(50.0, 60.0, "higher") == "better"
    assert verdict(50.0, 60.0, None) == "up"
    assert verdict(50.0, 50.2, "higher") == "same"
    # The catalogue's side wins; a city's target direction only picks a side where the catalogue has none.
    directions = Directions.build(load_catalogue(),
                                  [{"city_id": "a", "indicator_id": "11.6.2", "data_point": "PM2.5",
                                    "direction": "higher"},
                                   {"city_id": "a", "indicator_id": "SC:SH:SI:1C", "data_point": None,
                                    "direction": "higher"}])
    assert directions.of("b", "11.6.2", "PM2.5") == "lower" and directions.of("a", "11.6.2", "PM2.5") == "lower"
    assert directions.of("b", "SC:SH:SI:1C", None) is None and directions.of("a", "SC:SH:SI:1C", None) == "higher"
    assert directions.word("a", "SC:SH:SI:1C", None) == "higher is better (the city's target)"


def test_the_trend_chart_starts_at_zero_and_draws_the_target() -> None:
    spec = charts.trend([{"year": 2022, "value": 99.82033, "data_point": None},
                         {"year": 2023, "value": 99.82034, "data_point": None}], "%",
                        [{"target": 100.0, "data_point": ""}])
    assert spec is not None
    line, rule = spec["layer"][0], spec["layer"][1]
    assert line["encoding"]["y"]["scale"]["zero"] is True
    assert rule["mark"]["type"] == "rule" and spec["datasets"]["targets"][0]["target"] == 100.0
    assert [v["shown"] for v in spec["datasets"]["values"]] == ["99.8 %", "99.8 %"]
    assert charts.trend([{"year": 2022, "value": 1.0, "data_point": None}], "%", []) is None  # one year: text


@pytest.mark.slow
def test_the_many_city_overview_and_a_city_page_render_in_chromium(many: tuple[Path, pl.DataFrame],
                                                                   tmp_path: Path) -> None:
    """The 64-city overview (the shape a 1,000-city release has: aggregates, no side-by-side chart) and a
    city page open in headless Chromium with every chart drawn, nothing fetched, no sideways scroll."""
    from tests.test_publish_report import CHROMIUM, chromium_page, open_and_check

    if CHROMIUM is None:
        pytest.skip("headless Chromium not installed (Debian: apt-get install chromium)")
    folder, _ = many
    shots = Path(os.environ.get("CITYKPI_REPORT_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    with chromium_page(tmp_path / "profile") as page:
        for width in (1400, 390):
            state = open_and_check(page, folder / NAME, width, shots, "overview-64")
            assert state["charts"] >= 2, state
            state = open_and_check(page, folder / "report" / "city-063.html", width, shots, "city-063")
            assert state["charts"] > 20, state
            ranked = page.evaluate("document.querySelectorAll('a[href^=\"report/\"]').length")
            assert ranked == 0  # a city page links back, never to its siblings' pages
    print(f"\nscreenshots of the 64-city report: {shots}")


def test_the_overview_of_many_cities_groups_warnings_and_counts_per_city_files() -> None:
    """What grows with every city (warnings per city, a workbook per city and year) is summarised in the
    overview: one line per check naming its first cities, a count per file role."""
    from publish.report.page import Page
    from publish.report.sections import FileLink, files_section, quality_section

    warned = [{"city_id": f"city-{c:03d}", "table": "observations", "check": "time_series_complete",
               "description": "every reporting year present", "failing_count": 2} for c in range(200)]
    warned.append({"city_id": "city-007", "table": "kpi_values", "check": "yoy_bound",
                   "description": "a value changes by at most 50 %", "failing_count": 1})
    page = Page()
    quality_section(page, {"passed": 10, "warned": 201, "failed": 0, "warned_checks": warned}, by_check=True)
    html = page.render("t", "vega.js")
    assert html.count("<li>") == 2, html
    assert "in 200 cities (city-000, city-001, city-002, city-003, city-004 and 195 more), 400 rows in all" in html
    assert "in 1 city (city-007)" in html and "city-199" not in html
    files = [FileLink(f"u4ssc/city-{c:03d}-2024.xlsx", "u4ssc_workbook", "workbook", 1000) for c in range(200)]
    files.append(FileLink("kpi_values.csv", "data", "values", 10))
    page = Page()
    files_section(page, files, "", list_at_most=24)
    html = page.render("t", "vega.js")
    assert "200 files (200.0 kB), e.g." in html and "city-199" not in html
    assert 'href="kpi_values.csv"' in html


def _inlined(spec: dict[str, object]) -> object:
    """A spec with its named datasets put back where they are used (Altair names them by a hash of the
    rows, a template by a fixed name): what Vega-Lite draws, independent of the names."""
    datasets = spec.get("datasets", {})
    assert isinstance(datasets, dict)

    def walk(node: object) -> object:
        if isinstance(node, dict):
            if set(node) == {"name"} and node["name"] in datasets:
                return {"values": datasets[node["name"]]}
            return {k: walk(v) for k, v in node.items() if k != "datasets"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node
    return walk(spec)


def test_the_templated_city_charts_are_the_charts_altair_builds() -> None:
    """district_map and kpi_bands fill a spec Altair built once; built through Altair per call (the way
    they were made before), the charts are the same, data included."""
    kpis = [{"indicator_id": "EC-ICT-1", "data_point": "", "name": "Household internet access",
             "dimension": "Economy", "share_capped_pct": 71.5, "band": "66-95", "band_label": "approaching target",
             "points": 3, "value": 71.5, "target": 100.0, "unit": "%"},
            {"indicator_id": "EN-EQ-1", "data_point": "PM2.5", "name": "Air pollution", "dimension": "Environment",
             "share_capped_pct": 20.0, "band": "<33", "band_label": "far from target", "points": 1,
             "value": 25.0, "target": 5.0, "unit": "µg/m³"},
            {"indicator_id": "EN-EQ-2", "data_point": "", "name": "not scored", "band": None}]
    rows = [{"kpi": k["indicator_id"] + (f" [{k['data_point']}]" if k["data_point"] else ""), "name": k["name"],
             "dimension": k.get("dimension", ""), "share": k["share_capped_pct"], "band": k["band"],
             "band_label": k["band_label"], "points": k["points"], "value": show(k["value"], k["unit"]),
             "target": show(k["target"], k["unit"]), "unit": k["unit"] or ""} for k in kpis if k.get("band")]
    rules = alt.Chart(pl.DataFrame({"share": [33.0, 66.0, 95.0]})).mark_rule(
        color="#666", strokeDash=[4, 3]).encode(x="share:Q")
    bars = alt.Chart(pl.DataFrame(rows)).mark_bar().encode(
        y=alt.Y("kpi:N", sort=[r["kpi"] for r in rows], title=None),
        x=alt.X("share:Q", title="share of target (%, capped at 100)", scale=alt.Scale(domain=[0, 100]),
                axis=alt.Axis(values=[0, 33, 66, 95, 100])),
        color=alt.Color("band:N", scale=alt.Scale(domain=charts.BAND_ORDER, range=[
            charts.BAND_COLORS[b] for b in charts.BAND_ORDER]), title="U4SSC band", sort=charts.BAND_ORDER,
            legend=alt.Legend(orient="bottom")),
        tooltip=["kpi:N", "name:N", "dimension:N", "value:N", "target:N", "unit:N",
                 alt.Tooltip("share:Q", format=".0f"), "points:Q", "band_label:N"])
    built = alt.layer(bars, rules).properties(width="container", height=alt.Step(14)).to_dict()
    templated = charts.kpi_bands(kpis)
    assert templated is not None and _inlined(templated) == _inlined(built)

    features = [{"type": "Feature", "properties": {"name": f"D{n}", "value": float(n), "shown": f"{n} %"},
                 "geometry": {"type": "Polygon", "coordinates": [[[n, 0], [n + 1, 0], [n + 1, 1], [n, 0]]]}}
                for n in range(3)]
    for direction, reverse, legend in [("higher", True, "darker: worse (lower)"),
                                       ("lower", False, "darker: worse (higher)"), (None, False, "darker: higher")]:
        built = alt.Chart(alt.Data(values={"type": "FeatureCollection", "features": features},
                                   format=alt.DataFormat(property="features"))).mark_geoshape(
            stroke="white", strokeWidth=1).encode(
            color=alt.Color("properties.value:Q", title=f"%, {legend}",
                            scale=alt.Scale(scheme="orangered", reverse=reverse, zero=False),
                            legend=alt.Legend(orient="bottom", gradientLength=200)),
            tooltip=[alt.Tooltip("properties.name:N", title="district"),
                     alt.Tooltip("properties.shown:N", title="value")],
        ).project(type="mercator").properties(width=280, height=240, title="Districts").to_dict()
        assert charts.district_map(features, "%", direction, "Districts") == built
    # A template is filled, never changed: the next chart does not carry the last one's rows.
    assert charts.kpi_bands(kpis[1:]) is not None
    again = charts.kpi_bands(kpis)
    assert again is not None and _inlined(again) == _inlined(templated)


def test_equal_scores_share_a_rank_and_say_how_many_share_it() -> None:
    """Among many cities hundreds may tie (1,000 demo cities: hundreds at 92 %): a tie shares its rank
    (1, 1, 3) and names how many share it, instead of an order by city id; the indicator table's best
    and worst say how many other cities hold the same value."""
    from publish.report.overview import _dimension_rankings, _indicator_rankings

    scores = [92.0, 92.0, 92.0, 90.0, 88.0, 88.0, 85.0, 80.0, 80.0, 80.0, 75.0, 70.0]
    cities = [f"c{n:02d}" for n in range(len(scores))]
    rollups = pl.DataFrame({"city_id": cities, "year": [2024] * len(cities), "level": ["dimension"] * len(cities),
                            "dimension": ["Economy"] * len(cities), "score_pct": scores})
    html = _dimension_rankings(rollups, {c: c.upper() for c in cities}, {c: f"{c}.html" for c in cities})
    listed = re.findall(r'<li value="(\d+)"><a href="(c\d\d)\.html">C\d\d</a>: (\d+) %(?: \(shared by (\d+) cities\))?',
                        html)
    ranks = [("1", "c00", "92", "3"), ("1", "c01", "92", "3"), ("1", "c02", "92", "3"), ("4", "c03", "90", ""),
             ("5", "c04", "88", "2"), ("5", "c05", "88", "2"), ("7", "c06", "85", ""), ("8", "c07", "80", "3"),
             ("8", "c08", "80", "3"), ("8", "c09", "80", "3"), ("11", "c10", "75", ""), ("12", "c11", "70", "")]
    assert listed == ranks[:5] + ranks[-5:]  # five at each end

    catalogue = load_catalogue()
    indicator = next(i for i in catalogue if i.id == "EC:ICT:ICT:1C")
    values = pl.DataFrame({"city_id": cities[:4], "year": [2024] * 4, "indicator_id": [indicator.id] * 4,
                           "data_point": [None] * 4, "status": ["computed"] * 4, "value": [9.0, 9.0, 5.0, 1.0],
                           "unit": ["%"] * 4}, schema_overrides={"data_point": pl.String})
    table_html = _indicator_rankings(values, catalogue, Directions({(indicator.id, ""): "higher_is_better"}, {}),
                                     {c: c.upper() for c in cities})
    assert "C00 and 1 more: 9" in table_html and "C03: 1" in table_html
