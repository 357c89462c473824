"""Unit conversion from the units sources publish to each canonical variable's unit.

Factors multiply a source value to give the canonical value. ppb/ppm to ug/m3 depend on the
pollutant; citykpi uses the factors printed in the U4SSC Collection Methodology (p73):
ppb x 1.9 (NO2), x 2.62 (SO2), x 1.96 (O3).

Money: amounts are kept in the city's local currency unit (canonical unit ``LCU``, as the World
Bank names it), published as an ISO 4217 code, optionally scaled ("EUR", "million USD", "Mio. EUR").
citykpi never converts between currencies (the rate depends on the year and the purpose): every
amount of a city must be in the same currency. Indicators relate amounts to each other (R&D over
GDP), so the currency cancels; SDG 11.4.1 divides by a PPP conversion factor (``LCU/PPP$``, local
currency per international dollar) that the city supplies.

Yes/No answers are stored as 1 (yes) and 0 (no) in the unit ``Yes/No``.

Ambiguous spellings are refused with the explicit choices named: `ton`/`tons` (short_ton / us_ton,
t / tonne / metric_ton, long_ton) and `gal`/`gallon`/`Mgal`/`Mgal/d` (us_gallon, imp_gallon). A daily
rate ('million us_gallons per day') becomes an annual volume with the days of its year (366 in leap
years): `days_in_year_factor` corrects the 365-day `conversion_factor` per observation year.
"""

from __future__ import annotations

import calendar
import re


class UnitError(ValueError):
    """A unit is unknown or cannot be converted to the canonical unit."""


# Count-like canonical units: each accepts itself, its plural and the generic count spellings
# with factor 1; the map holds the irregular or extra spellings (declared once here).
_COUNT_UNITS: dict[str, dict[str, float]] = {
    "person": {"people": 1.0, "inhabitants": 1.0, "thousand persons": 1000.0},
    "household": {}, "subscription": {}, "meter": {}, "stop": {}, "enterprise": {"firms": 1.0}, "bed": {},
    "crime": {"offences": 1.0}, "FTE": {"fte": 1.0}, "hotspot": {"access points": 1.0}, "customer": {},
    "interruption": {"customer interruptions": 1.0}, "intersection": {}, "dataset": {}, "service": {},
    "procedure": {}, "patent": {}, "vehicle": {}, "building": {}, "site": {}, "institution": {},
    "birth": {"live births": 1.0}, "place": {}, "call": {}, "facility": {"facilities": 1.0}, "disruption": {},
}
_COUNT_ALIASES = {"count", "number", "n", "#"}


def _count_spellings(unit: str, extra: dict[str, float]) -> dict[str, float]:
    plural = {} if unit.endswith("y") else {unit + "s": 1.0}
    return {unit: 1.0, **plural, **extra}


# Exact definitions: US gallon 231 in3, imperial gallon 4.54609 L, short ton 2000 lb, long ton 2240 lb
# (lb = 0.45359237 kg), as NIST Handbook 44 Appendix C and the UK Weights and Measures Act 1985 state them.
US_GALLON_M3 = 0.003785411784
IMP_GALLON_M3 = 0.00454609
SHORT_TON_T = 0.90718474
LONG_TON_T = 1.0160469088
# Daily-rate volume units: m3 per day (see `days_in_year_factor`).
PER_DAY_M3 = {"million us_gallons per day": US_GALLON_M3 * 1e6, "million imp_gallons per day": IMP_GALLON_M3 * 1e6}

# Spellings that name no single unit: a "ton" is 0.907 t in the US, 1.016 t in the UK and 1 t in most
# of the world; a "gallon" 3.785 L (US) or 4.546 L (imperial). Refused, naming the explicit choices.
_AMBIGUOUS = {
    **dict.fromkeys(("ton", "tons"), "'short_ton' (or 'us_ton', 2000 lb), 't' (or 'tonne', 'metric_ton') "
                                     "or 'long_ton' (2240 lb)"),
    **dict.fromkeys(("gal", "gallon", "gallons", "mgal", "million gallons", "mgal/d", "million gallons per day",
                     "mgd"), "'us_gallon' or 'imp_gallon' ('million us_gallons', 'million imp_gallons'; "
                             "per day: 'million us_gallons per day', 'million imp_gallons per day')"),
}


