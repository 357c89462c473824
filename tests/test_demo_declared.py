"""The demo generator makes up the variables declared with `demo:` (sources/demo/declared.py, issue #17):
their rows in the statistics files, worked by hand from the population, and their city.yaml mapping."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import yaml

from canonical.variables import VARIABLES, Variable, VariablesError, parse_variables
from sources.config import load_city_config
from sources.demo import generate_demo_city
from sources.demo.generator import DISTRICT_STATISTICS, _declarations_suffix
from sources.landing import Snapshot
from warehouse.load import parse_source

SCALE = 0.125  # one air quality station: the statistics do not depend on the scale
YEARS = range(2019, 2025)
MEMBERS = "Eingetragene Nutzer der Stadtbibliothek"
DECLARED: dict[str, Any] = {
    # per capita, from 8 % in 2019 to 9.5 % in 2024 (0.3 points a year)
    "library_members": {"unit": "person", "aggregation": "sum", "description": "Library members",
                        "demo": {"per_capita": [0.08, 0.095], "label": MEMBERS}},
    # a share of another declaration
    "library_members_young": {"unit": "person", "aggregation": "sum", "description": "Young members",
                              "demo": {"share": 0.25, "of": "library_members"}},
    # a share of a hand series published in another unit (Stromverbrauch in MWh; canonical kWh)
    "electricity_street_lighting_kwh": {"unit": "kWh", "aggregation": "sum", "description": "Street lighting",
                                        "demo": {"share": 0.01, "of": "electricity_consumption_kwh",
                                                 "decimals": 1}},
    # a ramp, with decimals; money is published in EUR
    "library_budget_lcu": {"unit": "LCU", "aggregation": "sum", "description": "Library budget",
                           "demo": {"ramp": [21_000_000.5, 23_500_000.5], "decimals": 1}},
    # district level: counts roll up to the city; a mean that does not add up gets its city row too
    "library_branches": {"unit": "facility", "aggregation": "sum", "description": "Library branches",
                         "demo": {"per_capita": 0.00005, "level": "district", "decimals": 2}},
    "library_satisfaction": {"unit": "index", "aggregation": "none", "description": "Satisfaction",
                             "demo": {"ramp": [0.7, 0.8], "level": "district", "decimals": 3}},
}


def _vocabulary(extra: dict[str, Any]) -> dict[str, Variable]:
    """variables.yaml as it is, plus (or with replaced) the `extra` entries, parsed as the file would be."""
    raw = {v.name: {"unit": v.unit, "aggregation": v.aggregation, "description": v.description}
           for v in VARIABLES.values()}
    return parse_variables({**raw, **extra})


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_demo_city(tmp_path_factory.mktemp("declared"), scale=SCALE,
                              variables=_vocabulary(DECLARED)).parent


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The declared variables in the process's vocabulary, as if variables.yaml held them (the config
    loader and the mapping look variables up there)."""
    vocabulary = _vocabulary(DECLARED)
    for name in DECLARED:
        monkeypatch.setitem(VARIABLES, name, vocabulary[name])


