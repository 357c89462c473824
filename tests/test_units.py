"""canonical.units.conversion_factor: the factors sources' units are converted with, and the errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from canonical.units import UnitError, conversion_factor


@pytest.mark.parametrize(("source", "canonical", "factor"), [
    ("persons", "person", 1.0),
    ("thousand persons", "person", 1000.0),
    ("count", "household", 1.0),
    ("#", "stop", 1.0),
    ("fte", "FTE", 1.0),
    ("km", "km", 1.0),
    ("m", "km", 0.001),
    ("mi", "km", 1.609344),
    ("acre", "ha", 0.40468564224),
    ("acres", "ha", 0.40468564224),
    ("m2", "ha", 1e-4),
    ("km2", "ha", 100.0),
    ("us_gallon", "m3", 0.003785411784),
    ("million us_gallons", "m3", 3785.411784),
    ("ML", "m3", 1000.0),
    ("l", "m3", 0.001),
    ("MWh", "kWh", 1000.0),
    ("GWh", "kWh", 1e6),
    ("GJ", "kWh", 1e9 / 3.6e6),
    ("kWh", "MWh", 0.001),
    ("TJ", "MWh", 1e12 / 3.6e9),
    ("ktCO2e", "tCO2e", 1000.0),
    ("kg", "t", 0.001),
    ("short ton", "t", 0.90718474),
    ("mg/m3", "ug/m3", 1000.0),
    ("µg/m³", "ug/m3", 1.0),
    (" MWh ", "kWh", 1000.0),  # surrounding spaces are ignored
])
def test_known_factors(source: str, canonical: str, factor: float) -> None:
    assert conversion_factor(source, canonical) == pytest.approx(factor, rel=1e-12)


@pytest.mark.parametrize(("unit", "pollutant", "factor"), [
    ("ppb", "NO2", 1.9), ("ppb", "SO2", 2.62), ("ppb", "O3", 1.96),
    ("ppm", "NO2", 1900.0), ("ppm", "SO2", 2620.0), ("ppm", "O3", 1960.0),
    ("ug/m3", "PM2.5", 1.0),
])
def test_gas_factors_per_pollutant(unit: str, pollutant: str, factor: float) -> None:
    assert conversion_factor(unit, "ug/m3", variable="air_concentration_ugm3",
                             data_point=pollutant) == pytest.approx(factor)


@pytest.mark.parametrize(("unit", "pollutant", "message"), [
    ("ppb", "PM2.5", "only NO2, SO2 and O3"),
    ("ppm", "PM10", "only NO2, SO2 and O3"),
    ("ppb", None, "without a data_point"),  # the factor depends on the pollutant: never 1.0 silently
])
def test_ppb_without_a_gas_factor(unit: str, pollutant: str | None, message: str) -> None:
    with pytest.raises(UnitError, match=message):
        conversion_factor(unit, "ug/m3", variable="air_concentration_ugm3", data_point=pollutant)


def test_unconvertible_unit_names_both_units_and_the_known_ones() -> None:
    with pytest.raises(UnitError) as info:
        conversion_factor("kg", "person", variable="population")
    message = str(info.value)
    assert "'kg'" in message and "'person'" in message and "'population'" in message
    assert "known: " in message and "inhabitants" in message and "count" in message


def test_count_aliases_only_for_count_units() -> None:
    with pytest.raises(UnitError):
        conversion_factor("count", "ha")
    with pytest.raises(UnitError):
        conversion_factor("MWH", "kWh")  # spelling is exact


def test_unknown_canonical_unit() -> None:
    with pytest.raises(UnitError, match="no conversions known into canonical unit 'furlong'"):
        conversion_factor("furlong", "furlong")


def test_unit_error_is_a_value_error() -> None:
    assert issubclass(UnitError, ValueError)


# ---- pint (issue #15): the definitions in canonical/units.txt, spellings pint reads ------------------

@pytest.mark.parametrize(("source", "canonical", "factor"), [
    ("t", "t", 1.0), ("tonne", "t", 1.0), ("kt", "t", 1000.0),  # 'kt' is a kilotonne here, pint's knot otherwise
    ("short_ton", "t", 0.90718474), ("long_tons", "t", 1.0160469088),
    ("m3", "m3", 1.0), ("L", "m3", 0.001), ("ML", "m3", 1000.0), ("kL", "m3", 1.0),
    ("acre", "ha", 0.40468564224),  # the international acre, not pint's US survey acre (0.4046873 ha)
    ("ft", "km", 0.0003048), ("MJ", "kWh", 1 / 3.6), ("ug/m3", "ug/m3", 1.0), ("mcg/m3", "ug/m3", 1.0),
    ("meters", "meter", 1.0),  # the canonical 'meter' is a utility meter, a count
    ("ktCO2e", "tCO2e", 1000.0), ("MtCO2e", "tCO2e", 1e6),
    ("thousand households", "household", 1000.0), ("million m3", "m3", 1e6),
])
def test_pint_factors(source: str, canonical: str, factor: float) -> None:
    assert conversion_factor(source, canonical) == pytest.approx(factor, rel=1e-12)


def test_factors_are_clean_numbers() -> None:
    # pint multiplies floats; the factor is rounded to 15 significant digits so 1000 is 1000
    assert conversion_factor("ML", "m3") == 1000.0
    assert conversion_factor("us_gallon", "m3") == 0.003785411784


@pytest.mark.parametrize(("source", "canonical"), [
    ("households", "person"),  # counts of different things never convert into each other
    ("meter", "person"), ("m", "meter"),  # a length is no utility meter
    ("kg", "ha"), ("L", "t"), ("min/d", "min"),  # minutes a day are no minutes (only annual amounts)
    ("count", "index"), ("persons", "Yes/No"),
])
def test_other_dimensions_are_refused(source: str, canonical: str) -> None:
    with pytest.raises(UnitError, match=r"cannot be converted|unknown"):
        conversion_factor(source, canonical, variable="x")


@pytest.mark.parametrize("spelling", ["10**10**10 m3", "m3^2", "(m3)", "1/0 m3", "persons per 100", "m3 - L",
                                      "__import__('os')", "x" * 61])
def test_text_pint_must_not_evaluate_is_refused(spelling: str) -> None:
    # pint evaluates a unit expression: an untrusted power tower would never finish
    with pytest.raises(UnitError, match="not a unit spelling"):
        conversion_factor(spelling, "m3")


def test_per_capita_per_day_into_the_years_amount() -> None:
    from canonical.units import days_in_year_factor

    # 150 litres a day is 54.75 m3 in a common year and 54.9 m3 in a leap year
    for unit in ("L/d", "L per day", "litres per day"):
        factor = conversion_factor(unit, "m3")
        assert 150 * factor * days_in_year_factor(unit, 2019) == pytest.approx(54.75, rel=1e-12)
        assert 150 * factor * days_in_year_factor(unit, 2024) == pytest.approx(54.9, rel=1e-12)
    assert conversion_factor("MWh/d", "MWh") == pytest.approx(365.0)
    assert days_in_year_factor("L/h", 2024) == 1.0 and days_in_year_factor("L", 2024) == 1.0


def test_known_spellings_are_named_for_a_dimension() -> None:
    with pytest.raises(UnitError, match=r"known: any pint unit of the same dimension, e\.g\. t, tonne"):
        conversion_factor("m3", "t", variable="waste_t")


def test_importing_the_module_leaves_pint_for_the_first_conversion() -> None:
    import subprocess
    import sys

    code = ("import sys, canonical.units as u; assert 'pint' not in sys.modules; "
            "u.conversion_factor('km', 'km'); assert 'pint' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
