"""kpis.expressions: the safe arithmetic subset used by catalogue formulas."""

from __future__ import annotations

import pytest

from kpis.expressions import ExpressionError, VariableRef, evaluate, parse_expression, references

POP = VariableRef("population")
NO2 = VariableRef("air_concentration_ugm3", "NO2")
PM25 = VariableRef("air_concentration_ugm3", "PM2.5")


def test_references_with_and_without_data_points() -> None:
    text = 'air_concentration_ugm3["NO2"] / population + air_concentration_ugm3["PM2.5"] - population * 2'
    assert references(text) == [NO2, POP, PM25]
    # x["dp"] does not also yield a bare x
    assert VariableRef("air_concentration_ugm3") not in references(text)
    assert references('solid_waste_treated_t["recycled"] / solid_waste_total_t * 100') == [
        VariableRef("solid_waste_treated_t", "recycled"), VariableRef("solid_waste_total_t")]
    assert references("100") == []


def test_reference_text_round_trip() -> None:
    assert str(NO2) == 'air_concentration_ugm3["NO2"]'
    assert str(POP) == "population"
    for text in ('air_concentration_ugm3["NO2"]', "air_concentration_ugm3[NO2]", "air_concentration_ugm3['NO2']",
                 ' air_concentration_ugm3[ "NO2" ] '):
        assert VariableRef.parse(text) == NO2
    assert VariableRef.parse(" population ") == POP


def test_evaluate() -> None:
    values = {POP: 200_000.0, NO2: 19.0, VariableRef("physicians"): 500.0}
    assert evaluate("physicians / population * 100000", values) == pytest.approx(250.0)
    assert evaluate('air_concentration_ugm3["NO2"] * 2 - 8', values) == pytest.approx(30.0)
    assert evaluate("-(physicians - 100) / (1 + 3)", values) == pytest.approx(-100.0)
    assert evaluate("7 / 2", {}) == 3.5  # true division
    assert evaluate("2 + 3 * 4", {}) == 14.0  # precedence
    assert isinstance(evaluate("1 + 1", {}), float)


def test_evaluate_missing_reference_raises_key_error() -> None:
    with pytest.raises(KeyError):
        evaluate("physicians / population", {POP: 1.0})


def test_division_by_zero_raises() -> None:
    with pytest.raises(ZeroDivisionError):
        evaluate("physicians / population", {POP: 0.0, VariableRef("physicians"): 5.0})


@pytest.mark.parametrize("text", [
    "abs(population)",                  # function call
    "__import__('os').system('true')",  # call + attribute
    "population.real",                  # attribute access
    "population ** 2",                  # power
    "population // 2",                  # floor division
    "population % 2",                   # modulo
    "'population'",                     # string
    "population + 'x'",                 # string operand
    "population[1]",                    # non-string subscript
    'population["a"]["b"]',             # nested subscript
    "population * True",                # booleans are not numbers here
    "+population",                      # unary plus
    "not population",                   # boolean operator
    "population < 2",                   # comparison
    "population if 1 else 2",           # conditional
    "[population]",                     # list
    "lambda: 1",                        # lambda
    "1j * population",                  # complex number
])
def test_unsupported_syntax_is_rejected(text: str) -> None:
    with pytest.raises(ExpressionError, match="unsupported syntax"):
        parse_expression(text)
    with pytest.raises(ExpressionError):
        references(text)


@pytest.mark.parametrize("text", ["population +", "(population", "population = 1", ""])
def test_unparsable_expression(text: str) -> None:
    with pytest.raises(ExpressionError, match="cannot parse expression"):
        parse_expression(text)
