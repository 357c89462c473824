"""The notebooks run top to bottom against a real release (their code cells, in order)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.steps import run_plain
from sources.config import load_city_config
from sources.demo.generator import generate_demo_city
from warehouse.home import Home

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_code_cells_run(notebook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Home(tmp_path / "home")
    config = load_city_config(generate_demo_city(tmp_path / "city", scale=0.125))
    run_plain(home, [config], run_id="notebook-test")
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
