"""Quality checks on real DuckDB warehouses: the clean demo city passes every blocking check; a
deliberately corrupted copy makes exactly the expected checks fail, with the expected counts, and
exactly the dependent KPIs become `failed_check` (plain steps, no Dagster: see test_quality_cli.py).

Corruptions: in the source files (an out-of-range percentage input, a year missing from a series),
and, where the loader would refuse them, directly in the warehouse (a duplicate key, a NULL in a
key, a variable in the wrong unit, a negative hourly reading).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from pipelines import steps
from quality import CheckResult
from quality.store import QualityGateError
from sources.config import LoadedConfig, load_city_config
from warehouse.home import Home


@dataclass
class Checked:
    home: Home
    loaded: LoadedConfig
    core: list[CheckResult]
    kpis: list[CheckResult]


def _run(home: Home, loaded: LoadedConfig, run_id: str, *, load: bool = True) -> Checked:
    if load:
        steps.load_city(home, loaded, steps.fetch_city(home, loaded))
    core = steps.check_city(home, loaded, run_id, "core")
    steps.compute_city(home, loaded, run_id)
    kpis = steps.check_city(home, loaded, run_id, "kpis")
    return Checked(home, loaded, core, kpis)


def _by_status(results: list[CheckResult], status: str) -> dict[str, int | None]:
    return {f"{r.check.table}.{r.check.name}": r.failing for r in results if r.status == status}


def _kpis(home: Home, where: str = "status = 'failed_check'") -> dict[tuple[str, str | None, int], tuple[str, str]]:
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        rows = con.execute(f"SELECT indicator_id, data_point, year, status, status_reason FROM kpi_values "
                           f"WHERE {where}").fetchall()
    finally:
        con.close()
    return {(i, dp, y): (s, r) for i, dp, y, s, r in rows}


@pytest.fixture(scope="module")
def clean(demo_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Checked:
    home = Home.resolve(str(tmp_path_factory.mktemp("quality") / "clean"))
    home.ensure()
    return _run(home, load_city_config(demo_config), "clean-run")


def test_clean_demo_passes_every_blocking_check(clean: Checked) -> None:
    assert _by_status(clean.core + clean.kpis, "failed") == {}
    assert all(r.expectation is not None for r in clean.core + clean.kpis if r.status != "skipped")
    # A rule with nothing to judge is skipped (no GX verdict, a note saying why), never passed.
    assert all(r.expectation is None and r.note for r in clean.core + clean.kpis if r.status == "skipped")
    # Known, legitimate warnings: election figures exist for 2019 and 2024 only (2 variables x 2 years).
    assert _by_status(clean.core, "warned")["observations.time_series_complete"] == 4
    assert _kpis(clean.home) == {}
    con = duckdb.connect(str(clean.home.warehouse_path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM observations WHERE failed_check IS NOT NULL").fetchall() == [(0,)]
        stored = con.execute("SELECT count(*), count(DISTINCT run_id) FROM quality_results").fetchall()
    finally:
        con.close()
    assert stored == [(len(clean.core) + len(clean.kpis), 1)]


@pytest.fixture(scope="module")
def corrupted(clean: Checked, demo_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Checked]:
    base = tmp_path_factory.mktemp("corrupted")
    city = base / "city"
    shutil.copytree(demo_config.parent, city)
    csv = city / "statistik_stadt.csv"
    text = csv.read_text(encoding="latin-1")
    # Out-of-range percentage input: more households online (270,000) than households (260,906).
    text = text.replace("2023;Haushalte mit Internetzugang;244.730;", "2023;Haushalte mit Internetzugang;270.000;")
    # A year missing from a series: no physicians for 2023.
    text = text.replace("2023;Ärzte;2.370;Personen\n", "")
    csv.write_text(text, encoding="latin-1")
    home = Home.resolve(str(base / "home"))
    shutil.copytree(clean.home.root, home.root)
    loaded = load_city_config(city / "city.yaml")
    steps.load_city(home, loaded, steps.fetch_city(home, loaded))

    con = duckdb.connect(str(home.warehouse_path))
    try:
        # The loader and the schema refuse these, so they go straight into the copy's warehouse.
        con.execute("DROP INDEX observations_key")
        con.execute("ALTER TABLE observations ALTER COLUMN area_id DROP NOT NULL")
        con.execute("""INSERT INTO observations SELECT * FROM observations
                       WHERE variable = 'physicians' AND year = 2022 AND area_type = 'city'""")   # duplicate key
        con.execute("""INSERT INTO observations SELECT * REPLACE (NULL AS area_id) FROM observations
                       WHERE variable = 'violent_crimes' AND year = 2023 AND area_type = 'city'""")  # NULL in key
        con.execute("""UPDATE observations SET unit = 'MWh'
                       WHERE variable = 'electricity_consumption_kwh' AND year = 2024""")        # wrong unit
        con.execute("""UPDATE core_readings SET value = -5 WHERE rowid = (
                       SELECT min(rowid) FROM core_readings WHERE data_point = 'PM10'
                       AND observed_at >= TIMESTAMPTZ '2023-03-01 00:00:00+00')""")              # negative reading
    finally:
        con.close()
    yield _run(home, loaded, "corrupted-run", load=False)


EXPECTED_FAILURES = {
    "observations.schema": 2,                       # the dropped index and the dropped NOT NULL
    "observations.not_null": 1,
    "observations.unique_key": 2,                   # the two rows sharing one key (GX counts both)
    "observations.canonical_unit": 1,
    "observations.households_with_internet_le_households_total": 1,
    "core_readings.non_negative": 1,
}


def test_corrupted_copy_fails_exactly_the_expected_checks(corrupted: Checked, clean: Checked) -> None:
    assert _by_status(corrupted.core, "failed") == EXPECTED_FAILURES
    assert _by_status(corrupted.kpis, "failed") == {}
    warned = _by_status(corrupted.core, "warned")
    assert warned["observations.time_series_complete"] == 4 + 1     # + physicians 2023
    assert {k: v for k, v in warned.items() if k != "observations.time_series_complete"} == \
        {k: v for k, v in _by_status(clean.core, "warned").items() if k != "observations.time_series_complete"}
    by_key = {f"{r.check.table}.{r.check.name}": r for r in corrupted.core}
    share = by_key["observations.households_with_internet_le_households_total"]
    assert share.sample == [{"year": 2023, "area_type": "city", "area_id": "demo-city", "data_point": None,
                             "households_with_internet": 270000.0, "households_total": 260906.0,
                             "source_record": "statistik_stadt.csv row 6 field 'Wert'"}]
    assert share.expectation is not None and share.expectation["success"] is False
    assert share.expectation["result"]["observed_value"] == 1
    assert by_key["observations.canonical_unit"].sample[0]["detail"] == \
        "unit MWh is not the canonical kWh"
    assert by_key["core_readings.non_negative"].sample[0]["value"] == -5


def test_dependent_kpis_become_failed_check_with_the_reason(corrupted: Checked) -> None:
    failed = _kpis(corrupted.home)
    assert set(failed) == {
        ("EC:ICT:ICT:1C", None, 2023),        # households_with_internet > households_total
        ("SC:EH:H:3C", None, 2022),           # duplicate physicians row
        ("SC:SH:SA:8C", None, 2023),          # violent_crimes row with a NULL area_id
        ("EN:E:E:2C", None, 2024),            # electricity consumption in the wrong unit
        ("EN:EN:AQ:1C", "PM10", 2023),        # city annual mean from a station with a negative reading
        ("11.6.2", "PM10", 2023),             # district means from the same station
    }
    reasons = {key: reason for key, (_, reason) in failed.items()}
    assert reasons[("EC:ICT:ICT:1C", None, 2023)] == (
        "input failed a blocking check: households_with_internet (observations.households_with_internet_le_"
        "households_total: households_with_internet 270,000 > households_total 260,906)")
    assert "observations.unique_key" in reasons[("SC:EH:H:3C", None, 2022)]
    assert "observations.not_null" in reasons[("SC:SH:SA:8C", None, 2023)]
    assert "observations.canonical_unit" in reasons[("EN:E:E:2C", None, 2024)]
    assert "core_readings.non_negative" in reasons[("EN:EN:AQ:1C", "PM10", 2023)]
    # The missing year makes its KPI missing (not failed): the completeness check only warns.
    assert _kpis(corrupted.home, "indicator_id = 'SC:EH:H:3C' AND year = 2023")[("SC:EH:H:3C", None, 2023)][0] \
        == "missing"


def test_release_lists_failed_rows_and_strict_refuses(corrupted: Checked) -> None:
    home = corrupted.home
    before = sorted(p.name for p in home.releases.iterdir()) if home.releases.exists() else []
    with pytest.raises(QualityGateError) as refused:
        steps.publish(home, [corrupted.loaded], "corrupted-run", strict=True)
    assert "6 blocking quality check(s) failed" in str(refused.value)
    assert "demo-city/observations.households_with_internet_le_households_total (1 failing)" in str(refused.value)
    assert (sorted(p.name for p in home.releases.iterdir()) if home.releases.exists() else []) == before

    release = steps.publish(home, [corrupted.loaded], "corrupted-run")
    quality = release.manifest["quality"]
    assert (quality["failed"], quality["checks_run"]) == (6, quality["passed"] + 6 + quality["warned"])
    assert {(c["table"], c["check"], c["failing_count"]) for c in quality["failed_checks"]} == {
        tuple([*key.split("."), n]) for key, n in EXPECTED_FAILURES.items()}
    import polars as pl

    rows = pl.read_parquet(release.path / "kpi_values.parquet").filter(pl.col("status") == "failed_check")
    assert rows.height == 6


def test_out_of_range_kpi_value_is_marked_failed_check(clean: Checked, tmp_path: Path) -> None:
    home = Home.resolve(str(tmp_path / "home"))
    shutil.copytree(clean.home.root, home.root)
    con = duckdb.connect(str(home.warehouse_path))
    try:
        con.execute("UPDATE kpi_values SET value = 120 WHERE indicator_id = 'EC:I:WS:1C' AND year = 2022")
    finally:
        con.close()
    results = steps.check_city(home, clean.loaded, "kpi-corruption", "kpis")
    assert _by_status(results, "failed") == {"kpi_values.percentage_range": 1}
    status, reason = _kpis(home)[("EC:I:WS:1C", None, 2022)]
    assert status == "failed_check"
    assert reason == "failed blocking check kpi_values.percentage_range: value 120 % is outside 0-100 %"
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        stored = con.execute("""SELECT status, failing_count, sample, expectation FROM quality_results
                                WHERE run_id = 'kpi-corruption' AND check_name = 'percentage_range'""").fetchall()
    finally:
        con.close()
    status, failing, sample, expectation = stored[0]
    assert (status, failing) == ("failed", 1)
    assert json.loads(sample)[0]["indicator_id"] == "EC:I:WS:1C"
    gx_result = json.loads(expectation)   # GX's own expectation on the kpi_values rows, naming the failing row
    assert gx_result["expectation_config"]["type"] == "expect_column_values_to_be_between"
    assert gx_result["expectation_config"]["kwargs"]["column"] == "value"
    assert gx_result["result"]["partial_unexpected_index_list"][0]["indicator_id"] == "EC:I:WS:1C"


class _Html(HTMLParser):
    """Text, links and every resource a page would fetch (script/img src, stylesheet href)."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.links: list[str] = []
        self.fetches: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a" and found.get("href"):
            self.links.append(str(found["href"]))
        for name in ("src", "data", "poster") if tag != "a" else ():
            if found.get(name):
                self.fetches.append(str(found[name]))
        if tag == "link" and found.get("href"):
            self.fetches.append(str(found["href"]))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())


