"""Acceptance: the demo city computes every catalogue indicator and data point in every reporting year.

The demo city (scale 0.125) runs through `pipelines.steps.run_plain` into a temporary home; any row
that is not `computed` is listed with its status reason, so a gap names the variable to add to the
demo or the catalogue entry to fix.
"""

from __future__ import annotations

import json
from collections import Counter

import duckdb
import pytest

from kpis.catalogue import load_catalogue
from pipelines.steps import run_plain
from sources.config import load_city_config
from sources.demo import generate_demo_city
from warehouse.home import Home

SCALE = 0.125
YEARS = (2022, 2023, 2024)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    root = tmp_path_factory.mktemp("coverage")
    config = generate_demo_city(root / "demo", scale=SCALE)
    home = Home.resolve(root / "home")
    run_plain(home, [load_city_config(config)], "coverage-run")
    return home


def _query(home: Home, sql: str) -> list[dict[str, object]]:
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


@pytest.fixture(scope="module")
def kpi_rows(home: Home) -> list[dict[str, object]]:
    return _query(home, """SELECT indicator_id, data_point, year, status, status_reason, value, inputs
                           FROM kpi_values WHERE city_id = 'demo-city' ORDER BY ALL""")


def test_catalogue_has_the_complete_indicator_sets() -> None:
    catalogue = load_catalogue()
    u4ssc = [i for i in catalogue if i.framework == "u4ssc"]
    assert len(u4ssc) == 91
    assert Counter(i.type for i in u4ssc) == {"core": 54, "advanced": 37}
    assert Counter(i.dimension for i in u4ssc) == {"Economy": 45, "Environment": 17, "Society and Culture": 29}
    sdg = [i.id for i in catalogue if i.framework == "sdg11"]
    assert sdg == ["11.1.1", "11.2.1", "11.3.1", "11.3.2", "11.4.1", "11.5.1", "11.5.2", "11.5.3", "11.6.1",
                   "11.6.2", "11.7.1", "11.7.2", "11.a.1", "11.b.1", "11.b.2"]
    assert all(i.compute is not None for i in catalogue)


def test_every_indicator_and_data_point_is_computed_every_year(kpi_rows: list[dict[str, object]]) -> None:
    found = {(r["indicator_id"], r["data_point"], r["year"]): r for r in kpi_rows}
    expected = [(i.id, dp, year) for i in load_catalogue() for dp, _ in i.computes() for year in YEARS]
    absent = [key for key in expected if key not in found]
    offenders = [f"{key[0]} {key[1] or '-'} {key[2]}: {found[key]['status']} ({found[key]['status_reason']})"
                 for key in expected if key in found and found[key]["status"] != "computed"]
    assert not absent, f"{len(absent)} rows absent: {absent[:20]}"
    assert not offenders, f"{len(offenders)} rows not computed:\n" + "\n".join(offenders)
    assert len(kpi_rows) == len(expected)
    assert all(r["inputs"] != "[]" for r in kpi_rows), "every computed row names its inputs"


def test_voter_participation_reports_the_last_election(kpi_rows: list[dict[str, object]]) -> None:
    """Elections in 2019 and 2024 only: 2022 and 2023 report 2019, and the provenance says so."""
    rows = {r["year"]: r for r in kpi_rows if r["indicator_id"] == "SC:SH:SI:4C"}
    for year in (2022, 2023):
        inputs = json.loads(str(rows[year]["inputs"]))
        assert {item["year"] for item in inputs} == {2019}, inputs
        assert {item["variable"] for item in inputs} == {"voters_total", "eligible_voters"}
        assert "inputs of 2019" in str(rows[year]["status_reason"])
        assert rows[year]["value"] == rows[2022]["value"]
    assert {item["year"] for item in json.loads(str(rows[2024]["inputs"]))} == {2024}
    assert rows[2024]["status_reason"] is None
    assert rows[2024]["value"] != rows[2022]["value"]


