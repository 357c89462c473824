"""Progress and summary lines over many cities: one line per stage and each notice once with its cities,
instead of one line per city and source (issue #16: 1,000 cities printed about 20,000 lines)."""

from __future__ import annotations

from pathlib import Path

import pytest

import pipelines.progress as progress
import pipelines.summary as summary
from pipelines.cli import main
from pipelines.progress import StageLines
from sources.demo.generator import generate_demo_cities
from warehouse.home import Home


def _lines(cities: int, every_city: bool = False) -> tuple[StageLines, list[str]]:
    said: list[str] = []
    return StageLines(said.append, cities, every_city), said


def test_few_cities_keep_their_own_lines() -> None:
    lines, said = _lines(2)
    lines.city("a: 10 observations")
    lines.notice("a", "stats: codes not in the config, ignored: X (6)")
    lines.notice("b", "stats: codes not in the config, ignored: X (6)")
    lines.total("core: 2 cities, 20 observations")
    lines.close()
    assert said == ["a: 10 observations", "a/stats: codes not in the config, ignored: X (6)",
                    "b/stats: codes not in the config, ignored: X (6)"]


def test_many_cities_give_totals_and_each_notice_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "PER_CITY_MAX", 2)
    lines, said = _lines(3)
    for city in ("a", "b", "c"):
        lines.city(f"{city}: 10 observations")
        lines.notice(city, "stats: codes not in the config, ignored: X (6)")
    lines.notice("c", "[2019] not among the reporting years", ": ")
    lines.total("core: 3 cities, 30 observations")
    lines.close()
    assert said == ["core: 3 cities, 30 observations",
                    "stats: codes not in the config, ignored: X (6) [3 cities: a, b, c]",
                    "c: [2019] not among the reporting years"]  # one city: said as city by city


def test_every_city_keeps_each_line_over_many_cities(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "PER_CITY_MAX", 1)
    lines, said = _lines(3, every_city=True)
    lines.city("a: 10 observations")
    lines.total("core: 3 cities, 30 observations")
    lines.close()
    assert said == ["a: 10 observations"]


def test_many_cities_list_only_the_first_of_a_shared_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "PER_CITY_MAX", 1)
    lines, said = _lines(1000)
    for i in range(1000):
        lines.notice(f"city-{i:04d}", "same words")
    lines.close()
    assert said == ["same words [1,000 cities: " + ", ".join(f"city-{i:04d}" for i in range(10)) + ", and 990 more]"]


def test_a_long_stage_says_how_far_it_got_at_most_every_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "PER_CITY_MAX", 2)
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    said: list[str] = []
    lines = StageLines(said.append, 1000, name="core")
    lines.done(16)  # no time has passed since the stage started
    clock[0] += progress.HEARTBEAT_S
    lines.done(32)
    clock[0] += 1.0
    lines.done(48)  # too soon after the last line
    clock[0] += progress.HEARTBEAT_S
    lines.done(1000)  # the stage's end: its totals follow
    clock[0] += progress.HEARTBEAT_S
    lines.done(64)
    assert said == ["core: 32 of 1,000 cities", "core: 64 of 1,000 cities"]
    few: list[str] = []
    StageLines(few.append, 2, name="core").done(1)  # a few cities: each has its own lines anyway
    assert few == []


def _warned(city: str, failing: int, check: str = "series_complete") -> dict[str, object]:
    return {"city_id": city, "table": "observations", "check": check, "failing_count": failing,
            "description": "every reporting year present", "run_id": "r1"}


def test_summary_groups_a_check_that_warned_in_many_cities(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(summary, "CITIES_SHOWN", 2)
    quality = {"passed": 10, "warned": 4, "failed": 0, "skipped": 0,
               "warned_checks": [_warned("a", 4), _warned("b", 1), _warned("c", 2), _warned("c", 7, "other")]}
    lines = summary.quality_lines(Home(tmp_path), quality)
    assert lines[1:] == [
        "  warned observations in 3 cities: expected every reporting year present; 7 failing",
        "    cities: a, b, and 1 more",
        "  warned c observations: expected every reporting year present; 7 failing",  # one city: as before
        "  (every failing row of every city: quality_results in the warehouse; docs/quality.md explains each check)"]


def test_summary_lists_each_city_up_to_the_limit(tmp_path: Path) -> None:
    quality = {"passed": 10, "warned": 2, "failed": 0, "skipped": 0,
               "warned_checks": [_warned("a", 4), _warned("b", 1)]}
    lines = summary.quality_lines(Home(tmp_path), quality)
    assert lines[1:3] == ["  warned a observations: expected every reporting year present; 4 failing",
                          "  warned b observations: expected every reporting year present; 1 failing"]


def test_run_over_many_cities_prints_a_line_per_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Two demo cities with the limit at one: the real stages' totals, then `--every-city` for the lines."""
    monkeypatch.setattr(progress, "PER_CITY_MAX", 1)
    monkeypatch.setattr(progress, "HEARTBEAT_S", 0.0)
    monkeypatch.setattr(summary, "CITIES_SHOWN", 1)
    cities = tmp_path / "cities"
    generate_demo_cities(cities, count=2, scale=0.02, seed=21)
    home = str(tmp_path / "home")
    assert main(["--home", home, "run", str(cities)]) == 0
    err = capsys.readouterr().err
    assert "demo-city-0001/statistik-stadt: snapshot" not in err
    assert "  core: 1 of 2 cities\n" in err  # the load's heartbeat (every city, the heartbeat at 0 s)
    assert "  raw: 2 cities, 18 source snapshots (18 new, 0 unchanged; " in err
    assert "  core: 2 cities, " in err and "(changed in 2 cities, unchanged in 0)" in err
    assert "  quality core: 2 cities, " in err and "  quality kpis: 2 cities, " in err
    assert "  kpis: 2 cities, indicator rows computed " in err
    assert "  scores: 2 cities, scored " in err
    # The demo's load notice, shared by both cities, said once with them.
    assert "statistik-stadt: codes not in the config, ignored: Einwohnerdichte (6) [2 cities: demo-city-0001, " \
           "demo-city-0002]" in err

    assert main(["--home", home, "run", "--every-city", "--force", str(cities)]) == 0
    err = capsys.readouterr().err
    assert "  demo-city-0002/statistik-stadt: snapshot " in err and "(unchanged, " in err
    assert "  demo-city-0001: " in err and " observations (unchanged)" in err
    assert "  demo-city-0002: quality core: " in err
    assert "  raw: " not in err