def _spellings(unit: str, factor: float) -> dict[str, float]:
    """A unit and its plural ('us_gallon', 'us_gallons')."""
    return {unit: factor, unit + "s": factor}


# canonical unit -> {source unit spelling: factor to canonical}
_FACTORS: dict[str, dict[str, float]] = {
    **{unit: _count_spellings(unit, extra) for unit, extra in _COUNT_UNITS.items()},
    "year": {"year": 1.0, "years": 1.0},
    "km": {"km": 1.0, "m": 0.001, "mi": 1.609344},
    "ha": {"ha": 1.0, "m2": 1e-4, "km2": 100.0, "acre": 0.40468564224, "acres": 0.40468564224},
    "m3": {"m3": 1.0, "l": 0.001, "L": 0.001, "ML": 1000.0,
           **_spellings("us_gallon", US_GALLON_M3), **_spellings("imp_gallon", IMP_GALLON_M3),
           "million us_gallons": US_GALLON_M3 * 1e6, "million imp_gallons": IMP_GALLON_M3 * 1e6,
           # Daily rates into an annual volume, e.g. NYC's consumption in million US gallons a day: the
           # factor holds 365 days; `days_in_year_factor` corrects it for the actual year (366 in leap years).
           **{unit: m3_per_day * 365 for unit, m3_per_day in PER_DAY_M3.items()}},
    "kWh": {"kWh": 1.0, "MWh": 1000.0, "GWh": 1e6, "GJ": 277.7777777777778},
    "MWh": {"MWh": 1.0, "kWh": 0.001, "GWh": 1000.0, "GJ": 0.2777777777777778, "TJ": 277.7777777777778},
    "tCO2e": {"tCO2e": 1.0, "ktCO2e": 1000.0, "kgCO2e": 0.001},
    "t": {"t": 1.0, "kg": 0.001, "kt": 1000.0, **_spellings("tonne", 1.0), **_spellings("metric_ton", 1.0),
          **_spellings("short_ton", SHORT_TON_T), **_spellings("us_ton", SHORT_TON_T),
          **_spellings("short ton", SHORT_TON_T), **_spellings("long_ton", LONG_TON_T),
          **_spellings("long ton", LONG_TON_T)},
    "ug/m3": {"ug/m3": 1.0, "µg/m3": 1.0, "µg/m³": 1.0, "mg/m3": 1000.0, "mcg/m3": 1.0},
    "min": {"min": 1.0, "minute": 1.0, "minutes": 1.0, "s": 1 / 60, "h": 60.0, "hours": 60.0},
    "m2": {"m2": 1.0, "m²": 1.0, "ha": 1e4, "km2": 1e6},
    "GJ": {"GJ": 1.0, "MJ": 0.001, "TJ": 1000.0, "kWh": 0.0036, "MWh": 3.6, "GWh": 3600.0},
    # A Gini coefficient or similar 0-1 index; statistics offices often print it x 100.
    "index": {"index": 1.0, "0-1": 1.0, "0-100": 0.01},
    "Yes/No": {"Yes/No": 1.0, "1/0": 1.0, "yes=1/no=0": 1.0},
}

# Money (see the module docstring): an ISO 4217 code (or LCU itself), optionally scaled.
_CURRENCY_SCALE = {"": 1.0, "thousand": 1e3, "Tsd.": 1e3, "million": 1e6, "Mio.": 1e6, "billion": 1e9,
                   "Mrd.": 1e9}
