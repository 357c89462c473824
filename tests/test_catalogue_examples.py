"""Every catalogue formula against its hand-computed examples (kept beside it in the YAML)."""

from __future__ import annotations

import math

import pytest

from canonical.variables import VARIABLES
from kpis.catalogue import Example, Indicator, load_catalogue
from kpis.engine import evaluate_indicator, inputs_from_example
from kpis.expressions import references

CASES = [
    pytest.param(indicator, example, id=f"{indicator.id}#{n}")
    for indicator in load_catalogue()
    for n, example in enumerate(indicator.examples)
]


@pytest.mark.parametrize(("indicator", "example"), CASES)
def test_formula_matches_hand_computed_example(indicator: Indicator, example: Example) -> None:
    data = inputs_from_example(indicator, example.inputs, example.area_inputs, example.year)
    result = evaluate_indicator(indicator, example.data_point, data)
    assert result.status == example.expected_status, result
    if example.expected_status == "missing":
        assert result.missing, "a missing KPI must name the missing variables"
        assert all(name in (result.reason or "") for name in result.missing), result.reason
    elif example.expected_status == "failed_check":
        assert result.reason, "a failed check must say which"
        assert result.value is None
    else:
        assert result.value is not None
        assert math.isclose(result.value, example.expected or 0.0, rel_tol=0, abs_tol=example.tolerance), (
            f"{indicator.id}: got {result.value}, hand-computed {example.expected}"
        )


def _formula_texts(indicator: Indicator) -> list[str]:
    texts = []
    for data_point, compute in indicator.computes():
        for text in (compute.numerator, compute.denominator, compute.expression, compute.variable, compute.weight):
            if text:
                texts.append(text.replace("{data_point}", data_point) if data_point else text)
    return texts


@pytest.mark.parametrize("indicator", [i for i in load_catalogue() if i.compute], ids=lambda i: i.id)
def test_formula_reads_only_canonical_variables(indicator: Indicator) -> None:
    for text in _formula_texts(indicator):
        assert "{data_point}" not in text, f"{indicator.id}: template left in {text!r}"
        for ref in references(text):
            assert ref.variable in VARIABLES, f"{indicator.id} reads unknown variable {ref.variable!r}"


# A U4SSC formula not read on an ITU page must say so ("inferred", "not read", "not found"); an SDG
# formula must name the method or metadata it follows.
_UNREAD = ("infer", "not read", "not found")


@pytest.mark.parametrize("indicator", load_catalogue(), ids=lambda i: i.id)
def test_every_formula_cites_where_it_comes_from(indicator: Indicator) -> None:
    assert indicator.computes(), f"{indicator.id}: no formula"
    for _, compute in indicator.computes():
        note = (compute.note or "").lower()
        assert note, f"{indicator.id}: a formula needs a note citing its source"
        if indicator.framework == "sdg11":
            assert "metadata" in note or "method" in note, f"{indicator.id}: the note must name the UN method"
        elif indicator.confidence != "formula_read":
            assert any(word in note for word in _UNREAD), (
                f"{indicator.id} (confidence {indicator.confidence}): the note must say the formula is inferred")


def test_edge_cases_are_covered_across_the_catalogue() -> None:
    examples = [e for i in load_catalogue() for e in i.examples]
    statuses = {e.expected_status for e in examples}
    assert statuses == {"computed", "missing", "failed_check"}
    assert any(e.expected_status == "failed_check" and "0" in e.description for e in examples)


def test_every_data_point_formula_has_an_example() -> None:
    for indicator in load_catalogue():
        for data_point in indicator.data_point_compute:
            assert any(e.data_point == data_point for e in indicator.examples), (indicator.id, data_point)
