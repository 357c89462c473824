"""Unit conversion from the units sources publish to each canonical variable's unit.

Factors multiply a source value to give the canonical value. ppb/ppm to ug/m3 depend on the
pollutant; citykpi uses the factors printed in the U4SSC Collection Methodology (p73):
ppb x 1.9 (NO2), x 2.62 (SO2), x 1.96 (O3).
"""

from __future__ import annotations


class UnitError(ValueError):
    """A unit is unknown or cannot be converted to the canonical unit."""


# Every count-like canonical unit accepts these generic spellings as a factor-1 alias.
_COUNT_UNITS = {"person", "household", "subscription", "meter", "stop", "enterprise", "bed", "crime", "FTE"}
_COUNT_ALIASES = {"count", "number", "n", "#"}

# canonical unit -> {source unit spelling: factor to canonical}
_FACTORS: dict[str, dict[str, float]] = {
    "person": {"person": 1.0, "persons": 1.0, "people": 1.0, "inhabitants": 1.0, "thousand persons": 1000.0},
    "household": {"household": 1.0, "households": 1.0},
    "subscription": {"subscription": 1.0, "subscriptions": 1.0},
    "meter": {"meter": 1.0, "meters": 1.0},
    "stop": {"stop": 1.0, "stops": 1.0},
    "enterprise": {"enterprise": 1.0, "enterprises": 1.0, "firms": 1.0},
    "bed": {"bed": 1.0, "beds": 1.0},
    "crime": {"crime": 1.0, "crimes": 1.0, "offences": 1.0},
    "FTE": {"FTE": 1.0, "fte": 1.0},
    "year": {"year": 1.0, "years": 1.0},
    "km": {"km": 1.0, "m": 0.001, "mi": 1.609344},
    "ha": {"ha": 1.0, "m2": 1e-4, "km2": 100.0, "acre": 0.40468564224, "acres": 0.40468564224},
    "m3": {"m3": 1.0, "l": 0.001, "L": 0.001, "ML": 1000.0, "gal": 0.003785411784,
           "Mgal": 3785.411784, "million gallons": 3785.411784},
    "kWh": {"kWh": 1.0, "MWh": 1000.0, "GWh": 1e6, "GJ": 277.7777777777778},
    "MWh": {"MWh": 1.0, "kWh": 0.001, "GWh": 1000.0, "GJ": 0.2777777777777778, "TJ": 277.7777777777778},
    "tCO2e": {"tCO2e": 1.0, "ktCO2e": 1000.0, "kgCO2e": 0.001},
    "t": {"t": 1.0, "kg": 0.001, "kt": 1000.0, "short ton": 0.90718474, "tons": 0.90718474},
    "ug/m3": {"ug/m3": 1.0, "µg/m3": 1.0, "µg/m³": 1.0, "mg/m3": 1000.0},
}

# Gas-phase pollutants: ppb -> ug/m3 (U4SSC CM p73). ppm is 1000 ppb.
_PPB_TO_UGM3 = {"NO2": 1.9, "SO2": 2.62, "O3": 1.96}


def conversion_factor(source_unit: str, canonical_unit: str, *, variable: str = "",
                      data_point: str | None = None) -> float:
    """Factor turning a value in `source_unit` into `canonical_unit`.

    Raises UnitError with a message naming both units when no conversion is known.
    """
    unit = source_unit.strip()
    if canonical_unit in _COUNT_UNITS and unit in _COUNT_ALIASES:
        return 1.0
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