def _parsed(path: Path) -> _Html:
    parser = _Html()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_data_docs_open_offline_and_show_the_failing_rows(corrupted: Checked) -> None:
    """Issue #18's acceptance: GX Data Docs open offline from the release; a corrupted input shows up
    there with the failing rows."""
    release = steps.publish(corrupted.home, [corrupted.loaded], "corrupted-run")
    docs = release.files("quality_docs")
    index = release.path / "quality_docs" / "index.html"
    assert index in docs and all(p.exists() for p in docs)
    pages = {p.relative_to(release.path).as_posix() for p in docs}
    assert "quality_docs/observations.html" in pages and "quality_docs/kpi_scores.html" in pages
    front = _parsed(index)
    assert {f"quality_docs/{link}" for link in front.links} == pages - {"quality_docs/index.html"}
    assert corrupted.loaded.config.city.name in " ".join(front.text)
    for page in docs:  # offline: nothing fetched from elsewhere (GX's template loads Bootstrap etc. from CDNs)
        parsed = _parsed(page)
        assert not [u for u in parsed.fetches if re.match(r"(?i)(https?:)?//", u)], page
        assert all((page.parent / u).exists() for u in parsed.fetches), page
    observations = " ".join(_parsed(release.path / "quality_docs/observations.html").text)
    # GX's own rendering of its own expectations, with the failing rows it found.
    assert "Status: Failed" in observations.replace("Status : Failed", "Status: Failed")
    assert "must be unique together" in observations and "must never be null" in observations
    unique = observations[observations.index("must be unique together"):]
    assert "physicians" in unique[:600] and "2022" in unique[:600]    # the duplicated key, named
    nulls = observations[observations.index("area_id Status"):]       # the column's section comes first
    assert "must never be null" in nulls[:200] and "violent_crimes" in nulls[:600] and "2023" in nulls[:600]
    # A check measured in DuckDB: its failing count judged by GX, DuckDB's sample as GX's note.
    assert "unit MWh is not the canonical kWh" in observations.replace("\\", "")
    report = (release.path / "report.html").read_text(encoding="utf-8")
    assert 'href="quality_docs/index.html"' in report


