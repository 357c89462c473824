"""Every catalogue entry says which way is better (`direction`), and the report's better/worse follows it.

The direction is read from the indicator's meaning (kpis/indicators/*.yaml, docs/indicators.md); the
targets tables must agree with it, the release carries it, and the report colours a fall of a
lower-is-better indicator (PM2.5) as better.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from pydantic import ValidationError

from kpis.benchmarking.targets import default_targets
from kpis.catalogue import DIRECTION_WORDS, FRAMEWORK_FILES, Indicator, indicators_by_id, load_catalogue
from publish import City, PublishContext
from publish.datapackage import indicator_rows
from publish.releases import RELEASE_COLUMNS
from publish.report.display import Directions
from publish.report_html import NAME, write_report_html


def raw_entries() -> list[dict[str, Any]]:
    entries = []
    for filename in FRAMEWORK_FILES.values():
        text = resources.files("kpis").joinpath("indicators", filename).read_text(encoding="utf-8")
        entries += yaml.safe_load(text)
    return entries


def test_every_entry_states_a_direction_from_the_closed_set() -> None:
    entries = raw_entries()
    assert len(entries) == len(load_catalogue()) > 100
    # Written in the YAML itself: a default could never be a decision about the indicator's meaning.
    assert [e["id"] for e in entries if "direction" not in e] == []
    assert {e["direction"] for e in entries} == set(DIRECTION_WORDS)
    for indicator in load_catalogue():
        for point in indicator.data_points or [None]:
            assert indicator.direction_for(point) in DIRECTION_WORDS
        if "target_band" in (indicator.direction, *indicator.data_point_directions.values()):
            assert indicator.direction_note, indicator.id


def test_directions_follow_the_meaning_of_well_known_indicators() -> None:
    by_id = indicators_by_id()
    assert by_id["EN:EN:AQ:1C"].direction_for("PM2.5") == "lower_is_better"
    assert by_id["11.6.2"].direction_for("PM2.5") == "lower_is_better"
    assert by_id["EC:I:WS:3C"].direction == "lower_is_better"  # water supply loss (a third-party map got it wrong)
    assert by_id["EC:ICT:ICT:1C"].direction == "higher_is_better"
    assert by_id["SC:SH:SI:1C"].direction == "target_band"  # female:male pay ratio, 1 = equality
    modes = by_id["EC:I:T:4A"]
    assert (modes.direction_for("private vehicle"), modes.direction_for("cycling")) == (
        "lower_is_better", "higher_is_better")
    waste = by_id["EN:EN:WA:1C"]
    assert (waste.direction_for("landfill"), waste.direction_for("recycled")) == ("lower_is_better", "higher_is_better")


def test_default_targets_agree_with_the_catalogue() -> None:
    by_id = indicators_by_id()
    sides = {"higher_is_better": "higher", "lower_is_better": "lower"}
    for row in default_targets().iter_rows(named=True):
        meaning = by_id[row["indicator_id"]].direction_for(row["data_point"])
        assert sides.get(meaning, row["direction"]) == row["direction"], row


@pytest.mark.parametrize(("change", "message"), [
    ({"direction": None}, "direction"),
    ({"direction": "up"}, "direction"),
    ({"direction": "target_band"}, "needs a direction_note"),
    ({"data_points": ["a"], "data_point_directions": {"b": "neutral"}}, "unknown data point(s) ['b']"),
])
def test_a_missing_or_unknown_direction_is_refused(change: dict[str, Any], message: str) -> None:
    entry: dict[str, Any] = {"id": "X:1", "framework": "sdg11", "name": "x", "unit": "%",
                             "direction": "higher_is_better", **change}
    if entry["direction"] is None:
        del entry["direction"]
    with pytest.raises(ValidationError, match=re.escape(message)):
        Indicator.model_validate(entry)


def test_the_release_metadata_carries_the_direction() -> None:
    rows = {r["id"]: r for r in indicator_rows(load_catalogue())}
    assert rows["EN:EN:AQ:1C"]["direction"] == "lower_is_better"
    assert rows["EC:I:T:4A"]["data_point_directions"]["walking"] == "higher_is_better"
    assert rows["SC:SH:SI:1C"]["direction_note"]


# ---- the report: better / worse by the catalogue's direction -----------------------------------------------

SERIES = {  # (indicator, data point): values 2022, 2023, 2024
    ("EN:EN:AQ:1C", "PM2.5"): (12.0, 10.0, 8.0),  # lower is better, falling: better
    ("EC:ICT:ICT:1C", None): (90.0, 80.0, 70.0),  # higher is better, falling: worse
    ("SC:SH:SI:1C", None): (0.7, 0.8, 0.9),  # target band: up, neither better nor worse
}


def one_city_report(folder: Path) -> str:
    by_id = indicators_by_id()
    rows = [{"city_id": "c", "year": 2022 + n, "framework": by_id[ind].framework, "indicator_id": ind,
             "data_point": point, "value": value, "unit": by_id[ind].unit, "status": "computed",
             "status_reason": None, "numerator": None, "denominator": None, "missing_inputs": [], "inputs": "[]",
             "formula": "synthetic", "formula_version": "1", "confidence": None, "method_variant": None,
             "caveats": None}
            for (ind, point), values in SERIES.items() for n, value in enumerate(values)]
    frame = pl.DataFrame(rows, schema_overrides={"year": pl.Int32}, infer_schema_length=None).select(RELEASE_COLUMNS)
    context = PublishContext(cities=(City("c", "Testville", "XX", (2022, 2023, 2024)),),
                             release_id="20261205T000000Z-test", created_at="2026-12-05T00:00:00+00:00")
    write_report_html(frame, load_catalogue(), context, folder)
    return (folder / NAME).read_text(encoding="utf-8")


def year_over_year_row(page: str, indicator_id: str) -> str:
    section = page[page.index('id="year-over-year"'):]
    section = section[:section.index("</section>")]
    found = re.search(r"<tr><td[^>]*><a href=\"#[^\"]+\">" + re.escape(indicator_id) + r"</a>.*?</tr>", section)
    assert found, f"{indicator_id} not in the year-over-year table"
    return found.group(0)


def test_the_report_says_better_when_a_lower_is_better_value_falls(tmp_path: Path) -> None:
    page = one_city_report(tmp_path)
    pm25 = year_over_year_row(page, "EN:EN:AQ:1C")
    assert "lower is better" in pm25
    assert pm25.count("yoy-better") == 2 and "yoy-worse" not in pm25  # 12 -> 10 -> 8 µg/m3
    internet = year_over_year_row(page, "EC:ICT:ICT:1C")
    assert internet.count("yoy-worse") == 2 and "yoy-better" not in internet
    pay = year_over_year_row(page, "SC:SH:SI:1C")
    assert "yoy-better" not in pay and "yoy-worse" not in pay and pay.count("yoy-up") == 2
    assert DIRECTION_WORDS["target_band"] in pay
    # The indicator's own section states the direction and its note.
    assert "nearer the reference point is better. 1 is equal pay" in page


def test_directions_come_from_the_catalogue_not_the_targets() -> None:
    directions = Directions.build(load_catalogue())
    # No default target exists for violent crime or emergency response time, yet lower is better.
    assert directions.of("any", "SC:SH:SA:8C", None) == "lower"
    assert directions.of("any", "SC:SH:SA:5A", None) == "lower"
    assert directions.of("any", "EC:P:IN:3A", None) is None  # SMEs: a context figure
    assert directions.word("any", "EC:P:IN:3A", None) == DIRECTION_WORDS["neutral"]
