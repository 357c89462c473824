"""The notebooks run top to bottom against a real release (their code cells, in order).

The release holds two demo cities (the demo city and a twin generated with another seed, see
test_publish_multicity.two_city_home), so the comparison notebook has cities and years to compare.
Every Altair chart a notebook leaves behind is turned into a Vega-Lite spec, which validates it.
"""

from __future__ import annotations

import json
from pathlib import Path

import altair as alt
import pytest
from test_publish_multicity import two_city_home

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks_for_exploring_and_comparing() -> None:
    assert {"explore_release.ipynb", "compare_cities.ipynb"} <= {p.name for p in NOTEBOOKS}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_code_cells_run(notebook: Path, tmp_path_factory: pytest.TempPathFactory,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    home = two_city_home(tmp_path_factory.getbasetemp())
    monkeypatch.setenv("CITYKPI_HOME", str(home.root))
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    namespace: dict[str, object] = {}
    executed = 0
    for cell in cells:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{notebook.name}[{cell['id']}]", "exec"), namespace)
            executed += 1
    assert executed >= 3
    assert "values" in namespace
    charts = [value for value in namespace.values() if isinstance(value, alt.TopLevelMixin)]
    assert len(charts) >= 3, f"{notebook.name} draws fewer than three charts"
    for chart in charts:
        chart.to_dict()  # validates against the Vega-Lite schema
