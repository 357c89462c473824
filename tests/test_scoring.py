"""U4SSC scoring: share of target, points by band (exact boundaries), lower-is-better KPIs,
exclusions, and roll-ups checked against the published worked example (Kristiansund 2020 p.12)."""

from __future__ import annotations

import random
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from kpis.benchmarking.scoring import SHARE_DECIMALS, band_for, points_for, score_release, share_of_target
from kpis.benchmarking.targets import TARGET_SCHEMA
from kpis.catalogue import indicators_by_id, load_catalogue

KPI_SCHEMA: dict[str, Any] = {
    "city_id": pl.String, "year": pl.Int32, "framework": pl.String, "indicator_id": pl.String,
    "data_point": pl.String, "value": pl.Float64, "unit": pl.String, "status": pl.String, "status_reason": pl.String,
}
WS = "Economy / Infrastructure / Water and Sanitation"  # EC:I:WS:1C .. 5C


def kpis(*rows: tuple[str, str | None, float | None], city: str = "c", year: int = 2024) -> pl.DataFrame:
    """kpi_values rows (indicator, data point, value); a None value is a `missing` row."""
    catalogue = indicators_by_id()
    return pl.DataFrame([{
        "city_id": city, "year": year, "framework": catalogue[ind].framework, "indicator_id": ind, "data_point": dp,
        "value": value, "unit": catalogue[ind].unit, "status": "computed" if value is not None else "missing",
        "status_reason": None if value is not None else "missing input(s): x"} for ind, dp, value in rows],
        schema=KPI_SCHEMA, orient="row")


def targets(*rows: tuple[str, str | None, float, str, float | None]) -> pl.DataFrame:
    """Target rows (indicator, data point, target, direction, worst)."""
    return pl.DataFrame([{
        "indicator_id": ind, "data_point": dp, "target": target, "direction": direction, "worst": worst,
        "deadline": 2030, "official_u4ssc_benchmark": False, "source": "test", "note": None, "target_source": "test"}
        for ind, dp, target, direction, worst in rows], schema=TARGET_SCHEMA, orient="row")


def rollup(rollups: pl.DataFrame, level: str, group: str) -> dict[str, Any]:
    rows = rollups.filter((pl.col("level") == level) & (pl.col("group_path") == group)).to_dicts()
    assert len(rows) == 1, rows
    return rows[0]


HUNDRED = [(f"EC:I:WS:{n}C", None, 100.0, "higher", None) for n in range(1, 6)]


# ---- share of target and bands ----------------------------------------------------------------


@pytest.mark.parametrize(("share", "points"), [
    (-50.0, 1), (0.0, 1), (32.999999, 1), (33.0, 2), (50.0, 2), (65.999999, 2), (66.0, 3), (80.0, 3),
    (94.999999, 3), (95.0, 4), (100.0, 4), (250.0, 4),
])
def test_points_boundaries_are_lower_bound_inclusive(share: float, points: int) -> None:
    assert points_for(share) == points


def test_band_labels_follow_the_city_snapshot_legend() -> None:
    assert [band_for(s).label for s in (10, 40, 70, 99)] == [
        "Less than 33% of Target", "33-66% of Target", "66-95% of Target", "95%+ Target"]


def test_share_of_target_formulas() -> None:
    assert share_of_target(80, 100, "higher") == pytest.approx(0.8)
    # lower is better: (worst - value) / (worst - target); PM2.5 15 against WHO 5 with worst 35: 20 / 30
    assert share_of_target(15, 5, "lower", 35) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="worst"):
        share_of_target(15, 5, "lower", None)


def test_values_exactly_on_a_boundary_are_not_pushed_below_it_by_floating_point() -> None:
    assert 100 * share_of_target(72.6, 110, "higher") < 66  # the raw float is 65.99999999999999
    assert 100 * share_of_target(25.1, 5, "lower", 35) < 33  # 32.99999999999999
    scores, _, _ = score_release(kpis(("EC:I:WS:1C", None, 72.6), ("EN:EN:AQ:1C", "PM2.5", 25.1)),
                                 targets(("EC:I:WS:1C", None, 110, "higher", None),
                                         ("EN:EN:AQ:1C", "PM2.5", 5, "lower", 35)))
    assert scores.select("indicator_id", "share_pct", "points").rows() == [
        ("EC:I:WS:1C", 66.0, 3), ("EN:EN:AQ:1C", 33.0, 2)]


# ---- lower is better, caps --------------------------------------------------------------------


