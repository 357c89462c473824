"""The U4SSC verifier's consistency checks (VM p32) fail on inconsistent inputs, by hand (issue #15)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from quality import SuiteContext
from quality.measure import measure_suite
from quality.run import run_stage
from quality.suites import observations_suite
from warehouse.db import connect

CTX = SuiteContext("c", "DE", (2022, 2023))
CHECKS = ("mode_share_sum_at_most_100", "mode_share_sum_near_100", "waste_treatment_share_sum_at_most_100",
          "waste_treatment_share_sum_near_100", "wastewater_treatment_levels_nested")


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = connect(tmp_path / "warehouse.duckdb")
    yield connection
    connection.close()


def add(con: duckdb.DuckDBPyConnection, year: int, variable: str, data_point: str | None, value: float,
        unit: str) -> None:
    con.execute("""INSERT INTO observations (city_id, year, variable, data_point, area_type, area_id, value, unit,
                   source_id, source_record) VALUES ('c', ?, ?, ?, 'city', 'c', ?, ?, 's', 'stats.csv')""",
                [year, variable, data_point, value, unit])


def modes(con: duckdb.DuckDBPyConnection, year: int, shares: dict[str, float]) -> None:
    add(con, year, "commuters_total", None, 1000, "person")
    for mode, share in shares.items():
        add(con, year, "commuters_by_main_mode", mode, share * 10, "person")


def measured(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int | None, int]]:
    return {m.check.name: (m.failing, m.evaluated) for m in measure_suite(con, CTX, observations_suite())
            if m.check.name in CHECKS}


def test_consistent_inputs_pass_and_absent_inputs_are_skipped(con: duckdb.DuckDBPyConnection) -> None:
    # 2022: 40 + 30 + 15 + 13 + 1 = 99 % (within +/- 2); wastewater 90 >= 60 >= 60 (equal levels are fine).
    modes(con, 2022, {"private vehicle": 40, "public transport": 30, "walking": 15, "cycling": 13,
                      "para transport": 1})
    for level, value in (("primary", 90.0), ("secondary", 60.0), ("tertiary", 60.0)):
        add(con, 2022, "wastewater_treated_m3", level, value, "m3")
    result = measured(con)
    assert result["mode_share_sum_at_most_100"] == (0, 1)
    assert result["mode_share_sum_near_100"] == (0, 1)
    assert result["wastewater_treatment_levels_nested"] == (0, 1)
    assert result["waste_treatment_share_sum_at_most_100"] == (None, 0)  # no waste data: skipped


def test_inconsistent_inputs_fail_and_block_their_kpis(con: duckdb.DuckDBPyConnection) -> None:
    # 2022 modes: 50 + 30 + 15 + 8 = 103 % > 102 % (para transport absent): blocking.
    modes(con, 2022, {"private vehicle": 50, "public transport": 30, "walking": 15, "cycling": 8})
    # 2023 modes: all five, 40 + 30 + 15 + 10 + 2 = 97 % < 98 %: a warning only.
    modes(con, 2023, {"private vehicle": 40, "public transport": 30, "walking": 15, "cycling": 10,
                      "para transport": 2})
    # 2022 waste: 60 + 45 t of 100 t = 105 %: blocking.
    add(con, 2022, "solid_waste_total_t", None, 100, "t")
    add(con, 2022, "solid_waste_treated_t", "landfill", 60, "t")
    add(con, 2022, "solid_waste_treated_t", "recycled", 45, "t")
    # 2022 wastewater: secondary 70 > primary 65: not nested.
    add(con, 2022, "wastewater_treated_m3", "primary", 65, "m3")
    add(con, 2022, "wastewater_treated_m3", "secondary", 70, "m3")
    result = measured(con)
    assert result["mode_share_sum_at_most_100"] == (1, 2)
    assert result["mode_share_sum_near_100"] == (1, 1)
    assert result["waste_treatment_share_sum_at_most_100"] == (1, 1)
    assert result["waste_treatment_share_sum_near_100"] == (None, 0)  # not every treatment reported
    assert result["wastewater_treatment_levels_nested"] == (1, 1)

    statuses = {r.check.name: r.status for r in run_stage(con, CTX, "r1", "core") if r.check.name in CHECKS}
    assert statuses == {"mode_share_sum_at_most_100": "failed", "mode_share_sum_near_100": "warned",
                        "waste_treatment_share_sum_at_most_100": "failed",
                        "waste_treatment_share_sum_near_100": "skipped",
                        "wastewater_treatment_levels_nested": "failed"}
    marked = con.execute("""SELECT year, variable, data_point, failed_check FROM observations
                            WHERE failed_check IS NOT NULL ORDER BY ALL""").fetchall()
    assert [(y, v, dp) for y, v, dp, _ in marked] == [
        (2022, "commuters_by_main_mode", "cycling"), (2022, "commuters_by_main_mode", "private vehicle"),
        (2022, "commuters_by_main_mode", "public transport"), (2022, "commuters_by_main_mode", "walking"),
        (2022, "solid_waste_treated_t", "landfill"), (2022, "solid_waste_treated_t", "recycled"),
        (2022, "wastewater_treated_m3", "primary"), (2022, "wastewater_treated_m3", "secondary")]
    assert "the parts add up to 103.0 % of commuters_total 2022" in marked[0][3]
    assert "secondary 70.0" in marked[-1][3]
