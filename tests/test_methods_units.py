"""Units and calendar days as the methods define them (issue #15): ambiguous ton and gallon spellings
are refused with the choices named, daily rates and per-day KPIs use the days of the actual year."""

from __future__ import annotations

import pytest

from canonical.units import UnitError, conversion_factor, days_in_year, days_in_year_factor
from kpis.catalogue import indicators_by_id
from kpis.engine import evaluate_indicator, inputs_from_example
from kpis.expressions import ExpressionError, evaluate, references


@pytest.mark.parametrize(("unit", "choices"), [
    ("tons", "'short_ton'"), ("ton", "'long_ton'"), ("Tons", "'metric_ton'"),
    ("gal", "'us_gallon' or 'imp_gallon'"), ("gallons", "'imp_gallon'"), ("Mgal", "'million us_gallons'"),
    ("Mgal/d", "'million us_gallons per day'"), ("million gallons per day", "'million imp_gallons per day'"),
])
def test_ambiguous_spellings_are_refused_with_the_choices(unit: str, choices: str) -> None:
    canonical = "t" if "ton" in unit.lower() else "m3"
    with pytest.raises(UnitError, match="ambiguous") as info:
        conversion_factor(unit, canonical, variable="x")
    assert choices in str(info.value) and "'x'" in str(info.value)


@pytest.mark.parametrize(("unit", "canonical", "factor"), [
    # 1 short ton = 2000 lb x 0.45359237 kg; 1 long ton = 2240 lb (NIST Handbook 44, Appendix C).
    ("short_ton", "t", 0.90718474), ("short tons", "t", 0.90718474), ("us_tons", "t", 0.90718474),
    ("long_ton", "t", 1.0160469088), ("tonne", "t", 1.0), ("metric_tons", "t", 1.0), ("t", "t", 1.0),
    # 1 US gallon = 231 in3 = 3.785411784 L; 1 imperial gallon = 4.54609 L.
    ("us_gallon", "m3", 0.003785411784), ("imp_gallons", "m3", 0.00454609),
    ("million imp_gallons", "m3", 4546.09),
])
def test_explicit_spellings(unit: str, canonical: str, factor: float) -> None:
    assert conversion_factor(unit, canonical) == pytest.approx(factor, rel=1e-12)


def test_a_metric_source_in_tons_is_no_longer_read_as_short_tons() -> None:
    # Bare 'tons' used to mean short tons: 1,000 metric tonnes came out 907.18 t, 9.3 % low.
    assert 1000 * conversion_factor("tonnes", "t") == 1000.0
    assert 1 - conversion_factor("short_ton", "t") == pytest.approx(0.0928, abs=1e-4)


@pytest.mark.parametrize(("year", "days"), [(2019, 365), (2020, 366), (1900, 365), (2000, 366), (2100, 365)])
def test_days_in_year(year: int, days: int) -> None:
    assert days_in_year(year) == days


def test_daily_rate_into_the_years_volume() -> None:
    # NYC publishes consumption in million US gallons a day: 1,000 Mgal/d is 3,785,411.784 m3 a day,
    # x 365 in 2019 and x 366 in 2020.
    unit = "million us_gallons per day"
    per_year = {year: 1000 * conversion_factor(unit, "m3") * days_in_year_factor(unit, year) for year in (2019, 2020)}
    assert per_year[2019] == pytest.approx(3_785_411.784 * 365, rel=1e-12)
    assert per_year[2020] == pytest.approx(3_785_411.784 * 366, rel=1e-12)
    assert days_in_year_factor("m3", 2020) == 1.0


def test_days_in_year_is_a_calendar_name_not_a_variable() -> None:
    text = "water_consumption_m3 * 1000 / days_in_year"
    assert [str(r) for r in references(text)] == ["water_consumption_m3"]
    with pytest.raises(ExpressionError, match="needs the year"):
        evaluate(text, {references(text)[0]: 366.0})


@pytest.mark.parametrize(("year", "m3", "expected"), [(2019, 7_300_000, 200.0), (2020, 7_320_000, 200.0),
                                                      (2020, 7_300_000, 7_300_000_000 / 366 / 100_000)])
def test_water_per_capita_per_day_uses_the_years_days(year: int, m3: float, expected: float) -> None:
    indicator = indicators_by_id()["EN:EN:WS:2C"]
    assert indicator.compute is not None and indicator.compute.formula_version == "2"
    data = inputs_from_example(indicator, {"water_consumption_m3": m3, "population": 100_000}, {}, year)
    result = evaluate_indicator(indicator, None, data)
    assert result.value == pytest.approx(expected, rel=1e-12)


def test_new_york_config_spells_its_units_explicitly() -> None:
    from pathlib import Path

    text = (Path(__file__).parent / "cities" / "new_york.yaml").read_text(encoding="utf-8")
    assert "unit: million us_gallons per day" in text and "unit: short tons" in text
    assert "Mgal/d" not in text