_CURRENCY = re.compile(r"^(?:(?P<scale>thousand|Tsd\.|million|Mio\.|billion|Mrd\.)\s+)?(?P<code>[A-Z]{3})$")
# canonical money unit -> suffix after the currency code in a source unit
_MONEY_UNITS = {"LCU": ("",), "LCU/h": ("/h",), "LCU/PPP$": ("/PPP$", " per international $")}


def _money_factor(unit: str, canonical_unit: str) -> float | None:
    """Factor for a currency spelling of `canonical_unit` ('Mio. EUR', 'EUR/h'), or None."""
    for suffix in _MONEY_UNITS[canonical_unit]:
        if suffix and not unit.endswith(suffix):
            continue
        match = _CURRENCY.match(unit[:len(unit) - len(suffix)] if suffix else unit)
        if match:
            return _CURRENCY_SCALE[match.group("scale") or ""]
    return None

# Gas-phase pollutants: ppb -> ug/m3 (U4SSC CM p73). ppm is 1000 ppb.
_PPB_TO_UGM3 = {"NO2": 1.9, "SO2": 2.62, "O3": 1.96}


def conversion_factor(source_unit: str, canonical_unit: str, *, variable: str = "",
                      data_point: str | None = None) -> float:
    """Factor turning a value in `source_unit` into `canonical_unit`.

    Raises UnitError with a message naming both units when no conversion is known.
    """
    unit = source_unit.strip()
    if unit.casefold() in _AMBIGUOUS:
        label = f" for {variable!r}" if variable else ""
        raise UnitError(f"unit {unit!r}{label} is ambiguous; write {_AMBIGUOUS[unit.casefold()]}")
    if canonical_unit in _COUNT_UNITS and unit in _COUNT_ALIASES:
        return 1.0
    if canonical_unit in _MONEY_UNITS:
        factor = _money_factor(unit, canonical_unit)
        if factor is None:
            label = f" for {variable!r}" if variable else ""
            example = "EUR" + _MONEY_UNITS[canonical_unit][0]
            raise UnitError(f"unit {unit!r} cannot be converted to {canonical_unit!r}{label}; known: an ISO 4217 "
                            f"currency code as in {example!r}, optionally scaled by a leading 'thousand', "
                            "'million', 'billion' (or 'Tsd.', 'Mio.', 'Mrd.')")
        return factor
    table = _FACTORS.get(canonical_unit)
    if table is None:
        raise UnitError(f"no conversions known into canonical unit {canonical_unit!r}")
    if unit in table:
        return table[unit]
    if canonical_unit == "ug/m3" and unit in {"ppb", "ppm"}:
        if data_point is None:
            # The factor depends on the pollutant; without it a ppb value would pass unconverted.
            raise UnitError(f"cannot convert {unit} to ug/m3 without a data_point naming the pollutant "
                            "(NO2, SO2 or O3)")
        if data_point not in _PPB_TO_UGM3:
            raise UnitError(f"cannot convert {unit} to ug/m3 for {data_point!r}: only NO2, SO2 and O3 "
                            "are gases with a U4SSC conversion factor")
        return _PPB_TO_UGM3[data_point] * (1000.0 if unit == "ppm" else 1.0)
    known = sorted(table) + (sorted(_COUNT_ALIASES) if canonical_unit in _COUNT_UNITS else [])
    label = f" for {variable!r}" if variable else ""
    raise UnitError(f"unit {unit!r} cannot be converted to {canonical_unit!r}{label}; "
                    f"known: {', '.join(known)}")


def days_in_year(year: int) -> int:
    """366 in leap years (Gregorian rule), else 365."""
    return 366 if calendar.isleap(year) else 365


def days_in_year_factor(source_unit: str, year: int) -> float:
    """Correction for a daily-rate unit, whose `conversion_factor` holds 365 days: the actual year's days
    over 365 (366/365 in leap years); 1.0 for every other unit."""
    return days_in_year(year) / 365 if source_unit.strip() in PER_DAY_M3 else 1.0
