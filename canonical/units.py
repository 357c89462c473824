"""Unit conversion from the units sources publish to each canonical variable's unit, through pint.

The definitions are data: pint's default registry plus the project's file `canonical/units.txt`
(counts such as persons, households and subscriptions, each a dimension of its own; the explicit
ton and gallon spellings; tonnes of CO2e; the U4SSC ppb factors). This module only maps a source's
spelling onto a pint expression and asks pint for the factor. pint is imported and its registry
built once, on first use (about a second), so importing this module stays cheap.

ppb/ppm to ug/m3 depend on the pollutant: citykpi uses the factors printed in the U4SSC Collection
Methodology (p73): ppb x 1.9 (NO2), x 2.62 (SO2), x 1.96 (O3) (`ppb_NO2` ... in units.txt).

Money: amounts are kept in the city's local currency unit (canonical unit ``LCU``, as the World
Bank names it), published as an ISO 4217 code, optionally scaled ("EUR", "million USD", "Mio. EUR").
citykpi never converts between currencies (the rate depends on the year and the purpose): every
amount of a city must be in the same currency. Indicators relate amounts to each other (R&D over
GDP), so the currency cancels; SDG 11.4.1 divides by a PPP conversion factor (``LCU/PPP$``, local
currency per international dollar) that the city supplies.

Yes/No answers are stored as 1 (yes) and 0 (no) in the unit ``Yes/No``.

Spellings: exact (case matters: 'MWH' is no unit), surrounding spaces ignored; a leading 'thousand',
'million' or 'billion' scales; ' per ' is '/'; 'm2', 'km3' are squares and cubes; other words joined
by a space are one name ('short tons' = short_tons). Ambiguous spellings are refused with the
explicit choices named: `ton`/`tons` (short_ton / us_ton, t / tonne / metric_ton, long_ton),
`gal`/`gallon`/`Mgal`/`Mgal/d` (us_gallon, imp_gallon) and the other US/imperial pairs. A daily
rate ('million us_gallons per day', 'm3/d') into an annual canonical unit becomes the year's amount:
`conversion_factor` counts 365 days and `days_in_year_factor` corrects it per observation year (366
in leap years).
"""

from __future__ import annotations

import calendar
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pint


class UnitError(ValueError):
    """A unit is unknown or cannot be converted to the canonical unit."""


# Canonical unit (canonical/variables.yaml) -> pint expression. Only these are conversion targets.
_COUNT_UNITS = ("person", "household", "subscription", "meter", "stop", "enterprise", "bed", "crime", "FTE",
                "hotspot", "customer", "interruption", "intersection", "dataset", "service", "procedure",
                "patent", "vehicle", "building", "site", "institution", "birth", "place", "call", "facility",
                "disruption")
_CANONICAL: dict[str, str] = {
    **{unit: unit for unit in _COUNT_UNITS}, "meter": "utility_meter",
    "year": "year", "km": "kilometer", "ha": "hectare", "m3": "meter ** 3", "kWh": "kilowatt_hour",
    "MWh": "megawatt_hour", "tCO2e": "tCO2e", "t": "metric_ton", "ug/m3": "microgram / meter ** 3",
    "min": "minute", "m2": "meter ** 2", "GJ": "gigajoule", "index": "index", "Yes/No": "yes_no",
}
# Generic count spellings: factor 1 into any count unit.
_COUNT_ALIASES = {"count", "number", "n", "#"}

# Spellings pint's grammar cannot read, or reads as something else ('kt' is pint's knot; its 'acre' the
# US survey acre), as pint expressions.
_SPELLINGS = {
    "kt": "kilometric_ton", "acre": "international_acre", "acres": "international_acre",
    "0-1": "index", "0-100": "0.01 * index",
    "Yes/No": "yes_no", "1/0": "yes_no", "yes=1/no=0": "yes_no",
}

