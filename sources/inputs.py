"""What a city config's sources provide, read from the config alone (no data, no network).

The canonical variables its observation mappings name, per level (city, or per area type), the
variables its readings map, and the input markers of its other targets (`canonical.derivations`:
`areas:<area type>`, `transit_feed`, `readings`, `population_by_area`). Reading the config is the
work of this layer; `kpis.coverage` takes the result as a plain value and applies the derivations'
declarations to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from canonical.derivations import POPULATION_BY_AREA, READINGS, TRANSIT_FEED, areas, readings_of

if TYPE_CHECKING:
    from sources.config import CityConfig

VariableKey = tuple[str, str | None]  # (canonical variable, data point)


@dataclass(frozen=True)
class ConfigInputs:
    """The inputs a config's mappings can ever supply (whether a year has a value is known only after
    loading)."""

    city: frozenset[VariableKey] = frozenset()                             # observations of the whole city
    by_area: Mapping[str, frozenset[VariableKey]] = field(default_factory=dict)  # area type -> observations
    readings: frozenset[VariableKey] = frozenset()
    markers: frozenset[str] = frozenset()


def config_inputs(config: CityConfig) -> ConfigInputs:
    city: set[VariableKey] = set()
    by_area: dict[str, set[VariableKey]] = {}
    readings: set[VariableKey] = set()
    markers: set[str] = set()
    for source in config.sources:
        if source.observations is not None:
            mapped = {(vm.variable, vm.data_point) for vm in source.observations.variables.values()}
            if source.observations.area_field is None:
                city |= mapped
            else:
                by_area.setdefault(source.observations.area_type, set()).update(mapped)
        if source.readings is not None:
            readings |= {(vm.variable, vm.data_point) for vm in source.readings.variables.values()}
        if source.areas is not None:
            markers.add(areas(source.areas.area_type))
        if source.target == "transit_feed":
            markers.add(TRANSIT_FEED)
    if readings:
        markers |= {READINGS, *(readings_of(variable) for variable, _ in readings)}
    # Population per area placed on the grid needs the polygons of the same area type.
    if any(("population", None) in keys and areas(area_type) in markers for area_type, keys in by_area.items()):
        markers.add(POPULATION_BY_AREA)
    return ConfigInputs(frozenset(city), {t: frozenset(keys) for t, keys in by_area.items()},
                        frozenset(readings), frozenset(markers))