def _values(kpi_rows: list[dict[str, object]], indicator_id: str, data_point: str | None = None) -> list[float]:
    return [float(str(r["value"])) for r in kpi_rows
            if r["indicator_id"] == indicator_id and r["data_point"] == data_point]


def test_demo_values_pass_the_verification_manual_checks(kpi_rows: list[dict[str, object]]) -> None:
    """The U4SSC VM's consistency checks (u4ssc_notes.md section 7) hold on the demo city."""
    assert all(v > 95 for v in _values(kpi_rows, "EC:P:IN:3A"))          # SMEs > 95 %
    assert all(v < 5 for v in _values(kpi_rows, "EC:P:IN:1C"))           # R&D < 5 % of GDP
    assert all(v >= 90 for v in _values(kpi_rows, "EC:I:ES:3C"))         # access to electricity
    for potable, basic in zip(_values(kpi_rows, "EC:I:WS:2C"), _values(kpi_rows, "EC:I:WS:1C"), strict=True):
        assert potable <= basic
    for fixed, internet in zip(_values(kpi_rows, "EC:ICT:ICT:2C"), _values(kpi_rows, "EC:ICT:ICT:1C"), strict=True):
        assert fixed <= internet
    levels = [_values(kpi_rows, "EN:EN:WS:4C", level) for level in ("primary", "secondary", "tertiary")]
    for primary, secondary, tertiary in zip(*levels, strict=True):
        assert tertiary <= secondary <= primary
    for year_index in range(len(YEARS)):
        modes = sum(_values(kpi_rows, "EC:I:T:4A", m)[year_index] for m in
                    ("private vehicle", "public transport", "walking", "cycling", "para transport"))
        waste = sum(_values(kpi_rows, "EN:EN:WA:1C", m)[year_index] for m in
                    ("landfill", "burnt", "incinerated", "open dump", "recycled", "other"))
        assert abs(modes - 100) <= 2 and abs(waste - 100) <= 2  # VM p32: shares add up to ~100 % (+/- 2 %)
    assert set(_values(kpi_rows, "EN:EN:WA:1C", "burnt")) == {0.0}
    catalogue = {i.id: i for i in load_catalogue()}
    yes_no = [v for i in ("EC:I:UP:2A", "SC:SH:SA:3A", "11.a.1", "11.b.1")
              for dp, _ in catalogue[i].computes() for v in _values(kpi_rows, i, dp)]
    assert yes_no and set(yes_no) <= {0.0, 1.0}


@pytest.mark.parametrize(("variable", "source_unit", "factor"), [
    ("city_gdp_lcu", "Mio. EUR", 1e6),                            # money: scaled currency code -> LCU
    ("heritage_expenditure_lcu", "Tsd. EUR", 1e3),
    ("mean_hourly_earnings_lcu", "EUR/h", 1.0),
    ("ppp_factor_lcu_per_usd", "EUR/PPP$", 1.0),
    ("electricity_interruption_duration_min", "h", 60.0),
    ("emergency_response_time_min", "h", 60.0),
    ("residential_thermal_energy_gj", "MWh", 3.6),
    ("public_building_energy_kwh", "MWh", 1000.0),
    ("income_gini_index", "0-100", 0.01),
    ("area_ha", "km2", 100.0),
    ("spatial_planning_aspect_yn", "1/0", 1.0),
])
def test_demo_units_are_converted_on_load(home: Home, variable: str, source_unit: str, factor: float) -> None:
    rows = _query(home, f"""SELECT value, source_value, source_unit FROM observations
                            WHERE city_id = 'demo-city' AND area_type = 'city' AND variable = '{variable}'
                              AND derivation IS NULL""")
    assert rows, variable
    for row in rows:
        assert row["source_unit"] == source_unit
        assert float(str(row["value"])) == pytest.approx(float(str(row["source_value"])) * factor, rel=1e-12)
