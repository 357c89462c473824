"""The `demo:` member of canonical/variables.yaml: how the demo city makes up a variable (issue #17).

Parsing gives typed declarations; every mistake is a VariablesError naming the variable and the key.
"""

from __future__ import annotations

from typing import Any

import pytest

from canonical.units import conversion_factor
from canonical.variables import VARIABLES, DemoSeries, VariablesError, parse_variables
from sources.demo.declared import published_unit

BASE: dict[str, Any] = {
    "population": {"unit": "person", "aggregation": "sum", "description": "Residents"},
    "households_total": {"unit": "household", "aggregation": "sum", "description": "Households"},
}


def _parse(**demos: object) -> dict[str, DemoSeries | None]:
    raw = dict(BASE)
    for name, demo in demos.items():
        raw[name] = {"unit": "person", "aggregation": "sum", "description": name, "demo": demo}
    return {name: variable.demo for name, variable in parse_variables(raw).items()}


def test_a_variable_without_demo_has_none() -> None:
    assert _parse()["population"] is None


def test_per_capita_with_one_number_is_the_same_rate_every_year() -> None:
    demo = _parse(members={"per_capita": 0.09})["members"]
    assert demo == DemoSeries(method="per_capita", start=0.09, end=0.09, of=None, level="city", decimals=0,
                              label="members")
    assert demo.base == "population"


def test_share_with_a_start_and_end_and_every_option() -> None:
    demo = _parse(connected={"share": [0.5, 0.75], "of": "households_total", "level": "district",
                             "decimals": 2, "label": "Haushalte mit Glasfaseranschluss"})["connected"]
    assert demo == DemoSeries(method="share", start=0.5, end=0.75, of="households_total", level="district",
                              decimals=2, label="Haushalte mit Glasfaseranschluss")
    assert demo.base == "households_total"


def test_ramp_has_no_base() -> None:
    demo = _parse(sites={"ramp": [10, 16]})["sites"]
    assert demo is not None and (demo.method, demo.start, demo.end, demo.base) == ("ramp", 10.0, 16.0, None)


def test_a_share_may_build_on_another_declaration() -> None:
    demos = _parse(members={"per_capita": 0.09}, young={"share": 0.3, "of": "members"})
    assert demos["young"] is not None and demos["young"].of == "members"


@pytest.mark.parametrize(("demo", "key", "words"), [
    ("yes", "demo", "expected a mapping"),
    ({}, "demo", "exactly one of per_capita, share, ramp, got none"),
    ({"per_capita": 0.1, "ramp": 5}, "demo", "got per_capita, ramp"),
    ({"per_capita": 0.1, "levl": "city"}, "demo.levl", "unknown key"),
    ({"per_capita": "0.1"}, "demo.per_capita", "expected a finite number"),
    ({"per_capita": True}, "demo.per_capita", "expected a finite number"),
    ({"ramp": float("nan")}, "demo.ramp", "expected a finite number"),
    ({"ramp": [1, 2, 3]}, "demo.ramp", "a list of 3"),
    ({"share": 0.5}, "demo.of", "required with share"),
    ({"ramp": 5, "of": "population"}, "demo.of", "not allowed with per_capita or ramp"),
    ({"share": 0.5, "of": "nowhere"}, "demo.of", "'nowhere' is not a variable"),
    ({"share": 0.5, "of": "bad"}, "demo.of", "cannot be a share of itself"),
    ({"per_capita": 0.1, "level": "grid"}, "demo.level", "expected city or district"),
    ({"per_capita": 0.1, "decimals": -1}, "demo.decimals", "whole number from 0 to 6"),
    ({"per_capita": 0.1, "decimals": 1.5}, "demo.decimals", "whole number"),
    ({"per_capita": 0.1, "decimals": 7}, "demo.decimals", "whole number"),
    ({"per_capita": 0.1, "label": "a;b"}, "demo.label", "';'-separated Latin-1"),
    ({"per_capita": 0.1, "label": "Ladesäulen ⚡"}, "demo.label", "Latin-1"),
    ({"per_capita": 0.1, "label": "  "}, "demo.label", "non-empty text"),
], ids=lambda value: str(value)[:40])
def test_a_mistake_names_the_variable_and_the_key(demo: object, key: str, words: str) -> None:
    with pytest.raises(VariablesError) as caught:
        _parse(bad=demo)
    message = str(caught.value)
    assert message.startswith(f"canonical/variables.yaml: variable 'bad', key '{key}'"), message
    assert words in message


def test_a_cycle_of_shares_is_named() -> None:
    with pytest.raises(VariablesError, match=r"key 'demo.of'.*cycle: a -> b -> a"):
        _parse(a={"share": 0.5, "of": "b"}, b={"share": 0.5, "of": "a"})


def test_per_capita_needs_a_population_variable() -> None:
    raw = {"x": {"unit": "person", "aggregation": "sum", "description": "x", "demo": {"per_capita": 0.1}}}
    with pytest.raises(VariablesError, match=r"variable 'x', key 'demo.per_capita': 'population' is not a variable"):
        parse_variables(raw)


@pytest.mark.parametrize(("spec", "key", "words"), [
    ({"unit": "person", "aggregation": "sum", "description": "x", "deom": {"per_capita": 1}}, "deom", "unknown key"),
    ({"unit": "person", "aggregation": "mean", "description": "x"}, "aggregation", "expected sum or none"),
    ({"aggregation": "sum", "description": "x"}, "unit", "expected a non-empty text"),
])
def test_a_variable_mistake_names_the_variable_and_the_key(spec: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(VariablesError, match=rf"variable 'bad', key '{key}': {words}"):
        parse_variables({**BASE, "bad": spec})


def test_every_canonical_unit_can_be_published_by_the_demo_as_is() -> None:
    """A declared variable is published in its canonical unit (money in EUR): the config must load it."""
    for unit in sorted({variable.unit for variable in VARIABLES.values()}):
        assert conversion_factor(published_unit(unit), unit) == 1.0, unit