def test_batched_measurement_equals_each_city_alone(corrupted: Checked, clean: Checked, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """One statement per check for many cities (quality.measure.measure_suites, the query checks correlated
    with the relation of cities) finds exactly what each city's own statements find (the city a constant):
    the corrupted city beside a clean twin with other reporting years."""
    from quality import QualitySettings, SuiteContext, measure
    from quality.measure import measure_suite, measure_suites
    from quality.run import STAGES, stage_suites

    path = tmp_path / "two.duckdb"
    shutil.copyfile(corrupted.home.warehouse_path, path)
    con = duckdb.connect(str(path))
    try:
        con.execute(f"ATTACH '{clean.home.warehouse_path}' AS clean (READ_ONLY)")
        tables = [t for (t,) in con.execute(
            "SELECT DISTINCT table_name FROM information_schema.columns WHERE table_catalog = 'clean' "
            "AND column_name = 'city_id' AND table_name IN (SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = 'clean' AND table_type = 'BASE TABLE')").fetchall()]
        for table in tables:
            try:
                con.execute(f'INSERT INTO main."{table}" SELECT * REPLACE (\'twin\' AS city_id) '
                            f'FROM clean.main."{table}"')
            except duckdb.ConstraintException:
                continue  # keyed by something other than the city (snapshots): the twin goes without
        con.execute("DETACH clean")
        city = corrupted.loaded.config.city

        def facts(measured: list) -> list[tuple[object, ...]]:  # type: ignore[type-arg]
            return [(m.check.key, m.failing, m.evaluated, m.note, m.sample, m.affected) for m in measured]

        failing = cut = 0
        # Samples of one row: the batched sample statement must pick the rows each city's own picks.
        for settings in (QualitySettings(), QualitySettings(sample_size=1)):
            contexts = [SuiteContext(city.id, city.country, tuple(city.reporting_years), settings),
                        SuiteContext("twin", city.country, tuple(city.reporting_years[1:]), settings)]
            for stage in STAGES:
                suites = stage_suites(stage)
                with monkeypatch.context() as patched:
                    patched.setattr(measure, "PER_CITY_QUERIES_MAX", 0)  # two cities: correlated, as for many
                    together = measure_suites(con, contexts, suites)
                for ctx in contexts:
                    alone = [m for suite in suites for m in measure_suite(con, ctx, suite)]
                    assert facts(together[ctx.city_id]) == facts(alone), (stage, ctx.city_id)
                failing += sum(1 for m in together[city.id] if m.failing)
                cut += sum(1 for m in together[city.id] if m.failing and m.failing > len(m.sample) >= 1)
        assert failing >= 8  # the corrupted city's failures were measured in the batch, not only passes
        assert cut >= 1  # and some of them had more failing rows than the sample shows
    finally:
        con.close()
