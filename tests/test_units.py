"""warehouse.units.conversion_factor: the factors sources' units are converted with, and the errors."""

from __future__ import annotations

import pytest

from warehouse.units import UnitError, conversion_factor


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
