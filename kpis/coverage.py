"""Which indicators a city config can compute: a dry evaluation, no network, no warehouse.

The canonical variables a config provides are what its mappings name (`sources.inputs.ConfigInputs`,
read from the config by the caller) plus what the derivations make from them: each derivation
declares its needs and what it gives beside its code (`DECLARED` in `warehouse/derive.py` and
`kpis/spatial/derive.py`; the type in `canonical/derivations.py`), and this module only collects the
declarations (`DECLARATIONS`). Each formula's variable references are then checked against them.
Whether a value exists for a given reporting year is only known after loading: this says what the
mappings can ever supply, and names exactly what is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from canonical.derivations import DISTRICT_SUMS, GROUP, READING_REFS, Derivation, readings_points_of, split_ref
from canonical.variables import POPULATION_GROUPS, VARIABLES
from kpis.catalogue import Compute, Indicator, load_catalogue
from kpis.engine import _substitute
from kpis.expressions import VariableRef, references
from kpis.spatial.derive import DECLARED as SPATIAL_DECLARED
from sources.inputs import ConfigInputs
from warehouse.derive import DECLARED as WAREHOUSE_DECLARED

DECLARATIONS: tuple[Derivation, ...] = WAREHOUSE_DECLARED + SPATIAL_DECLARED
# Rows at these levels are points, not areas a population-weighted mean weights over.
POINT_LEVELS = ("station",)

STATUSES = ("computed", "missing", "not_applicable")


@dataclass(frozen=True)
class CoverageRow:
    indicator_id: str
    framework: str
    name: str
    data_point: str | None
    status: str  # computed (every input provided) | missing | not_applicable (no formula)
    missing: tuple[str, ...] = ()


@dataclass
class Coverage:
    city_id: str
    reporting_years: list[int]
    provided: set[VariableRef] = field(default_factory=set)
    rows: list[CoverageRow] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {status: sum(r.status == status for r in self.rows) for status in STATUSES}


def _expand(give: str, inputs: ConfigInputs, names: set[str]) -> set[VariableRef]:
    """The variable refs one `gives` entry stands for, given the config's inputs and the variable
    names the city has at city level (the placeholders of canonical.derivations)."""
    variable, point = split_ref(give)
    if variable == READING_REFS:
        return {VariableRef(v, dp) for v, dp in inputs.readings}
    if variable == DISTRICT_SUMS:
        return {VariableRef(v, dp) for v, dp in inputs.by_area.get("district", ())
                if v in VARIABLES and VARIABLES[v].aggregation == "sum"}
    if point == GROUP:
        return {VariableRef(variable, group) for group, name in POPULATION_GROUPS.items() if name in names}
    if (of := readings_points_of(point)) is not None:
        return {VariableRef(variable, dp) for v, dp in inputs.readings if v == of}
    return {VariableRef(variable, point)}


def derived_refs(inputs: ConfigInputs) -> list[tuple[Derivation, set[VariableRef]]]:
    """Each declared derivation whose needs the config meets, with the variable refs it gives (at each
    of its `area_types`). Derivations read each other's rows (the district roll-up's population feeds
    the population grid's groups), so this repeats until nothing more is provided at city level."""
    city = {VariableRef(v, dp) for v, dp in inputs.city}
    while True:
        names = {ref.variable for ref in city if ref.data_point is None}
        made = [(d, set().union(*(_expand(give, inputs, names) for give in d.gives))) for d in DECLARATIONS
                if all(need in inputs.markers or need in names for need in d.needs)]
        grown = city.union(*(refs for d, refs in made if "city" in d.area_types))
        if grown == city:
            return made
        city = grown


def provided_variables(inputs: ConfigInputs, *, by_area: bool = False) -> set[VariableRef]:
    """Variable refs the config's mappings and the derivations can supply (city level, or with
    `by_area` per area: what area-weighted formulas such as population_weighted_mean read)."""
    made = derived_refs(inputs)
    if by_area:
        mapped = {VariableRef(v, dp) for keys in inputs.by_area.values() for v, dp in keys}
        return mapped.union(*(refs for d, refs in made
                              if any(t != "city" and t not in POINT_LEVELS for t in d.area_types)))
    return {VariableRef(v, dp) for v, dp in inputs.city}.union(*(refs for d, refs in made if "city" in d.area_types))


def formula_references(compute: Compute, data_point: str | None) -> list[VariableRef]:
    """Every variable a formula reads, with `{data_point}` filled in."""
    texts = {"ratio": (compute.numerator, compute.denominator), "value": (compute.expression,),
             "growth_ratio": (compute.numerator, compute.denominator),
             "population_weighted_mean": (compute.variable, compute.weight)}[compute.kind]
    refs: list[VariableRef] = []
    for text in texts:
        substituted = _substitute(text, data_point)
        for ref in references(substituted or ""):
            if ref not in refs:
                refs.append(ref)
    return refs


def coverage(city_id: str, reporting_years: Sequence[int], inputs: ConfigInputs,
             indicators: Sequence[Indicator] | None = None) -> Coverage:
    """Per indicator and data point: computed when the config provides every variable its formula
    reads (`inputs`: `sources.inputs.config_inputs(config)`), else missing, naming what is lacking."""
    indicators = indicators if indicators is not None else load_catalogue()
    provided = provided_variables(inputs)
    per_area = provided_variables(inputs, by_area=True)
    result = Coverage(city_id, list(reporting_years), provided)
    for indicator in indicators:
        points: list[str | None] = list(indicator.data_points) or [None]
        for data_point in points:
            compute = indicator.compute_for(data_point)
            if compute is None:
                result.rows.append(CoverageRow(indicator.id, indicator.framework, indicator.name, data_point,
                                               "not_applicable"))
                continue
            have = per_area if compute.kind == "population_weighted_mean" else provided
            missing = tuple(str(ref) for ref in formula_references(compute, data_point) if ref not in have)
            result.rows.append(CoverageRow(indicator.id, indicator.framework, indicator.name, data_point,
                                           "missing" if missing else "computed", missing))
    return result


def format_coverage(result: Coverage, *, only: str | None = None) -> str:
    years = ", ".join(map(str, result.reporting_years))
    lines = [f"{result.city_id}: indicator coverage for {years} (dry evaluation of the config's mappings)"]
    for row in result.rows:
        if only is not None and row.status != only:
            continue
        label = row.indicator_id + (f" [{row.data_point}]" if row.data_point else "")
        detail = f" lacks {', '.join(row.missing)}" if row.missing else ""
        lines.append(f"  {row.status:<15} {label:<32} {row.name}{detail}")
    counts = result.counts()
    lines.append("total: " + ", ".join(f"{status} {counts[status]}" for status in STATUSES))
    return "\n".join(lines)