# Spellings that name no single unit: a "ton" is 0.907 t in the US, 1.016 t in the UK and 1 t in most
# of the world; a "gallon" 3.785 L (US) or 4.546 L (imperial); likewise quarts, pints, barrels,
# hundredweights. Refused, naming the explicit choices (casefolded).
_GALLONS = ("'us_gallon' or 'imp_gallon' ('million us_gallons', 'million imp_gallons'; per day: "
            "'million us_gallons per day', 'million imp_gallons per day')")
_AMBIGUOUS = {
    **dict.fromkeys(("ton", "tons"), "'short_ton' (or 'us_ton', 2000 lb), 't' (or 'tonne', 'metric_ton') "
                                     "or 'long_ton' (2240 lb)"),
    **dict.fromkeys(("gal", "gallon", "gallons", "mgal", "million gallons", "mgal/d", "million gallons per day",
                     "mgd"), _GALLONS),
    **dict.fromkeys(("quart", "quarts", "qt"), "'US_liquid_quart' or 'imperial_quart'"),
    **dict.fromkeys(("pint", "pints", "pt"), "'US_liquid_pint' or 'imperial_pint'"),
    **dict.fromkeys(("barrel", "barrels", "bbl"), "'oil_barrel' (42 US gallons) or 'imperial_barrel'"),
    **dict.fromkeys(("hundredweight", "cwt"), "'short_hundredweight' (100 lb) or 'long_hundredweight' (112 lb)"),
}

_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9}
_SCALE = re.compile(r"^(thousand|million|billion)\s+(.+)$")
# What a spelling may contain: no operators beyond '/', no parentheses or powers: pint evaluates the
# text, and an untrusted '10**10**10' would never finish.
_SAFE = re.compile(r"^[A-Za-z0-9µμ²³_ ./$]{1,60}$")
_POWER = re.compile(r"(?<=[A-Za-zµμ])([23])(?![A-Za-z0-9_])")  # m2 -> m**2, but not tCO2e

# Gas-phase pollutants with a U4SSC factor (units.txt: ppb_<pollutant>); ppm is 1000 ppb.
_GASES = ("NO2", "SO2", "O3")

# Money (see the module docstring): an ISO 4217 code (or LCU itself), optionally scaled.
_CURRENCY_SCALE = {"": 1.0, "thousand": 1e3, "Tsd.": 1e3, "million": 1e6, "Mio.": 1e6, "billion": 1e9,
                   "Mrd.": 1e9}
_CURRENCY = re.compile(r"^(?:(?P<scale>thousand|Tsd\.|million|Mio\.|billion|Mrd\.)\s+)?(?P<code>[A-Z]{3})$")
# canonical money unit -> suffix after the currency code in a source unit
_MONEY_UNITS = {"LCU": ("",), "LCU/h": ("/h",), "LCU/PPP$": ("/PPP$", " per international $")}
DAYS_IN_A_COMMON_YEAR = 365
DEFINITIONS = Path(__file__).with_name("units.txt")
# Canonical units of annual amounts, which a daily rate may be converted into (minutes a day never are).
_ANNUAL_AMOUNTS = {"m3", "kWh", "MWh", "GJ", "t", "tCO2e"}


@cache
def registry() -> pint.UnitRegistry[Any]:
    """pint's default registry with canonical/units.txt, built once (pint is imported here: ~1 s)."""
    import pint

    ureg: pint.UnitRegistry[Any] = pint.UnitRegistry(on_redefinition="raise", autoconvert_offset_to_baseunit=False)
    ureg.load_definitions(DEFINITIONS)
    return ureg


def _money_factor(unit: str, canonical_unit: str) -> float | None:
    """Factor for a currency spelling of `canonical_unit` ('Mio. EUR', 'EUR/h'), or None."""
    for suffix in _MONEY_UNITS[canonical_unit]:
        if suffix and not unit.endswith(suffix):
            continue
        match = _CURRENCY.match(unit[:len(unit) - len(suffix)] if suffix else unit)
        if match:
            return _CURRENCY_SCALE[match.group("scale") or ""]
    return None


