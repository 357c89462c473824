"""docs/indicators.md is generated from the catalogue (python -m kpis.docs) and must be up to date."""

from __future__ import annotations

from pathlib import Path

from kpis import docs
from kpis.catalogue import load_catalogue


def test_docs_page_is_up_to_date() -> None:
    current = docs.DOCS_PATH.read_text(encoding="utf-8") if docs.DOCS_PATH.is_file() else ""
    assert current == docs.render(), f"{docs.DOCS_PATH} is out of date: run `python -m kpis.docs` and commit it"


def test_every_indicator_and_data_point_formula_is_documented() -> None:
    text = docs.render()
    for indicator in load_catalogue():
        assert f"### {indicator.id} {indicator.name}\n" in text, indicator.id
        for data_point in indicator.data_point_compute:
            assert f"**Formula ({data_point}), version" in text, (indicator.id, data_point)
    assert "`(voters_total) / (eligible_voters) * 100; inputs of the latest year from t - 6 to t" in text
    assert '`wastewater_treated_m3` [m3] (data points: primary, secondary, tertiary)' in text


def test_sections_follow_frameworks_and_dimensions() -> None:
    headings = [line for line in docs.render().splitlines() if line.startswith("## ")]
    assert headings == ["## U4SSC KPIs (ITU-T Y.4903): Economy", "## U4SSC KPIs (ITU-T Y.4903): Environment",
                        "## U4SSC KPIs (ITU-T Y.4903): Society and Culture", "## SDG 11 indicators"]


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "indicators.md"
    stale.write_text("# old\n", encoding="utf-8")
    assert docs.main(["--check", "-o", str(stale)]) == 1
    assert docs.main(["-o", str(stale)]) == 0
    assert docs.main(["--check", "-o", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == docs.render()
