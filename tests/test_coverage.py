"""`citykpi coverage`: a dry evaluation of which indicators a config can compute."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kpis.catalogue import load_catalogue
from kpis.coverage import Coverage, coverage, format_coverage
from pipelines.cli import main
from sources.config import load_city_config
from sources.demo import generate_demo_city
from sources.inputs import config_inputs


def config_coverage(path: Path) -> Coverage:
    """What a caller does: read the config's inputs (sources), hand the plain values to kpis."""
    loaded = load_city_config(path)
    return coverage(loaded.city_id, loaded.config.city.reporting_years, config_inputs(loaded.config))


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_demo_city(tmp_path_factory.mktemp("cov") / "demo", scale=0.125)


def test_demo_config_computes_every_indicator(demo_config: Path) -> None:
    result = config_coverage(demo_config)
    expected = sum(len(i.data_points) or 1 for i in load_catalogue())
    assert len(result.rows) == expected
    offenders = [(r.indicator_id, r.data_point, r.missing) for r in result.rows if r.status != "computed"]
    assert not offenders


def test_reduced_config_names_the_missing_variables(demo_config: Path, tmp_path: Path) -> None:
    raw = yaml.safe_load(demo_config.read_text(encoding="utf-8"))
    for source in raw["sources"]:
        source["location"] = str((demo_config.parent / source["location"]).resolve())
        block = source.get("observations")
        if block:
            block["variables"] = {k: v for k, v in block["variables"].items()
                                  if v["variable"] not in ("unemployed_persons", "households_total")}
    raw["sources"] = [s for s in raw["sources"] if s.get("observations") is None or s["observations"]["variables"]]
    raw["allowed_roots"] = [str(demo_config.parent)]
    reduced = tmp_path / "reduced.yaml"
    reduced.write_text(yaml.safe_dump(raw), encoding="utf-8")
    rows = {(r.indicator_id, r.data_point): r for r in config_coverage(reduced).rows}
    assert rows["EC:P:EM:1C", None].status == "missing"
    assert rows["EC:P:EM:1C", None].missing == ("unemployed_persons",)
    assert rows["EC:ICT:ICT:1C", None].missing == ("households_total",)
    assert rows["EN:EN:WS:2C", None].status == "computed"


def test_cli_lists_statuses(demo_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["coverage", str(demo_config), "--status", "missing"]) == 0
    out = capsys.readouterr().out
    assert "total (indicator x data point): computed" in out and "missing 0" in out


def test_format_names_what_is_lacking(demo_config: Path) -> None:
    result = config_coverage(demo_config)
    result.rows[0] = type(result.rows[0])("X", "u4ssc", "Example", None, "missing", ("population",))
    assert "X" in format_coverage(result, only="missing") and "lacks population" in format_coverage(result)