@pytest.mark.parametrize(("value", "share", "capped", "points", "note"), [
    (5.0, 100.0, 100.0, 4, None),                     # at the WHO guideline
    (6.5, 95.0, 95.0, 4, None),                       # (35 - 6.5) / 30 = 0.95
    (15.2, 66.0, 66.0, 3, None),                      # (35 - 15.2) / 30 = 0.66
    (25.1, 33.0, 33.0, 2, None),                      # (35 - 25.1) / 30 = 0.33
    (35.0, 0.0, 0.0, 1, None),                        # at the worst value
    (3.0, round(3200 / 30, SHARE_DECIMALS), 100.0, 4, "capped at 100 %"),  # better than the target
    (50.0, -50.0, 0.0, 1, "clamped to 0 %"),          # worse than the worst value
])
def test_lower_is_better_pm25_against_who(value: float, share: float, capped: float, points: int,
                                          note: str | None) -> None:
    scores, _, excluded = score_release(kpis(("EN:EN:AQ:1C", "PM2.5", value)),
                                        targets(("EN:EN:AQ:1C", "PM2.5", 5, "lower", 35)))
    assert excluded.height == 0
    row = scores.row(0, named=True)
    assert (row["share_pct"], row["share_capped_pct"], row["points"]) == (share, capped, points)
    assert (row["status_reason"] is None) if note is None else (note in row["status_reason"])
    assert (row["target"], row["worst"], row["direction"]) == (5.0, 35.0, "lower")


def test_higher_is_better_beyond_the_target_is_capped() -> None:
    scores, _, _ = score_release(kpis(("EC:I:WS:1C", None, 120.0)), targets(("EC:I:WS:1C", None, 100, "higher", None)))
    row = scores.row(0, named=True)
    assert (row["share_pct"], row["share_capped_pct"], row["points"], row["band"]) == (120.0, 100.0, 4, "95+")


# ---- roll-ups: the published worked example ---------------------------------------------------


def test_worked_example_four_kpis_1_3_4_1_is_9_of_16() -> None:
    values = kpis(("EC:I:WS:1C", None, 20.0), ("EC:I:WS:2C", None, 70.0), ("EC:I:WS:3C", None, 99.0),
                  ("EC:I:WS:4C", None, 10.0))
    scores, rollups, excluded = score_release(values, targets(*HUNDRED[:4]))
    assert scores["points"].to_list() == [1, 3, 4, 1]
    category = rollup(rollups, "category", WS)
    assert (category["points_sum"], category["max_points"], category["score_pct"]) == (9.0, 16, 56.25)
    assert (category["band"], category["band_label"]) == ("33-66", "33-66% of Target")
    assert (category["n_kpis"], category["n_scored_kpis"]) == (5, 4)  # EC:I:WS:5C is not reported
    for level, group in (("subdimension", "Economy / Infrastructure"), ("dimension", "Economy")):
        assert rollup(rollups, level, group)["score_pct"] == 56.25
    assert excluded.height == 0  # 5C has no kpi_values row at all here


def test_worked_example_three_kpis_3_4_2_is_9_of_12() -> None:
    values = kpis(("EC:I:WS:1C", None, 70.0), ("EC:I:WS:2C", None, 99.0), ("EC:I:WS:3C", None, 40.0),
                  ("EC:I:WS:4C", None, None))
    scores, rollups, excluded = score_release(values, targets(*HUNDRED))
    assert scores["points"].to_list() == [3, 4, 2]
    category = rollup(rollups, "category", WS)
    assert (category["points_sum"], category["max_points"], category["score_pct"], category["band"]) == (
        9.0, 12, 75.0, "66-95")
    # the unreported KPI is listed, not counted
    assert excluded.select("indicator_id", "status").rows() == [("EC:I:WS:4C", "excluded")]
    assert "no computed value (status missing: missing input(s): x)" in excluded["status_reason"][0]


def test_dimension_rolls_up_kpis_not_categories() -> None:
    """Economy = every scored Economy KPI: (4 + 1 + 4) / 12, not the mean of category scores."""
    values = kpis(("EC:I:WS:1C", None, 100.0), ("EC:I:WS:2C", None, 10.0), ("EC:ICT:ICT:1C", None, 96.0))
    _, rollups, _ = score_release(values, targets(*HUNDRED[:2], ("EC:ICT:ICT:1C", None, 100, "higher", None)))
    assert rollup(rollups, "category", WS)["score_pct"] == 62.5
    assert rollup(rollups, "category", "Economy / ICT / ICT Infrastructure")["score_pct"] == 100.0
    economy = rollup(rollups, "dimension", "Economy")
    assert (economy["points_sum"], economy["max_points"], economy["score_pct"]) == (9.0, 12, 75.0)