def _statistics(path: Path, key: str = "Merkmal") -> dict[tuple[str, ...], float]:
    """(code[, district], year) -> value, read back from the German format."""
    with path.open(encoding="latin-1", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    area = "Bezirk-Nr." if rows and "Bezirk-Nr." in rows[0] else None
    return {(row[key], *([row[area]] if area else []), row["Jahr"]):
            float(row["Wert"].replace(".", "").replace(",", ".")) for row in rows}


def _district_population(demo: Path) -> dict[tuple[str, str], int]:
    sheet = openpyxl.load_workbook(demo / "bevoelkerung_bezirke.xlsx", read_only=True)["Bevoelkerung"]
    rows = list(sheet.iter_rows(min_row=3, values_only=True))
    return {(str(row[0]), str(row[2])): int(row[3]) for row in rows}  # (Bezirk-Nr., Jahr) -> Einwohner


def _city_population(demo: Path) -> dict[str, int]:
    totals: dict[str, int] = {}
    for (_, year), count in _district_population(demo).items():
        totals[year] = totals.get(year, 0) + count
    return totals


def test_a_per_capita_variable_is_the_rate_times_the_population(demo: Path) -> None:
    stats, population = _statistics(demo / "statistik_stadt.csv"), _city_population(demo)
    rates = dict(zip(map(str, YEARS), (0.080, 0.083, 0.086, 0.089, 0.092, 0.095), strict=True))
    for year, rate in rates.items():
        assert stats[(MEMBERS, year)] == round(rate * population[year]), year
    # 2024 by hand: 9.5 % of the city's population, a whole number of persons
    assert stats[(MEMBERS, "2024")] == round(0.095 * population["2024"])


def test_a_share_reads_its_base_as_printed_in_canonical_units(demo: Path) -> None:
    stats = _statistics(demo / "statistik_stadt.csv")
    for year in map(str, YEARS):
        assert stats[("library_members_young", year)] == round(0.25 * stats[(MEMBERS, year)])
        # Stromverbrauch is printed in MWh: 1 % of it in kWh, one decimal
        assert stats[("electricity_street_lighting_kwh", year)] == round(0.01 * stats[("Stromverbrauch", year)]
                                                                         * 1000, 1)


def test_a_ramp_goes_straight_from_start_to_end(demo: Path) -> None:
    stats = _statistics(demo / "statistik_stadt.csv")
    assert [stats[("library_budget_lcu", str(year))] for year in YEARS] == [
        21_000_000.5, 21_500_000.5, 22_000_000.5, 22_500_000.5, 23_000_000.5, 23_500_000.5]


def test_district_rows_scale_each_district_and_only_a_mean_gets_a_city_row(demo: Path) -> None:
    rows = _statistics(demo / DISTRICT_STATISTICS)
    population = _district_population(demo)
    assert len(population) == 12 * 6
    for (district, year), count in population.items():
        assert rows[("library_branches", district, year)] == round(0.00005 * count, 2)
        assert rows[("library_satisfaction", district, year)] == round(0.7 + 0.02 * (int(year) - 2019), 3)
    assert len(rows) == 2 * 12 * 6
    city = _statistics(demo / "statistik_stadt.csv")
    assert {key[1] for key in city if key[0] == "library_satisfaction"} == set(map(str, YEARS))
    assert not [key for key in city if key[0] == "library_branches"]  # the warehouse rolls the districts up


@pytest.mark.usefixtures("registered")
def test_the_config_maps_every_declared_series_and_loads(demo: Path) -> None:
    loaded = load_city_config(demo / "city.yaml", check_files=True)
    sources = {source.id: source for source in loaded.config.sources}
    city = sources["statistik-stadt"].observations
    district = sources["statistik-bezirke"].observations
    assert city is not None and district is not None
    assert {(vm.variable, vm.unit) for code, vm in city.variables.items() if code in (MEMBERS, "library_budget_lcu")
            } == {("library_members", "person"), ("library_budget_lcu", "EUR")}
    assert {vm.variable for vm in district.variables.values()} == {"library_branches", "library_satisfaction"}
    assert (district.area_field, district.area_type) == ("Bezirk-Nr.", "district")


@pytest.mark.usefixtures("registered")
def test_district_rows_load_with_the_districts_area_ids(demo: Path) -> None:
    loaded = load_city_config(demo / "city.yaml")
    source = next(s for s in loaded.config.sources if s.id == "statistik-bezirke")
    path = demo / DISTRICT_STATISTICS
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    snapshot = Snapshot(snapshot_id=f"demo-city/statistik-bezirke/{digest[:16]}", city_id="demo-city",
                        source_id=source.id, kind="file", location=str(path), format="csv", content_sha256=digest,
                        size_bytes=path.stat().st_size, path=path, relative_path=path.name,
                        fetched_at="2026-01-01T00:00:00Z", request={}, new=True, pages=(path,))
    frame = parse_source(loaded, source, snapshot).frame
    assert frame is not None and frame.height == 2 * 12 * 6
    codes = {feature["properties"]["bezirk_nr"] for feature in
             yaml.safe_load((demo / "bezirke.geojson").read_text(encoding="utf-8"))["features"]}
    assert set(frame["area_id"]) == codes and set(frame["area_type"]) == {"district"}


def test_without_declarations_the_demo_is_unchanged_and_a_hand_series_wins(tmp_path: Path) -> None:
    """Declaring a variable the hand series already give (population_exposed_noise) changes no byte."""
    plain = generate_demo_city(tmp_path / "plain", scale=SCALE).parent
    shadowed = generate_demo_city(tmp_path / "shadowed", scale=SCALE, variables=_vocabulary(
        {"population_exposed_noise": {**DECLARED["library_members"], "demo": {"per_capita": 0.5}}})).parent
    names = sorted(p.name for p in plain.iterdir())
    assert names == sorted(p.name for p in shadowed.iterdir()) and DISTRICT_STATISTICS not in names
    for name in names:
        assert (plain / name).read_bytes() == (shadowed / name).read_bytes(), name
    assert "Declared with `demo:`" not in (plain / "city.yaml").read_text(encoding="utf-8")


def test_a_new_declaration_gets_a_new_demo_folder() -> None:
    """A demo generated into a home is reused, so the folder name must change with the declarations."""
    assert _declarations_suffix(VARIABLES) == ""
    first = _declarations_suffix(_vocabulary(DECLARED))
    changed = {**DECLARED, "library_members": {**DECLARED["library_members"], "demo": {"per_capita": 0.1}}}
    assert first.startswith("-d") and _declarations_suffix(_vocabulary(changed)) not in ("", first)


@pytest.mark.parametrize(("declaration", "key", "words"), [
    ({"share": 0.5, "of": "water_supplied_m3"}, "demo.of",
     "no city values of 'water_supplied_m3'"),  # versorgung.csv: not a base the generator offers
    ({"share": 0.5, "of": "library_members", "level": "district"}, "demo.of",
     "no district values of 'library_members'"),  # a city-level declaration has no district values
    ({"per_capita": 0.1, "label": "Arbeitslose"}, "demo.label", "already a code"),
], ids=["not-a-base", "city-base-for-districts", "label-taken"])
def test_the_generator_names_the_variable_and_key_it_cannot_make(tmp_path: Path, declaration: dict[str, Any],
                                                                 key: str, words: str) -> None:
    extra = {"library_members": DECLARED["library_members"],
             "bad": {"unit": "m3", "aggregation": "sum", "description": "bad", "demo": declaration}}
    with pytest.raises(VariablesError, match=rf"variable 'bad', key '{key}': .*{words}"):
        generate_demo_city(tmp_path, scale=SCALE, variables=_vocabulary(extra))
