"""Demoville's series for the variables declared with `demo:` in canonical/variables.yaml (issue #17).

A KPI over a new variable needs its data in the demo city. Rather than a hand-written series in
generator.py / indicator_series.py and a mapping line in city.yaml, the variable's entry says how to
make the values up (canonical/variables.py: per capita, a share of another variable, or a ramp), and
this module computes them from the city's population and the hand-written series. The hand series
win: a declared variable that the city.yaml template already maps is left to them, so the demo's
existing values never change.

Values are rounded as printed (``decimals``), and a declaration that builds on another (`share` ...
`of`) reads the printed values of its base, as a statistics office would.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from canonical.variables import SOURCE, DemoLevel, DemoSeries, Variable, variables_error

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DeclaredSeries:
    """One generated series: values per year (city level) or per [district, year] (district level)."""

    variable: str
    label: str  # the code ("Merkmal") in the statistics file and the key of its city.yaml mapping
    unit: str  # as published: the canonical unit (a currency for LCU: the mapping needs an ISO code)
    decimals: int
    level: DemoLevel
    values: FloatArray


@dataclass
class Bases:
    """Values a declaration may scale from, in canonical units: per year at city level, per
    [district, year] at district level. The generator fills in the population and the hand series;
    `declared_series` adds each declared variable once it is computed."""

    city: dict[str, FloatArray]
    district: dict[str, FloatArray]
    districts: int  # how many districts (a ramp gives each the same value)


def published_unit(canonical_unit: str) -> str:
    """The unit the demo publishes a declared variable in: the canonical one, except that money is
    in euros (a config names a currency, never 'LCU')."""
    return canonical_unit.replace("LCU", "EUR")


def to_generate(variables: Mapping[str, Variable], mapped: AbstractSet[str]) -> list[Variable]:
    """The declared variables the generator makes up: every one the template does not map already."""
    return [v for v in variables.values() if v.demo is not None and v.name not in mapped]


def ramp(start: float, end: float, n_years: int) -> FloatArray:
    """start in the first demo year, end in the last, on a straight line between."""
    result: FloatArray = start + (end - start) * np.arange(n_years, dtype=np.float64) / max(n_years - 1, 1)
    return result


def _printed(values: FloatArray, decimals: int) -> FloatArray:
    # Python's round is correctly rounded, so the printed text (an f-string) shows exactly these values.
    return np.vectorize(lambda v: round(float(v), decimals), otypes=[np.float64])(values)


def _scaled(variable: Variable, demo: DemoSeries, level: DemoLevel, bases: Mapping[str, FloatArray],
            shape: tuple[int, ...]) -> FloatArray:
    path = ramp(demo.start, demo.end, shape[-1])
    if demo.base is None:
        return np.broadcast_to(path, shape).copy()
    if demo.base not in bases:
        key = "demo.of" if demo.method == "share" else f"demo.{demo.method}"
        where = ("a population group, households_total or another district-level declaration"
                 if level == "district" else
                 "a population group, households_total, a series of the demo's statistik_stadt.csv "
                 "without data points, or another declaration")
        raise variables_error(variable.name, key, f"the demo city has no {level} values of {demo.base!r} "
                                                  f"to scale from; a {level} series can scale from {where}")
    scaled: FloatArray = bases[demo.base] * path
    return scaled


def _order(declared: Sequence[Variable]) -> list[Variable]:
    """Bases before the declarations built on them (canonical/variables.py rejects cycles)."""
    names = {v.name for v in declared}
    done: set[str] = set()
    ordered: list[Variable] = []
    pending = list(declared)
    while pending:
        ready = [v for v in pending if v.demo is None or v.demo.base not in names - done]
        if not ready:  # only reachable with variables that bypassed parse_variables
            raise variables_error(pending[0].name, "demo.of", "shares form a cycle")
        for variable in ready:
            ordered.append(variable)
            done.add(variable.name)
        pending = [v for v in pending if v.name not in done]
    return ordered


def declared_series(declared: Sequence[Variable], bases: Bases, n_years: int,
                    taken_labels: set[str]) -> list[DeclaredSeries]:
    """The series of the declared variables, in variables.yaml order. A district-level variable that
    adds up (aggregation sum) gets district rows only: the warehouse rolls them up to the city. One
    that does not add up (a rate, a mean) gets its city row too, computed at city level."""
    labels = set(taken_labels)
    computed: dict[str, list[DeclaredSeries]] = {}
    for variable in _order(declared):
        demo = variable.demo
        assert demo is not None
        if demo.label in labels:
            raise variables_error(variable.name, "demo.label", f"{demo.label!r} is already a code of the demo's "
                                                               f"statistics files; choose another label")
        labels.add(demo.label)
        unit = published_unit(variable.unit)
        series: list[DeclaredSeries] = []
        if demo.level == "district":
            shape = (bases.districts, n_years)
            values = _printed(_scaled(variable, demo, "district", bases.district, shape), demo.decimals)
            bases.district[variable.name] = values
            series.append(DeclaredSeries(variable.name, demo.label, unit, demo.decimals, "district", values))
            if variable.aggregation == "sum":
                bases.city[variable.name] = values.sum(axis=0)  # what the roll-up will give
        if demo.level == "city" or variable.aggregation == "none":
            values = _printed(_scaled(variable, demo, "city", bases.city, (n_years,)), demo.decimals)
            bases.city[variable.name] = values
            series.append(DeclaredSeries(variable.name, demo.label, unit, demo.decimals, "city", values))
        computed[variable.name] = series
    return [s for v in declared for s in computed[v.name]]


def mapping_lines(series: Sequence[DeclaredSeries], indent: str) -> list[str]:
    """city.yaml mapping entries, one per series: "label": {variable: name, unit: unit}."""
    # JSON strings are YAML double-quoted scalars: any label and unit read back as the same text.
    return [f"{indent}{json.dumps(s.label, ensure_ascii=False)}: {{variable: {json.dumps(s.variable)}, "
            f"unit: {json.dumps(s.unit, ensure_ascii=False)}}}" for s in series]


DECLARED_COMMENT = f"Declared with `demo:` in {SOURCE} (added by the generator, sources/demo/declared.py)"