def test_a_kpi_with_several_data_points_weighs_as_one_kpi() -> None:
    values = kpis(("EN:EN:AQ:1C", "PM2.5", 5.0), ("EN:EN:AQ:1C", "NO2", 25.0), ("EN:EN:AQ:2C", None, 3.0))
    scored, rollups, _ = score_release(values, targets(("EN:EN:AQ:1C", "PM2.5", 5, "lower", 35),
                                                       ("EN:EN:AQ:1C", "NO2", 10, "lower", 40),
                                                       ("EN:EN:AQ:2C", None, 1.7, "lower", 10)))
    # PM2.5 4 points, NO2 (40 - 25) / 30 = 50 % -> 2 points: the KPI counts 3; GHG (10 - 3) / 8.3 -> 3 points
    assert scored.select("data_point", "points").rows() == [("PM2.5", 4), ("NO2", 2), (None, 3)]
    air = rollup(rollups, "category", "Environment / Environment / Air Quality")
    assert (air["n_scored_kpis"], air["n_scored_data_points"], air["points_sum"], air["score_pct"]) == (
        2, 3, 6.0, 75.0)


# ---- exclusions -------------------------------------------------------------------------------


def test_exclusions_name_their_reason_and_empty_groups_have_no_score() -> None:
    values = kpis(("EC:I:WS:1C", None, 90.0),        # scored
                  ("EC:I:WS:3C", None, 20.0),        # computed, no target
                  ("EC:I:WS:4C", None, None),        # missing, has a target
                  ("EN:EN:AQ:2C", None, 4.0),        # lower-is-better target without worst
                  ("SC:SH:SA:9C", None, None),       # missing and no target
                  ("11.6.2", "PM2.5", 9.0))          # SDG 11: not part of U4SSC scoring
    scores, rollups, excluded = score_release(values, targets(
        ("EC:I:WS:1C", None, 100, "higher", None), ("EC:I:WS:4C", None, 100, "higher", None),
        ("EN:EN:AQ:2C", None, 1.7, "lower", None), ("11.6.2", "PM2.5", 5, "lower", 35)))
    assert scores["indicator_id"].to_list() == ["EC:I:WS:1C"]
    reasons = dict(excluded.select("indicator_id", "status_reason").rows())
    assert reasons["EC:I:WS:3C"] == "no target in force for this KPI / data point"
    assert reasons["EC:I:WS:4C"].startswith("no computed value (status missing")
    assert reasons["EN:EN:AQ:2C"] == "lower-is-better target without a worst value, so no share of target"
    assert "no computed value" in reasons["SC:SH:SA:9C"] and "no target" in reasons["SC:SH:SA:9C"]
    assert "11.6.2" not in reasons
    # the excluded row still shows the target it would have used
    assert excluded.filter(pl.col("indicator_id") == "EC:I:WS:4C")["target"].to_list() == [100.0]
    safety = rollup(rollups, "category", "Society and Culture / Safety, Housing and Social Inclusion / Safety")
    assert (safety["n_scored_kpis"], safety["score_pct"], safety["band"], safety["max_points"]) == (0, None, None, 0)


def test_rollups_cover_every_group_of_the_catalogue_for_each_city_year() -> None:
    values = pl.concat([kpis(("EC:I:WS:1C", None, 90.0), year=2023), kpis(("EC:I:WS:1C", None, 99.0), year=2024),
                        kpis(("EC:I:WS:1C", None, 50.0), city="b", year=2024)])
    _, rollups, _ = score_release(values, targets(*HUNDRED))
    u4ssc = [i for i in load_catalogue() if i.framework == "u4ssc"]
    n_groups = sum(len({tuple([i.dimension, i.subdimension, i.category][:n]) for i in u4ssc}) for n in (1, 2, 3))
    assert n_groups == 3 + 7 + 27  # 22 category names, 27 category nodes (some names repeat across sub-dimensions)
    assert rollups.height == 3 * n_groups
    assert rollups.select("city_id", "year").unique(maintain_order=True).rows() == [
        ("b", 2024), ("c", 2023), ("c", 2024)]


def test_output_is_deterministic_whatever_the_input_order() -> None:
    rows = [("EC:I:WS:1C", None, 20.0), ("EC:I:WS:2C", None, 70.0), ("EN:EN:AQ:1C", "NO2", 25.0),
            ("EN:EN:AQ:1C", "PM2.5", 9.0), ("EC:ICT:ICT:1C", None, None), ("SC:SH:SA:9C", None, 3.0)]
    tgt = targets(*HUNDRED, ("EN:EN:AQ:1C", "PM2.5", 5, "lower", 35), ("EN:EN:AQ:1C", "NO2", 10, "lower", 40))
    first = score_release(kpis(*rows), tgt)
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    second = score_release(kpis(*shuffled), tgt.reverse())
    for a, b in zip(first, second, strict=True):
        assert_frame_equal(a, b)
    # catalogue order, then the catalogue's data point order (PM2.5 before NO2)
    assert first[0].select("indicator_id", "data_point").rows() == [
        ("EC:I:WS:1C", None), ("EC:I:WS:2C", None), ("EN:EN:AQ:1C", "PM2.5"), ("EN:EN:AQ:1C", "NO2")]
