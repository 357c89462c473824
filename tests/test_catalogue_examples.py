"""Every catalogue formula against its hand-computed examples (kept beside it in the YAML)."""

from __future__ import annotations

import math

import pytest

from kpis.catalogue import Indicator, load_catalogue
from kpis.engine import evaluate_indicator, inputs_from_example
from kpis.expressions import references
from warehouse.variables import VARIABLES

CASES = [
    pytest.param(indicator, example, id=f"{indicator.id}#{n}")
    for indicator in load_catalogue()
    for n, example in enumerate(indicator.examples)
]


@pytest.mark.parametrize(("indicator", "example"), CASES)
def test_formula_matches_hand_computed_example(indicator: Indicator, example) -> None:  # type: ignore[no-untyped-def]
    data = inputs_from_example(indicator, example.inputs, example.area_inputs)
    result = evaluate_indicator(indicator, example.data_point, data)
    if example.expected is None:
        assert result.status == "missing", result
        assert result.missing, "a missing KPI must name the missing variables"
    else:
        assert result.status == "computed", result.reason
        assert result.value is not None
        assert math.isclose(result.value, example.expected, rel_tol=0, abs_tol=example.tolerance), (
            f"{indicator.id}: got {result.value}, hand-computed {example.expected}"
        )


def _formula_texts(indicator: Indicator) -> list[str]:
    compute = indicator.compute
    assert compute is not None
    texts = [t for t in (compute.numerator, compute.denominator, compute.expression, compute.variable,
                         compute.weight) if t]
    points = indicator.data_points or [None]
    return [t.replace("{data_point}", dp) if dp else t for t in texts for dp in points]


@pytest.mark.parametrize("indicator", [i for i in load_catalogue() if i.compute], ids=lambda i: i.id)
def test_formula_reads_only_canonical_variables(indicator: Indicator) -> None:
    for text in _formula_texts(indicator):
        for ref in references(text):
            assert ref.variable in VARIABLES, f"{indicator.id} reads unknown variable {ref.variable!r}"
