"""Issue #4: an unchanged source triggers no recomputation downstream, in `run_plain` / `citykpi run`
too: kpi_values and scores are kept when their inputs' fingerprint (kpis/state.py) is unchanged,
and recomputed when observations, the city's targets or the reporting years change."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.steps import refused_runs, run_plain
from sources.config import load_city_config
from warehouse.home import Home


def run_ids(home: Home) -> tuple[set[str], set[str]]:
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        values = {r[0] for r in con.execute("SELECT DISTINCT run_id FROM kpi_values").fetchall()}
        scores = {r[0] for r in con.execute("SELECT DISTINCT run_id FROM kpi_scores").fetchall()}
        return values, scores
    finally:
        con.close()


def kpi_rows(home: Home) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        return con.execute("SELECT * EXCLUDE (run_id, computed_at) FROM kpi_values ORDER BY ALL").fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_kpis_are_kept_while_their_inputs_are_unchanged(demo_config: Path, tmp_path: Path) -> None:
    city = tmp_path / "city"
    shutil.copytree(demo_config.parent, city)
    config = city / "city.yaml"
    home = Home(tmp_path / "home")

    run_plain(home, [load_city_config(config)], run_id="first")
    assert run_ids(home) == ({"first"}, {"first"})
    first_rows = kpi_rows(home)

    # Nothing changed: the load writes nothing and the indicator rows and scores stay those of run 1.
    second = run_plain(home, [load_city_config(config)], run_id="second")
    assert second.loads["demo-city"]["changed"] is False
    assert run_ids(home) == ({"first"}, {"first"})
    assert second.kpi_status == {"demo-city": {"computed": len(first_rows)}}

    # The city's own targets change: everything downstream of them is computed again.
    targets = config.with_name("city.targets.csv")
    default = Path(__file__).resolve().parent.parent / "kpis" / "targets" / "default.csv"
    targets.write_text("\n".join(default.read_text(encoding="utf-8").splitlines()[:2]) + "\n", encoding="utf-8")
    run_plain(home, [load_city_config(config)], run_id="third")
    assert run_ids(home) == ({"third"}, {"third"})

    # A corrected figure: a new snapshot, changed observations, recomputed indicators.
    statistics = city / "statistik_stadt.csv"
    text = statistics.read_text(encoding="latin-1")
    corrected = re.sub(r"(2023;Haushalte mit Internetzugang;)[\d.]+;", r"\g<1>12.345;", text, count=1)
    assert corrected != text
    statistics.write_text(corrected, encoding="latin-1")
    fourth = run_plain(home, [load_city_config(config)], run_id="fourth")
    assert fourth.loads["demo-city"]["observations_changed"] is True
    assert run_ids(home) == ({"fourth"}, {"fourth"})
    assert kpi_rows(home) != first_rows


def test_runs_are_recorded_with_their_outcome(demo_config: Path, tmp_path: Path) -> None:
    from canonical.errors import CitykpiError

    city = tmp_path / "city"
    shutil.copytree(demo_config.parent, city)
    home = Home(tmp_path / "home")
    run_plain(home, [load_city_config(city / "city.yaml")], run_id="good")
    (city / "statistik_stadt.csv").unlink()  # the fetch fails naming the file
    broken = load_city_config(city / "city.yaml", check_files=False)
    warehouse_before = hashlib.sha256(home.warehouse_path.read_bytes()).hexdigest()
    with pytest.raises(CitykpiError, match=r"statistik_stadt\.csv"):
        run_plain(home, [broken], run_id="bad")
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        runs = con.execute("SELECT run_id, status, finished_at >= started_at, configs FROM runs ORDER BY started_at"
                           ).fetchall()
    finally:
        con.close()
    # The refused run wrote nothing: it is recorded beside the warehouse, which stays as it was.
    assert [(r[0], r[1], r[2]) for r in runs] == [("good", "succeeded", True)]
    assert str(city / "city.yaml") in runs[0][3]
    refused = refused_runs(home)
    assert warehouse_before == hashlib.sha256(home.warehouse_path.read_bytes()).hexdigest()
    assert [(r["run_id"], r["status"]) for r in refused] == [("bad", "failed")]
    assert refused[0]["finished_at"] >= refused[0]["started_at"] and "statistik_stadt.csv" in refused[0]["error"]


def test_fingerprint_sees_values_swapped_between_years(home_copy: Path) -> None:
    """A corrected source that swaps two years' figures of one variable leaves every column's multiset of
    values as it was; the fingerprint hashes whole rows, so it still changes (the KPIs are recomputed)."""
    from kpis.state import inputs_fingerprint

    home = Home(home_copy)
    with home.warehouse() as con:
        (variable, first, second), = con.execute("""
            SELECT variable, min(year), max(year) FROM observations
            WHERE city_id = 'demo-city' AND area_type = 'city' AND data_point IS NULL
            GROUP BY variable HAVING count(DISTINCT value) = count(*) AND count(*) >= 2 ORDER BY variable LIMIT 1""",
                                                 ).fetchall()
        where = "city_id = 'demo-city' AND area_type = 'city' AND data_point IS NULL AND variable = ?"
        before = inputs_fingerprint(con, "demo-city", (2022, 2023, 2024), None)
        values_before = sorted(r[0] for r in con.execute(f"SELECT value FROM observations WHERE {where}",
                                                         [variable]).fetchall())
        con.execute(f"""UPDATE observations SET value = CASE year
                            WHEN {first} THEN (SELECT value FROM observations WHERE {where} AND year = {second})
                            ELSE (SELECT value FROM observations WHERE {where} AND year = {first}) END
                        WHERE {where} AND year IN ({first}, {second})""", [variable, variable, variable])
        values_after = sorted(r[0] for r in con.execute(f"SELECT value FROM observations WHERE {where}",
                                                        [variable]).fetchall())
        assert values_after == values_before  # the same values, in other rows
        assert inputs_fingerprint(con, "demo-city", (2022, 2023, 2024), None) != before


def _fingerprint_before_batching(con: duckdb.DuckDBPyConnection, city_id: str, years: list[int],
                                 targets: Path | None) -> str:
    """The fingerprint as it was computed one city at a time (3 statements per city): kpi_state rows stored
    by earlier versions hold it, so the batched form must give the same text or every city is recomputed."""
    import json

    from canonical.code_digest import package_digest

    observations = con.execute("""SELECT count(*), coalesce(sum(hash(*COLUMNS(*))), 0) FROM (
                                      SELECT * EXCLUDE (city_id) FROM observations WHERE city_id = ?)""",
                               [city_id]).fetchall()
    withheld = con.execute("""SELECT count(*), coalesce(sum(hash(*COLUMNS(*))), 0) FROM (
                                  SELECT * EXCLUDE (city_id) FROM core_withheld WHERE city_id = ?)""",
                           [city_id]).fetchall()
    reports = con.execute("SELECT coalesce(sum(hash(source_id, load_report)), 0) FROM core_source_state "
                          "WHERE city_id = ?", [city_id]).fetchall()
    parts = {"observations": [str(v) for v in observations[0]], "load_reports": str(reports[0][0]),
             "package": package_digest("kpis"), "withheld": [str(v) for v in withheld[0]],
             "targets": hashlib.sha256(targets.read_bytes()).hexdigest()
             if targets is not None and targets.is_file() else None,
             "years": sorted(years)}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def test_batched_fingerprints_equal_each_city_alone_and_the_stored_form(home_copy: Path, tmp_path: Path) -> None:
    """kpis.state.inputs_fingerprints (one statement per table for all cities) gives each city the text the
    per-city statements gave, for a city with rows, a twin with other rows and a city with none at all."""
    from kpis.state import current_runs, inputs_fingerprint, inputs_fingerprints

    targets = tmp_path / "targets.csv"
    targets.write_text("indicator_id,target\nX,1\n", encoding="utf-8")
    home = Home(home_copy)
    with home.warehouse() as con:
        for table in ("observations", "core_withheld", "core_source_state"):
            con.execute(f"INSERT INTO {table} SELECT * REPLACE ('twin' AS city_id) FROM {table} "
                        "WHERE city_id = 'demo-city'")
        con.execute("UPDATE observations SET value = value + 1 WHERE city_id = 'twin' AND value IS NOT NULL")
        cities = [("demo-city", [2022, 2023, 2024], None), ("twin", [2023, 2024], targets),
                  ("nowhere", [2024], tmp_path / "no-such-targets.csv")]
        batched = inputs_fingerprints(con, cities)
        assert len(set(batched.values())) == 3
        for city_id, years, city_targets in cities:
            assert batched[city_id] == _fingerprint_before_batching(con, city_id, years, city_targets)
            assert batched[city_id] == inputs_fingerprint(con, city_id, years, city_targets)
        stored = dict(con.execute("SELECT city_id, inputs_sha256 FROM kpi_state WHERE stage = 'kpi_values'"
                                  ).fetchall())
        assert stored["demo-city"] == batched["demo-city"]  # the demo run's stored state is still current
        run = con.execute("SELECT run_id FROM kpi_state WHERE city_id = 'demo-city' AND stage = 'kpi_values'"
                          ).fetchall()[0][0]
        assert current_runs(con, "kpi_values", batched) == {"demo-city": run}
