"""Many demo cities: distinct ids and values (`citykpi demo --cities N`), and the many-city benchmark's smoke run."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cities import load_configs
from pipelines.cli import main
from sources.demo.generator import generate_demo_cities

ROOT = Path(__file__).resolve().parent.parent


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_demo_cities_have_distinct_ids_names_and_values(tmp_path: Path) -> None:
    paths = generate_demo_cities(tmp_path, count=3, scale=0.05, seed=11)
    assert [p.parent.name for p in paths] == ["demo-city-0001", "demo-city-0002", "demo-city-0003"]
    configs = load_configs([tmp_path])  # the folder `citykpi run <folder>` reads
    assert sorted(c.city_id for c in configs) == ["demo-city-0001", "demo-city-0002", "demo-city-0003"]
    assert len({c.config.city.name for c in configs}) == 3
    # Different seeds, different numbers: every data file differs between every pair of cities.
    for name in ("statistik_stadt.csv", "versorgung.csv", "luftmessungen_stuendlich.parquet", "bezirke.geojson"):
        assert len({_digest(p.parent / name) for p in paths}) == 3, name
    # The same seed gives the same city again (the first city of a run seeded 11 is the city of seed 11).
    again = generate_demo_cities(tmp_path / "again", count=1, scale=0.05, seed=11)[0]
    assert _digest(again.parent / "statistik_stadt.csv") == _digest(paths[0].parent / "statistik_stadt.csv")


def test_generate_demo_cities_keeps_complete_cities(tmp_path: Path) -> None:
    first = generate_demo_cities(tmp_path, count=1, scale=0.05, seed=3)[0]
    stamp = first.stat().st_mtime_ns
    generate_demo_cities(tmp_path, count=2, scale=0.05, seed=3)
    assert first.stat().st_mtime_ns == stamp  # not regenerated
    assert (tmp_path / "demo-city-0002" / "city.yaml").is_file()


def test_demo_city_id_must_be_a_slug(tmp_path: Path) -> None:
    from sources.demo.generator import generate_demo_city

    with pytest.raises(ValueError, match="slug"):
        generate_demo_city(tmp_path, scale=0.05, city_id="Bad City")


def test_cli_demo_cities_writes_a_folder_run_accepts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cities"
    assert main(["--home", str(tmp_path / "home"), "demo", "--cities", "2", "--scale", "0.05",
                 "--seed", "5", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert sorted(c.city_id for c in load_configs([out])) == ["demo-city-0001", "demo-city-0002"]


def test_cli_run_refuses_cities_with_a_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(tmp_path), "run", str(tmp_path / "x.yaml"), "--cities", "2"]) == 2
    assert "--cities" in capsys.readouterr().err


def test_cli_rejects_zero_cities(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--cities", "0"])
    assert exc.value.code == 2
    assert "at least 1" in capsys.readouterr().err


@pytest.mark.slow
def test_cities_benchmark_smoke(tmp_path: Path) -> None:
    """Two cities at a tiny scale, with the change run: the results name every figure (no timing assertions)."""
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.cities", "--counts", "1,2", "--scale", "0.02", "--out-dir", str(out),
         "--workdir", str(tmp_path / "work"), "--keep"],
        cwd=ROOT, capture_output=True, text=True, timeout=1500, check=False)  # hang guard only
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "cities-sf0.02-counts-1-2.json").read_text(encoding="utf-8"))
    assert [r["cities"] for r in result["runs"]] == [1, 2]
    for run in result["runs"]:
        assert run["wall_s"] > 0 and run["cpu_s"] > 0 and run["peak_rss_mb"] > 0
        assert run["release_mb"] > 0 and run["release_id"]
    assert result["marginal"][0]["from"] == 1 and result["marginal"][0]["to"] == 2
    change = result["change"]
    assert change["cities"] == 2 and change["release_id"] != result["runs"][-1]["release_id"]
    assert set(result["goals"]) == {"wall_s_1000_cities", "marginal_s_per_city", "peak_rss_mb", "changed_city_s"}
    assert result["goals"]["wall_s_1000_cities"]["met"] is None  # not measured at 2 cities, and said so
    markdown = (out / "cities-sf0.02-counts-1-2.md").read_text(encoding="utf-8")
    assert markdown.startswith("# Many-city benchmark, scale 0.02")
    # Two distinct cities in one release, with different values (different seeds).
    import duckdb

    release = tmp_path / "work" / "home-2" / "releases" / "latest"
    parquet = next(release.rglob("kpi_values*.parquet"))
    con = duckdb.connect()
    rows = con.execute(
        "SELECT city_id, count(*), sum(value) FROM read_parquet(?) WHERE value IS NOT NULL GROUP BY city_id "
        "ORDER BY city_id", [str(parquet)]).fetchall()
    assert [r[0] for r in rows] == ["demo-city-0001", "demo-city-0002"]
    assert rows[0][2] != rows[1][2]


def test_cities_benchmark_results_named_by_their_counts() -> None:
    """A quick run (1, 10, 100) must not overwrite the results of the 1,000-city run."""
    from benchmarks.cities import result_stem

    assert result_stem(0.1, [100, 1, 10]) == "cities-sf0.1-counts-1-10-100"
    assert result_stem(0.1, [1, 10, 100, 1000]) == "cities-sf0.1-counts-1-10-100-1000"