def _expression(unit: str, canonical_unit: str) -> tuple[float, str]:
    """(scale, pint expression) of a source spelling; raises UnitError for text pint must not read."""
    if unit in _SPELLINGS:
        return 1.0, _SPELLINGS[unit]
    if not _SAFE.match(unit):
        raise UnitError(f"unit {unit!r} is not a unit spelling (letters, digits, spaces, '.', '/' and '_' "
                        "only, at most 60 characters; no operators or powers)")
    scale = 1.0
    match = _SCALE.match(unit)
    if match:
        scale, unit = _SCALES[match.group(1)], match.group(2)
    parts = [part.strip() for part in re.split(r"\s+per\s+|/", unit)]
    if not all(re.search(r"[A-Za-zµμ]", part) for part in parts):
        # 'per 100' is a rate per 100 of something unnamed, never a factor of 1/100
        raise UnitError(f"unit {unit!r} is not a unit spelling: every part around '/' or 'per' must name a unit")
    names = ["_".join(part.split()) for part in parts]
    if canonical_unit == "meter":  # a water meter: the count, never pint's metre
        names = ["utility_meter" if n in ("meter", "meters") else n for n in names]
    return scale, " / ".join(_POWER.sub(r"**\1", n) for n in names)


def _pint_factor(unit: str, canonical_unit: str, label: str) -> float:
    import pint

    ureg = registry()
    scale, text = _expression(unit, canonical_unit)
    try:
        quantity = ureg.parse_expression(text)
    except Exception as exc:  # pint's parser raises many kinds (undefined name, syntax, zero division)
        raise UnitError(f"unit {unit!r}{label} is unknown: {exc}; {_known(canonical_unit)}") from None
    if not isinstance(quantity, ureg.Quantity):  # a bare number
        raise UnitError(f"unit {unit!r}{label} is a number, not a unit; {_known(canonical_unit)}")
    target = ureg.parse_expression(_CANONICAL[canonical_unit])
    try:
        return _clean(scale * float(quantity.to(target.units).magnitude) * float(target.magnitude))
    except pint.DimensionalityError:
        pass
    if canonical_unit in _ANNUAL_AMOUNTS and _is_daily_rate(unit):  # the year's amount: 365 days, corrected
        # per observation year by days_in_year_factor
        per_year = quantity * ureg.Quantity(DAYS_IN_A_COMMON_YEAR, "day")
        if per_year.dimensionality == target.dimensionality:
            return _clean(scale * float(per_year.to(target.units).magnitude) * float(target.magnitude))
    raise UnitError(f"unit {unit!r} cannot be converted to {canonical_unit!r}{label} ({quantity.dimensionality} "
                    f"is not {target.dimensionality}); {_known(canonical_unit)}")


def _clean(factor: float) -> float:
    """The factor to 15 significant digits: pint's chains of float products leave noise in the last
    digit (ML -> m3 1000.0000000000002), and a factor of exactly 1 or 1000 should read as one."""
    return float(f"{factor:.15g}")


def _known(canonical_unit: str) -> str:
    """A short list of accepted spellings for an error message."""
    if canonical_unit in _COUNT_UNITS:
        plural = "" if canonical_unit.endswith("y") else f", {canonical_unit}s"
        extra = {"person": ", people, inhabitants, thousand persons", "meter": " (a utility meter)",
                 "enterprise": ", firms", "FTE": ", fte", "hotspot": ", access points", "facility": ", facilities",
                 "crime": ", offences", "interruption": ", customer interruptions", "birth": ", live births"}
        return (f"known: {canonical_unit}{plural}{extra.get(canonical_unit, '')}, "
                f"{', '.join(sorted(_COUNT_ALIASES))}")
    examples = {
        "km": "km, m, mi", "ha": "ha, m2, km2, acre", "m3": "m3, L, ML, us_gallon, imp_gallon, million us_gallons, "
        "m3/d, million us_gallons per day", "kWh": "kWh, MWh, GWh, GJ", "MWh": "MWh, kWh, GWh, GJ, TJ",
        "tCO2e": "tCO2e, ktCO2e, kgCO2e", "t": "t, tonne, metric_ton, kg, kt, short_ton, us_ton, long_ton",
        "ug/m3": "ug/m3, µg/m³, mcg/m3, mg/m3, ppb and ppm for NO2, SO2, O3", "min": "min, s, h, minutes, hours",
        "m2": "m2, ha, km2", "GJ": "GJ, MJ, TJ, kWh, MWh, GWh", "index": "index, 0-1, 0-100",
        "Yes/No": "Yes/No, 1/0, yes=1/no=0", "year": "year, years"}
    return f"known: any pint unit of the same dimension, e.g. {examples.get(canonical_unit, canonical_unit)}"


