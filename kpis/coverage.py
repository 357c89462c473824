"""Which indicators a city config can compute: a dry evaluation, no network, no warehouse.

The canonical variables a config provides are those its observation and readings mappings name,
plus what the derivations make from its other targets (`DERIVATIONS`, the one list of which
derived variables come from which inputs; keep it in step with `warehouse/derive.py` and
`kpis/spatial/derive.py`). Each formula's variable references are then checked against
them. Whether a value exists for a given reporting year is only known after loading: this says
what the mappings can ever supply, and names exactly what is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from canonical.variables import POPULATION_GROUPS
from kpis.catalogue import Compute, Indicator, load_catalogue
from kpis.engine import _substitute
from kpis.expressions import VariableRef, references
from sources.config import LoadedConfig

# What a config provides beside its mapped variables: (needs, gives). `needs` are input markers
# ("areas:<area_type>", "transit_feed", "population_by_area": population of districts or grid cells with
# their polygons) or variable names; `gives` are variable refs
# (`name` or `name[data point]`; "{group}" expands to each population group the config provides).
DERIVATIONS: tuple[tuple[tuple[str, ...], tuple[str, ...], str], ...] = (
    (("areas:district",), ("area_ha",), "polygon_area@1 (district areas)"),
    (("areas:green_area",), ("green_area_ha",), "polygon_area@2 (total green area)"),
    (("areas:green_area",), ("open_public_space_ha",), "open_public_space@2"),
    (("areas:street_area",), ("street_area_ha",), "street_area@1"),
    (("transit_feed",), ("transit_stops_total",), "transit_stops@2"),
    (("population_by_area",), ("population_gridded[{group}]",), "population_grid@1"),
    (("population_by_area", "transit_feed"), ("population_transit_access_sdg[{group}]",
                                      "population_within_500m_stop[{group}]"),
     "transit_access_sdg@1, transit_access_500m@1"),
    (("population_by_area", "transit_feed"), ("population_transit_access_sdg_straight_line[{group}]",
                                              "population_within_500m_stop_straight_line[{group}]"),
     "transit_access_sdg_straight_line@1, transit_access_500m_straight_line@1"),
    (("population_by_area", "areas:green_area"), ("population_within_300m_green[{group}]",), "green_access_300m@1"),
    (("population_by_area", "areas:green_area"), ("population_within_300m_green_straight_line[{group}]",),
     "green_access_300m_straight_line@1"),
    (("population_by_area", "areas:green_area"), ("population_within_400m_open_space[{group}]",),
     "open_space_access_400m@1"),
)
# Readings (hourly) give their variable per data point at city level (city_annual_mean@2; air readings
# also air_concentration_all_stations_ugm3, city_annual_mean_all_stations@1) and per
# district (district_annual_mean@2; air readings also district_annual_mean_all_stations@1); district
# values of additive variables roll up to the city
# (district_rollup@1), so a mapped variable counts as provided whatever its area level.

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


def provided_variables(loaded: LoadedConfig, *, by_area: bool = False) -> set[VariableRef]:
    """Variable refs the config's mappings and the derivations can supply (city level, or with
    `by_area` per area: what area-weighted formulas such as population_weighted_mean read)."""
    provided: set[VariableRef] = set()
    area_refs: set[VariableRef] = set()
    readings: set[VariableRef] = set()
    markers: set[str] = set()
    area_types: set[str] = set()
    for source in loaded.config.sources:
        if source.observations is not None:
            for vm in source.observations.variables.values():
                provided.add(VariableRef(vm.variable, vm.data_point))
                if source.observations.area_field is not None:
                    area_refs.add(VariableRef(vm.variable, vm.data_point))
                    area_types.add(source.observations.area_type)
        if source.readings is not None:
            readings.update(VariableRef(vm.variable, vm.data_point) for vm in source.readings.variables.values())
        if source.areas is not None:
            markers.add(f"areas:{source.areas.area_type}")
        if source.target == "transit_feed":
            markers.add("transit_feed")
    provided |= readings
    # city_annual_mean_all_stations@1: beside each city annual mean of air readings, every station's mean
    provided |= {VariableRef("air_concentration_all_stations_ugm3", ref.data_point) for ref in readings
                 if ref.variable == "air_concentration_ugm3"}
    if "areas:district" in markers:
        area_refs |= readings  # district_annual_mean@2
        # district_annual_mean_all_stations@1: the same over every station type (air readings)
        area_refs |= {VariableRef("air_concentration_all_stations_ugm3", ref.data_point) for ref in readings
                      if ref.variable == "air_concentration_ugm3"}
    if VariableRef("population") in area_refs and any(f"areas:{t}" in markers for t in area_types):
        markers.add("population_by_area")
    if by_area:
        return area_refs
    names = {ref.variable for ref in provided if ref.data_point is None}
    groups = [group for group, variable in POPULATION_GROUPS.items() if variable in names]
    for needs, gives, _ in DERIVATIONS:
        if all(need in markers or need in names for need in needs):
            for ref in gives:
                if "{group}" in ref:
                    provided.update(VariableRef.parse(ref.replace("{group}", g)) for g in groups)
                else:
                    provided.add(VariableRef.parse(ref))
    return provided


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


def coverage(loaded: LoadedConfig, indicators: Sequence[Indicator] | None = None) -> Coverage:
    indicators = indicators if indicators is not None else load_catalogue()
    provided = provided_variables(loaded)
    per_area = provided_variables(loaded, by_area=True)
    result = Coverage(loaded.city_id, list(loaded.config.city.reporting_years), provided)
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
