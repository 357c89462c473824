"""Declarations of derivations: which derived variables each derivation makes, from which inputs.

Each derivation declares itself beside its code, in a `DECLARED` tuple: `warehouse/derive.py` (roll-ups,
annual means, polygon areas, stop counts) and `kpis/spatial/derive.py` (population grid, access, open
space). `kpis/coverage.py` collects them to say what a config can compute without loading anything, and
`tests/test_derivation_declarations.py` holds them against the rows the demo city's derivations write.
The type and its vocabulary live here, below every layer that uses them: `sources/inputs.py` names a
config's inputs with the same markers.
"""

from __future__ import annotations

from dataclasses import dataclass

from canonical.variables import VARIABLES

# ---- needs: input markers (or a canonical variable the city has, at city level) ----------------------
READINGS = "readings"                      # any readings source (sensor values: hourly, or daily samples)
TRANSIT_FEED = "transit_feed"              # a GTFS feed (target transit_feed)
POPULATION_BY_AREA = "population_by_area"  # population per area, with the polygons of that area type
_MARKERS = (READINGS, TRANSIT_FEED, POPULATION_BY_AREA)


def areas(area_type: str) -> str:
    """Polygons of an area type: `areas:district`, `areas:green_area`, `areas:street_area`, ..."""
    return f"areas:{area_type}"


def readings_of(variable: str) -> str:
    """Readings of one canonical variable: `readings:air_concentration_ugm3`."""
    return f"readings:{variable}"


# ---- gives: variable refs `name` or `name[data point]`, with placeholders filled from the config ------
GROUP = "{group}"                   # data point: each population group (POPULATION_GROUPS) the city has
READING_REFS = "{readings}"         # whole ref: each variable[data point] of the config's readings
DISTRICT_SUMS = "{district_sums}"   # whole ref: each additive variable[data point] mapped per district
_WHOLE = (READING_REFS, DISTRICT_SUMS)


def readings_points(variable: str) -> str:
    """Data point placeholder: each data point of the config's readings of `variable`."""
    return "{readings:" + variable + "}"


def readings_points_of(data_point: str | None) -> str | None:
    """The variable a `readings_points` placeholder names, or None for anything else."""
    if data_point is not None and data_point.startswith("{readings:") and data_point.endswith("}"):
        return data_point[len("{readings:"):-1]
    return None


def split_ref(text: str) -> tuple[str, str | None]:
    """`name[data point]` -> (name, data point); `name` -> (name, None)."""
    name, bracket, rest = text.partition("[")
    return (name, rest[:-1]) if bracket and rest.endswith("]") else (text, None)


@dataclass(frozen=True)
class Derivation:
    """One derivation's declaration: with every `need` met, it writes rows of each of `gives` at each
    of `area_types` (unless a source publishes that value itself: derivations never override one)."""

    label: str                            # name@version, as written in observations.derivation
    needs: tuple[str, ...]                # all of them: input markers (above) or canonical variables
    gives: tuple[str, ...]                # variable refs, with the placeholders above
    area_types: tuple[str, ...] = ("city",)

    def __post_init__(self) -> None:
        # A misspelt variable or placeholder fails at import, not as a silently empty coverage.
        problems = [f"need {need!r}" for need in self.needs if not _known_need(need)]
        problems += [f"gives {give!r}" for give in self.gives if not _known_give(give)]
        if "@" not in self.label or not self.area_types:
            problems.append("label name@version and at least one area type")
        if problems:
            raise ValueError(f"derivation declaration {self.label}: unknown {', '.join(problems)}")


def _known_need(need: str) -> bool:
    if need in _MARKERS or need.startswith("areas:"):
        return True
    if need.startswith("readings:"):
        return need.removeprefix("readings:") in VARIABLES
    return need in VARIABLES


def _known_give(give: str) -> bool:
    name, point = split_ref(give)
    if name in _WHOLE:
        return point is None
    if name not in VARIABLES:
        return False
    of = readings_points_of(point)
    return of in VARIABLES if of is not None else point is None or point == GROUP or "{" not in point