@cache
def _is_daily_rate(source_unit: str) -> bool:
    """A spelling whose last divisor is a day ('m3/d', 'million us_gallons per day')."""
    unit = source_unit.strip()
    parts = re.split(r"\s+per\s+|/", unit)
    if len(parts) < 2 or unit in _SPELLINGS or not _SAFE.match(unit):
        return False
    try:
        divisor = registry().parse_expression(parts[-1].strip())
        return bool(divisor == registry().Quantity(1, "day"))
    except Exception:  # not a unit: not a daily rate (conversion_factor names the error)
        return False


@cache
def conversion_factor(source_unit: str, canonical_unit: str, *, variable: str = "",
                      data_point: str | None = None) -> float:
    """Factor turning a value in `source_unit` into `canonical_unit`.

    Raises UnitError with a message naming both units when no conversion is known.
    """
    unit = source_unit.strip()
    label = f" for {variable!r}" if variable else ""
    if unit.casefold() in _AMBIGUOUS:
        raise UnitError(f"unit {unit!r}{label} is ambiguous; write {_AMBIGUOUS[unit.casefold()]}")
    if canonical_unit in _COUNT_UNITS and unit in _COUNT_ALIASES:
        return 1.0
    if canonical_unit in _MONEY_UNITS:
        factor = _money_factor(unit, canonical_unit)
        if factor is None:
            example = "EUR" + _MONEY_UNITS[canonical_unit][0]
            raise UnitError(f"unit {unit!r} cannot be converted to {canonical_unit!r}{label}; known: an ISO 4217 "
                            f"currency code as in {example!r}, optionally scaled by a leading 'thousand', "
                            "'million', 'billion' (or 'Tsd.', 'Mio.', 'Mrd.')")
        return factor
    if canonical_unit not in _CANONICAL:
        raise UnitError(f"no conversions known into canonical unit {canonical_unit!r}")
    if canonical_unit == "ug/m3" and unit in {"ppb", "ppm"}:
        if data_point is None:
            # The factor depends on the pollutant; without it a ppb value would pass unconverted.
            raise UnitError(f"cannot convert {unit} to ug/m3 without a data_point naming the pollutant "
                            "(NO2, SO2 or O3)")
        if data_point not in _GASES:
            raise UnitError(f"cannot convert {unit} to ug/m3 for {data_point!r}: only NO2, SO2 and O3 "
                            "are gases with a U4SSC conversion factor")
        ppb = registry().Quantity(1, f"ppb_{data_point}").to(_CANONICAL[canonical_unit]).magnitude
        return (1000.0 if unit == "ppm" else 1.0) * float(ppb)
    return _pint_factor(unit, canonical_unit, label)


def days_in_year(year: int) -> int:
    """366 in leap years (Gregorian rule), else 365."""
    return 366 if calendar.isleap(year) else 365


def days_in_year_factor(source_unit: str, year: int) -> float:
    """Correction for a daily-rate unit, whose `conversion_factor` holds 365 days: the actual year's days
    over 365 (366/365 in leap years); 1.0 for every other unit."""
    return days_in_year(year) / DAYS_IN_A_COMMON_YEAR if _is_daily_rate(source_unit) else 1.0
