"""Facts the suites are generated from: the variable vocabulary and the indicator catalogue.

Nothing here is written per column by hand: which variables are counts, which indicators are
percentages, which data points a variable may carry and which numerator may never exceed its
denominator all follow from `canonical/variables.yaml` and `kpis/indicators/*.yaml`, so a new
variable or KPI is checked without touching the suites.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from canonical.units import UnitError, conversion_factor
from canonical.variables import VARIABLES
from kpis.catalogue import Indicator, load_catalogue
from kpis.expressions import VariableRef, references

# Every canonical unit today is an amount (a count, length, area, volume, energy, mass, concentration
# or duration), so no value may be negative. A variable in a signed unit (a temperature, a net
# balance, a growth rate) must have its unit listed here to be exempt.
SIGNED_UNITS: frozenset[str] = frozenset()

# Indicator units that are shares of a whole. "% and number" mixes a share with a count, so it is
# left out; every other unit starting with "%" ("% of city GDP", "% per mode", ...) is a share.
_PERCENT = re.compile(r"^%(?!.*number)")
# Every other indicator unit is a count, rate or amount ("per 100,000 inhabitants", "number",
# "minutes", "ug/m3") and cannot be negative, except ratios of growth rates (SDG 11.3.1 is negative
# when built-up land shrinks) and yes/no answers.
_SIGNED_INDICATOR_UNIT = re.compile(r"^(ratio|Yes/No)")


def canonical_units() -> dict[str, str]:
    return {name: v.unit for name, v in VARIABLES.items()}


def non_negative_variables() -> list[str]:
    return sorted(name for name, v in VARIABLES.items() if v.unit not in SIGNED_UNITS)


def _is_count_unit(unit: str) -> bool:
    """Count units are the ones that accept the generic spelling 'count' (see canonical.units)."""
    try:
        return conversion_factor("count", unit) == 1.0
    except UnitError:
        return False


# Count units whose values are fractional by definition (full-time equivalents).
FRACTIONAL_COUNT_UNITS: frozenset[str] = frozenset({"FTE"})


def count_variables() -> list[str]:
    """Variables counted in whole units (persons, households, meters, ...)."""
    return sorted(name for name, v in VARIABLES.items()
                  if _is_count_unit(v.unit) and v.unit not in FRACTIONAL_COUNT_UNITS)


def is_percentage(indicator: Indicator) -> bool:
    return bool(_PERCENT.match(indicator.unit.strip()))


def percentage_indicators() -> list[str]:
    return [i.id for i in load_catalogue() if is_percentage(i)]


def non_negative_indicators() -> list[str]:
    return [i.id for i in load_catalogue()
            if not is_percentage(i) and not _SIGNED_INDICATOR_UNIT.match(i.unit.strip())]


def _expanded_refs(indicator: Indicator, text: str | None) -> list[VariableRef]:
    """References of a formula text, with `{data_point}` replaced by each of the indicator's data points."""
    if not text:
        return []
    texts = [text.replace("{data_point}", dp) for dp in indicator.data_points] if "{data_point}" in text else [text]
    out: list[VariableRef] = []
    for item in texts:
        out += [ref for ref in references(item) if ref not in out]
    return out


@cache
def variable_data_points() -> dict[str, frozenset[str]]:
    """variable -> the data points the catalogue's formulas read from it (absent: none)."""
    found: dict[str, set[str]] = {}
    for indicator in load_catalogue():
        compute = indicator.compute
        if compute is None:
            continue
        for text in (compute.numerator, compute.denominator, compute.expression, compute.variable, compute.weight):
            for ref in _expanded_refs(indicator, text):
                if ref.data_point is not None:
                    found.setdefault(ref.variable, set()).add(ref.data_point)
    return {name: frozenset(points) for name, points in found.items()}


@dataclass(frozen=True)
class ShareRule:
    """numerator <= denominator for the same city, year and area: the inputs of a percentage KPI."""

    indicator_id: str
    numerator: str
    denominator: str
    numerator_data_points: tuple[str, ...] = ()   # empty: the numerator has no data point

    @property
    def name(self) -> str:
        return f"{self.numerator}_le_{self.denominator}"


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SUBSCRIPT = re.compile(r"""([A-Za-z_][A-Za-z0-9_]*)\[\s*["']([^"']+)["']\s*\]""")


def _bare_ref(text: str | None, indicator: Indicator) -> tuple[str, tuple[str, ...]] | None:
    """(variable, data points) when a formula text is nothing but one variable reference."""
    text = (text or "").strip()
    if _NAME.fullmatch(text):
        return text, ()
    match = _SUBSCRIPT.fullmatch(text)
    if match is None:
        return None
    point = match.group(2)
    return match.group(1), tuple(indicator.data_points) if point == "{data_point}" else (point,)


@cache
def share_rules() -> tuple[ShareRule, ...]:
    """Percentage ratios of two plain variables in the same unit: the numerator counts part of the
    denominator, so numerator > denominator is an error in the inputs, whatever the KPI says. Ratios
    of different units (fixed broadband subscriptions per household) are not shares and are left out."""
    rules: dict[str, ShareRule] = {}
    for indicator in load_catalogue():
        compute = indicator.compute
        if compute is None or compute.kind != "ratio" or compute.scale != 100 or not is_percentage(indicator):
            continue
        num, den = _bare_ref(compute.numerator, indicator), _bare_ref(compute.denominator, indicator)
        if num is None or den is None or den[1]:
            continue
        if num[0] not in VARIABLES or den[0] not in VARIABLES or VARIABLES[num[0]].unit != VARIABLES[den[0]].unit:
            continue
        rule = ShareRule(indicator.id, num[0], den[0], num[1])
        rules.setdefault(rule.name, rule)
    return tuple(rules.values())


@cache
def indicator_facts() -> dict[str, tuple[str, str, tuple[str, ...]]]:
    """indicator id -> (framework, unit, data points)."""
    return {i.id: (i.framework, i.unit, tuple(i.data_points)) for i in load_catalogue()}


def sql_literal(value: object) -> str:
    """A SQL literal for values from our own metadata (strings quoted, None as NULL)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(values: object) -> str:
    items = list(values)  # type: ignore[call-overload]
    return "[" + ", ".join(sql_literal(v) for v in items) + "]" if items else "[]::VARCHAR[]"


def sql_case(column: str, mapping: dict[str, str]) -> str:
    """CASE column WHEN key THEN value ... END (NULL for keys not in the mapping)."""
    if not mapping:
        return "NULL"
    whens = " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in sorted(mapping.items()))
    return f"(CASE {column} {whens} END)"
