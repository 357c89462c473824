"""Every variable a catalogue formula reads is provided by the demo city (issue #17).

The demo provides a variable through a hand-written series (sources/demo/generator.py,
indicator_series.py and the city.yaml template), a derivation (the `DECLARED` derivations of
warehouse/derive.py and kpis/spatial/derive.py: readings means, roll-ups, spatial access) or a `demo:`
declaration in canonical/variables.yaml (sources/demo/declared.py). The generated city.yaml maps all
but the derived ones, so kpis.coverage.provided_variables on its inputs is the truth. A new KPI over a
new variable fails here until the variable has its declaration.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from canonical.variables import VARIABLES, Variable, parse_variables
from kpis.catalogue import Compute, Indicator, indicators_by_id, load_catalogue
from kpis.coverage import formula_references, provided_variables
from kpis.expressions import VariableRef
from sources.config import LoadedConfig, load_city_config
from sources.demo import generate_demo_city
from sources.inputs import config_inputs

SCALE = 0.125


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> LoadedConfig:
    return load_city_config(generate_demo_city(tmp_path_factory.mktemp("demo"), scale=SCALE))


def _advice(indicator: Indicator, data_point: str | None, ref: VariableRef, per_area: bool) -> str:
    where = f"{indicator.id}" + (f" [{data_point}]" if data_point else "")
    if ref.data_point is not None:
        return (f"{where} reads {ref}, which the demo city does not provide. A `demo:` declaration in "
                f"canonical/variables.yaml gives one series without data points: add the data point as a hand "
                f"series (sources/demo/indicator_series.py) with its mapping in sources/demo/city.yaml")
    level = " per district (its formula weights areas)" if per_area else ""
    example = "{per_capita: 0.01, level: district}" if per_area else "{per_capita: 0.01}"
    return (f"{where} reads {ref.variable!r}, which the demo city does not provide{level}: add a `demo:` "
            f"declaration to {ref.variable} in canonical/variables.yaml, e.g. demo: {example} "
            f"(the header of variables.yaml lists the forms)")


def unprovided(indicators: Iterable[Indicator], loaded: LoadedConfig) -> list[str]:
    """One message per formula variable the demo config cannot supply, saying what to add."""
    inputs = config_inputs(loaded.config)
    provided, per_area = provided_variables(inputs), provided_variables(inputs, by_area=True)
    problems: list[str] = []
    for indicator in indicators:
        for data_point, compute in indicator.computes():
            weighted = compute.kind == "population_weighted_mean"
            have = per_area if weighted else provided
            problems += [_advice(indicator, data_point, ref, weighted)
                         for ref in formula_references(compute, data_point) if ref not in have]
    return problems


def shadowed_derivations(variables: Mapping[str, Variable], loaded: LoadedConfig) -> list[str]:
    """Declared variables the pipeline derives (provided, but mapped by no source): rows made up by the
    demo would clash with the derived ones."""
    mapped = {vm.variable for source in loaded.config.sources
              for mapping in (source.observations, source.readings) if mapping is not None
              for vm in mapping.variables.values()}
    derived = {ref.variable for ref in provided_variables(config_inputs(loaded.config))} - mapped
    return [f"{name} has a `demo:` declaration in canonical/variables.yaml, but the pipeline derives it "
            f"(a derivation's DECLARED entry): remove the declaration" for name, variable in variables.items()
            if variable.demo is not None and name in derived]


def test_every_variable_the_catalogue_reads_is_provided_by_the_demo(demo: LoadedConfig) -> None:
    problems = unprovided(load_catalogue(), demo)
    assert not problems, "\n".join(problems)


def test_no_declaration_stands_in_for_a_derived_variable(demo: LoadedConfig) -> None:
    problems = shadowed_derivations(VARIABLES, demo)
    assert not problems, "\n".join(problems)


# ---- the checks fail where they should -------------------------------------------------------------

NEW = {"library_members": {"unit": "person", "aggregation": "sum", "description": "Library members",
                           "demo": {"per_capita": 0.09}}}


def _entry(compute: Compute) -> Indicator:
    """An indicator of the catalogue with another formula and no data points."""
    return indicators_by_id()["EC:ICT:ICT:1C"].model_copy(
        update={"id": "TEST:NEW:1", "compute": compute, "data_points": [], "data_point_compute": {}})


def _vocabulary(extra: Mapping[str, Any]) -> dict[str, Variable]:
    raw = {v.name: {"unit": v.unit, "aggregation": v.aggregation, "description": v.description}
           for v in VARIABLES.values()}
    return parse_variables({**raw, **extra})


def test_a_new_variable_fails_naming_it_and_passes_once_declared(tmp_path: Path, demo: LoadedConfig,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    entry = _entry(Compute(kind="ratio", numerator="library_members", denominator="population", scale=100))
    [problem] = unprovided([entry], demo)
    assert "TEST:NEW:1 reads 'library_members', which the demo city does not provide" in problem
    assert "add a `demo:` declaration to library_members in canonical/variables.yaml" in problem

    vocabulary = _vocabulary(NEW)
    monkeypatch.setitem(VARIABLES, "library_members", vocabulary["library_members"])  # as if in variables.yaml
    declared = load_city_config(generate_demo_city(tmp_path, scale=SCALE, variables=vocabulary))
    assert unprovided([entry], declared) == []


def test_an_area_weighted_formula_needs_district_values(demo: LoadedConfig) -> None:
    entry = _entry(Compute(kind="population_weighted_mean", variable="income_gini_index", weight="population"))
    [problem] = unprovided([entry], demo)  # the demo publishes the Gini index for the city only
    assert "'income_gini_index', which the demo city does not provide per district" in problem
    assert "level: district" in problem


def test_a_data_point_the_demo_lacks_is_named_with_where_to_add_it(demo: LoadedConfig) -> None:
    entry = _entry(Compute(kind="value", expression='commuters_by_main_mode["horse"]'))
    [problem] = unprovided([entry], demo)
    assert 'reads commuters_by_main_mode["horse"]' in problem and "sources/demo/indicator_series.py" in problem


def test_a_declaration_on_a_derived_variable_is_named(demo: LoadedConfig) -> None:
    vocabulary = _vocabulary({"green_area_ha": {"unit": "ha", "aggregation": "sum", "description": "Green",
                                                "demo": {"ramp": 100}}})
    assert shadowed_derivations(vocabulary, demo) == [
        "green_area_ha has a `demo:` declaration in canonical/variables.yaml, but the pipeline derives it "
        "(a derivation's DECLARED entry): remove the declaration"]
