"""The derivations' declarations (`DECLARED` in warehouse/derive.py and kpis/spatial/derive.py, collected
by kpis.coverage) against what the derivations write: both ways, for the demo city's completed run.

- every derived observation row is declared by its derivation (label, level, variable and data point);
- every declaration whose needs the demo config meets wrote a row for each variable it gives, unless a
  source publishes that value itself (a derivation never overrides one).

A derivation whose code changes what it writes (a new variable, a data point, a version bump) without
its declaration, or a declaration promising what the code does not write, fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import pytest
from conftest import CompletedHome

from canonical.derivations import DISTRICT_SUMS, POPULATION_BY_AREA, Derivation, areas
from kpis.coverage import DECLARATIONS, derived_refs, provided_variables
from kpis.expressions import VariableRef
from sources.config import load_city_config
from sources.inputs import ConfigInputs, config_inputs

Row = tuple[str, str, VariableRef]  # (derivation label, area type, variable ref)


@dataclass(frozen=True)
class DemoRun:
    inputs: ConfigInputs
    derived: set[Row]
    published: set[tuple[str, VariableRef]]  # (area type, ref) a source wrote


@pytest.fixture(scope="module")
def demo(completed_home: CompletedHome) -> Iterator[DemoRun]:
    loaded = load_city_config(completed_home.config)
    con = duckdb.connect(str(completed_home.home / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute("""SELECT DISTINCT derivation, area_type, variable, data_point, derivation IS NULL
                              FROM observations WHERE city_id = ?""", [loaded.city_id]).fetchall()
    finally:
        con.close()
    yield DemoRun(config_inputs(loaded.config),
                  {(label, area_type, VariableRef(v, dp)) for label, area_type, v, dp, source in rows if not source},
                  {(area_type, VariableRef(v, dp)) for _, area_type, v, dp, source in rows if source})


def test_every_derived_row_is_declared(demo: DemoRun) -> None:
    declared = {d.label for d in DECLARATIONS}
    made = {d.label: (d, refs) for d, refs in derived_refs(demo.inputs)}
    assert demo.derived, "the demo run derived nothing"
    undeclared = sorted(str(row) for row in demo.derived if row[0] not in declared)
    assert not undeclared, f"derived rows of no declared derivation: {undeclared}"
    unmet = sorted({label for label, _, _ in demo.derived if label not in made})
    assert not unmet, f"declared needs the demo config does not meet, yet these derivations wrote rows: {unmet}"
    outside = sorted(f"{label} {area_type} {ref}" for label, area_type, ref in demo.derived
                     if area_type not in made[label][0].area_types or ref not in made[label][1])
    assert not outside, f"derived rows their declaration does not give: {outside}"


def test_every_declaration_the_demo_meets_wrote_its_rows(demo: DemoRun) -> None:
    made = derived_refs(demo.inputs)
    empty = sorted(d.label for d, refs in made if not refs)
    assert not empty, f"declarations whose needs are met but whose gives expand to nothing: {empty}"
    expected = {(d.label, area_type, ref) for d, refs in made for area_type in d.area_types for ref in refs
                if (area_type, ref) not in demo.published}
    missing = sorted(f"{label} {area_type} {ref}" for label, area_type, ref in expected - demo.derived)
    assert not missing, f"declared but not written for the demo city: {missing}"


# ---- the declarations and coverage's reading of them, without data --------------------------------------


def test_a_declaration_naming_an_unknown_variable_fails_at_once() -> None:
    with pytest.raises(ValueError, match="unknown gives 'no_such_variable'"):
        Derivation("made_up@1", needs=(), gives=("no_such_variable",))
    with pytest.raises(ValueError, match="unknown need 'nothing_like_it'"):
        Derivation("made_up@1", needs=("nothing_like_it",), gives=("area_ha",))
    assert Derivation("made_up@1", needs=(areas("district"),), gives=(DISTRICT_SUMS,)).area_types == ("city",)


def test_district_values_reach_the_city_only_where_the_roll_up_adds_them() -> None:
    # population per district rolls up (additive) and, with district polygons, is placed on the grid;
    # life expectancy per district has no city value (not additive: no derivation makes one)
    inputs = ConfigInputs(by_area={"district": frozenset({("population", None), ("life_expectancy_years", None)})},
                          markers=frozenset({areas("district"), POPULATION_BY_AREA}))
    city = provided_variables(inputs)
    assert VariableRef("population") in city and VariableRef("life_expectancy_years") not in city
    assert VariableRef("population_gridded", "total") in city  # through the roll-up's population
    assert VariableRef("population_gridded", "female") not in city  # no female population mapped
    assert VariableRef("life_expectancy_years") in provided_variables(inputs, by_area=True)
