"""The notebooks run top to bottom against a real release (their code cells, in order), and their charts
render offline.

The release holds two demo cities (the demo city and a twin generated with another seed, see
test_publish_multicity.two_city_home), so the comparison notebook has cities and years to compare.
Every Altair chart a notebook leaves behind is turned into a Vega-Lite spec, which validates it, and
into the display bundle Jupyter shows in an executed notebook: HTML with the Vega JavaScript inlined,
loading no script from a CDN or any other address.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import altair as alt
import polars as pl
import pytest
from test_publish_multicity import two_city_home

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
EXTERNAL_SCRIPT = re.compile(r"<script[^>]*\bsrc\s*=", re.IGNORECASE)
CDN = re.compile(r"cdn\.jsdelivr\.net|unpkg\.com|cdnjs|require\.config", re.IGNORECASE)


@pytest.fixture(autouse=True)
def default_renderer() -> Iterator[None]:
    """The notebooks switch Altair's renderer for the whole process: switch it back afterwards."""
    active = alt.renderers.active
    options = dict(alt.renderers.options)
    yield
    alt.renderers.enable(active, **options)


def test_there_are_notebooks_for_exploring_comparing_and_scores() -> None:
    assert {"explore_release.ipynb", "compare_cities.ipynb", "scores_progress.ipynb"} <= {p.name for p in NOTEBOOKS}


def _run(notebook: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("CITYKPI_HOME", str(home))
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    namespace: dict[str, object] = {}
    executed = 0
    for cell in cells:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{notebook.name}[{cell['id']}]", "exec"), namespace)
            executed += 1
    assert executed >= 3
    return namespace


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_code_cells_run_and_charts_render_offline(notebook: Path, tmp_path_factory: pytest.TempPathFactory,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    home = two_city_home(tmp_path_factory.getbasetemp())
    namespace = _run(notebook, home.root, monkeypatch)
    assert "values" in namespace
    charts = [value for value in namespace.values() if isinstance(value, alt.TopLevelMixin)]
    assert len(charts) >= 3, f"{notebook.name} draws fewer than three charts"
    for chart in charts:
        spec = chart.to_dict()  # validates against the Vega-Lite schema
        bundle = chart._repr_mimebundle_()  # what Jupyter stores as the cell's output
        html = (bundle[0] if isinstance(bundle, tuple) else bundle)["text/html"]
        assert not EXTERNAL_SCRIPT.search(html), f"{notebook.name}: a chart loads a script from elsewhere"
        assert not CDN.search(html), f"{notebook.name}: a chart refers to a CDN"
        assert "vegaEmbed" in html and len(html) > 200_000, "the Vega JavaScript is not inlined"
        assert json.dumps(spec["$schema"]) in html or spec["$schema"] in html


def test_the_scores_notebook_reads_the_release_scores_and_explains_exclusions(
        tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = two_city_home(tmp_path_factory.getbasetemp())
    namespace = _run(next(p for p in NOTEBOOKS if p.name == "scores_progress.ipynb"), home.root, monkeypatch)
    scores = namespace["scores"]
    excluded = namespace["excluded"]
    assert isinstance(scores, pl.DataFrame) and isinstance(excluded, pl.DataFrame)
    # Every excluded data point is counted under exactly one reason, per city.
    assert int(excluded["data_points"].sum()) == scores.filter(pl.col("status") == "excluded").height > 0
    assert any(r.startswith("no target in force") for r in excluded["reason"].to_list()), excluded
    assert not any("; " in r for r in excluded["reason"].to_list())
    cities = {c["id"] for c in namespace["release"].manifest["cities"]}  # type: ignore[attr-defined]
    assert set(namespace["progress"]["city_id"].unique()) == cities  # type: ignore[index]
    assert set(namespace["dimensions"]["city_id"].unique()) == cities  # type: ignore[index]
