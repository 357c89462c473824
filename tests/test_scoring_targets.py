"""Target tables: the shipped default (public references only, never labelled official), a city's
own table beside its config overriding it row by row, validation errors naming file/row/field,
and `citykpi targets`."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml

from kpis.benchmarking.targets import (
    CSV_COLUMNS,
    DEFAULT_TABLE,
    TargetsError,
    default_targets,
    load_targets,
    read_target_table,
)
from kpis.catalogue import indicators_by_id
from pipelines.cli import main
from sources.config import load_city_config

HEADER = ",".join(CSV_COLUMNS)


def write_city(tmp_path: Path) -> Path:
    """A minimal valid city config (its data files need not exist for targets)."""
    config = {"config_version": 1,
              "city": {"id": "test-city", "name": "Testville", "country": "DE", "reporting_years": [2024]},
              "sources": [{"id": "stats", "kind": "file", "location": "stats.csv", "target": "observations",
                           "observations": {"year_field": "Jahr",
                                            "variables": {"Einwohner": {"variable": "population",
                                                                        "unit": "persons"}}}}]}
    path = tmp_path / "test-city.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def write_table(path: Path, *rows: str, header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


# ---- the default table ------------------------------------------------------------------------


def test_default_table_is_public_sourced_and_never_official() -> None:
    table = default_targets()
    catalogue = indicators_by_id()
    assert table.height >= 20
    assert not table["official_u4ssc_benchmark"].any()
    assert set(table["target_source"]) == {f"default: {DEFAULT_TABLE}"}
    for row in table.iter_rows(named=True):
        indicator = catalogue[row["indicator_id"]]  # validated against the catalogue
        assert (row["data_point"] in indicator.data_points) if indicator.data_points else row["data_point"] is None
        assert row["source"] and row["note"], row
        if row["direction"] == "lower" and row["worst"] is None:
            assert "not scored" in row["note"], row  # a missing worst value is a documented choice


def test_default_air_quality_rows_are_the_who_2021_guidelines() -> None:
    rows = {(r["indicator_id"], r["data_point"]): r for r in default_targets().iter_rows(named=True)}
    for indicator in ("EN:EN:AQ:1C", "11.6.2"):
        assert (rows[indicator, "PM2.5"]["target"], rows[indicator, "PM2.5"]["worst"]) == (5.0, 35.0)
        assert (rows[indicator, "PM10"]["target"], rows[indicator, "PM10"]["worst"]) == (15.0, 70.0)
    assert (rows["EN:EN:AQ:1C", "NO2"]["target"], rows["EN:EN:AQ:1C", "O3"]["target"]) == (10.0, 60.0)
    # WHO 2021 has only a 24-hour SO2 guideline: no annual-mean target is shipped (docs/benchmarking.md)
    assert ("EN:EN:AQ:1C", "SO2") not in rows
    assert all(r["direction"] == "lower" and "WHO" in r["source"] for k, r in rows.items() if k[1] in ("PM2.5", "NO2"))


def test_default_access_targets_are_universal() -> None:
    rows = {(r["indicator_id"], r["data_point"]): r for r in default_targets().iter_rows(named=True)}
    for key in [("EC:ICT:ICT:1C", None), ("EC:I:WS:1C", None), ("EC:I:ES:3C", None), ("EC:I:T:2A", "total"),
                *[("11.2.1", dp) for dp in indicators_by_id()["11.2.1"].data_points if "straight line" not in dp]]:
        assert (rows[key]["target"], rows[key]["direction"], rows[key]["deadline"]) == (100.0, "higher", 2030), key
    # the straight-line comparisons beside the walking-distance values have no target: never scored
    assert not [key for key in rows if key[1] and "straight line" in key[1]]


# ---- a city's own table -----------------------------------------------------------------------


def test_city_table_beside_the_config_overrides_row_by_row(tmp_path: Path) -> None:
    loaded = load_city_config(write_city(tmp_path), check_files=False)
    assert loaded.targets_path == tmp_path / "test-city.targets.csv"
    assert load_targets(loaded.targets_path).equals(default_targets())  # no city table yet
    write_table(loaded.targets_path,
                'EN:EN:AQ:1C,PM2.5,8,lower,25,2028,false,"Clean Air Plan 2021, council decision 14/2021",',
                "EC:I:WS:3C,,10,lower,50,,,City water utility strategy,")
    merged = load_targets(loaded.targets_path)
    assert merged.height == default_targets().height + 1
    rows = {(r["indicator_id"], r["data_point"]): r for r in merged.iter_rows(named=True)}
    pm = rows["EN:EN:AQ:1C", "PM2.5"]
    assert (pm["target"], pm["worst"], pm["deadline"], pm["target_source"]) == (
        8.0, 25.0, 2028, f"city: {loaded.targets_path}")
    loss = rows["EC:I:WS:3C", None]
    assert (loss["deadline"], loss["official_u4ssc_benchmark"], loss["note"]) == (2030, False, None)  # defaults
    assert rows["EN:EN:AQ:1C", "PM10"]["target_source"] == f"default: {DEFAULT_TABLE}"  # untouched
    # catalogue order: EC:I:WS:3C comes before the air quality rows
    ids = merged["indicator_id"].to_list()
    assert ids.index("EC:I:WS:3C") < ids.index("EN:EN:AQ:1C")


def test_explicit_path_and_official_flag(tmp_path: Path) -> None:
    table = write_table(tmp_path / "t.csv", "EC:ICT:ICT:1C,,98,higher,,2026,yes,U4SSC verifier 2024 report,")
    row = load_targets(table).filter(pl.col("indicator_id") == "EC:ICT:ICT:1C").row(0, named=True)
    assert (row["target"], row["official_u4ssc_benchmark"], row["target_source"]) == (98.0, True, f"city: {table}")


@pytest.mark.parametrize(("row", "fragments"), [
    ("XX:1,,1,higher,,,,s,", ("row 2", "'indicator_id'", "unknown indicator 'XX:1'")),
    ("EN:EN:AQ:1C,,5,lower,35,,,s,", ("'data_point'", "needs one of its data points")),
    ("EC:I:WS:1C,total,100,higher,,,,s,", ("'data_point'", "has no data points")),
    ("EC:I:WS:1C,,100,up,,,,s,", ("'direction'", "'higher' or 'lower'")),
    ("EN:EN:AQ:1C,PM2.5,5,higher,,,,s,", ("'direction'", "contradicts the catalogue", "lower is better")),
    ("EC:I:T:4A,private vehicle,20,higher,,,,s,", ("'direction'", "private vehicle lower is better")),
    ("EC:I:WS:1C,,abc,higher,,,,s,", ("'target'", "not a number: 'abc'")),
    ("EC:I:WS:1C,,nan,higher,,,,s,", ("'target'", "must be finite")),
    ("EC:I:WS:1C,,0,higher,,,,s,", ("'target'", "must be positive")),
    ("EC:I:WS:1C,,100,higher,10,,,s,", ("'worst'", "lower-is-better rows only")),
    ("EC:I:WS:3C,,10,lower,5,,,s,", ("'worst'", "must be above the target")),
    ("EC:I:WS:3C,,-1,lower,5,,,s,", ("'target'", "must not be negative")),
    ("EC:I:WS:3C,,10,lower,50,20x,,s,", ("'deadline'", "a year 2000-2100")),
    ("EC:I:WS:3C,,10,lower,50,,maybe,s,", ("'official_u4ssc_benchmark'", "true or false")),
    ("EC:I:WS:3C,,10,lower,50,,,,", ("'source'", "needs its source")),
    ("EC:I:WS:3C,,10,lower,50,,,s,,extra", ("row 2", "more fields than")),
])
def test_invalid_rows_name_file_row_and_field(tmp_path: Path, row: str, fragments: tuple[str, ...]) -> None:
    path = write_table(tmp_path / "bad.targets.csv", row)
    with pytest.raises(TargetsError) as caught:
        read_target_table(path, "city")
    message = str(caught.value)
    assert message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message


def test_duplicates_and_bad_headers(tmp_path: Path) -> None:
    dup = write_table(tmp_path / "dup.csv", "EC:I:WS:1C,,100,higher,,,,s,", "", "EC:I:WS:1C,,90,higher,,,,s,")
    with pytest.raises(TargetsError, match=r"row 4: EC:I:WS:1C is already given in row 2"):
        read_target_table(dup, "city")
    header = write_table(tmp_path / "h.csv", "EC:I:WS:1C,100", header="indicator_id,goal")
    with pytest.raises(TargetsError, match=r"row 1: missing column\(s\) \['data_point', 'target'.*unknown column"):
        read_target_table(header, "city")


def test_a_bom_and_blank_lines_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_text("\ufeff" + HEADER + "\n\nEC:I:WS:1C,,99,higher,,,,s,\n\n", encoding="utf-8")
    assert read_target_table(path, "city")["target"].to_list() == [99.0]


# ---- citykpi targets --------------------------------------------------------------------------


def test_cli_targets_without_config_prints_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Default targets (no city config given):")
    assert "EN:EN:AQ:1C    PM2.5       lower          5       35  2030  default: kpis/targets/default.csv" in out
    assert "NOT the official U4SSC benchmarks" in out


def test_cli_targets_shows_where_each_row_came_from(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_city(tmp_path)
    write_table(tmp_path / "test-city.targets.csv", "EN:EN:AQ:1C,PM2.5,8,lower,25,2028,false,Clean Air Plan,")
    assert main(["targets", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"Targets for test-city (city table {tmp_path / 'test-city.targets.csv'}: found)" in out
    assert f"EN:EN:AQ:1C    PM2.5       lower          8       25  2028  city: {tmp_path / 'test-city.targets.csv'}" \
        in out
    assert "source: Clean Air Plan" in out
    assert "PM10        lower         15       70  2030  default: kpis/targets/default.csv" in out


def test_cli_targets_bad_table_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_city(tmp_path)
    write_table(tmp_path / "test-city.targets.csv", "EN:EN:AQ:1C,PM2.5,8,sideways,25,,,s,")
    assert main(["targets", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("citykpi: error: ") and "row 2, field 'direction'" in err and "Traceback" not in err
