"""Statistics published as Parquet load like CSV: a wide table, a long table, numbers and text codes."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from canonical.errors import SourceDataError
from pipelines import steps
from sources.config import load_city_config
from warehouse.home import Home

CONFIG = """config_version: 1
city: {id: pq-town, name: Parquet Town, country: DE, reporting_years: [2023]}
sources:
  - id: stats
    kind: file
    location: stats.parquet
    target: observations
    observations:
      layout: long
      year_field: year
      area_field: district
      variable_field: code
      value_field: value
      aggregate: sum
      periods: annual
      variables:
        POP: {variable: population, unit: persons}
"""


def test_long_parquet_with_repeated_rows_sums_every_row(tmp_path: Path) -> None:
    folder = tmp_path / "city"
    folder.mkdir()
    # Two identical rows (two age groups of equal size, age not published) both count: 100 + 100 + 50.
    pl.DataFrame({"year": [2023, 2023, 2023, 2023], "district": ["01", "01", "02", "02"],
                  "code": ["POP", "POP", "POP", "OTHER"], "value": [100.0, 100.0, 50.0, 7.0]}
                 ).write_parquet(folder / "stats.parquet")
    (folder / "city.yaml").write_text(CONFIG)
    home = Home(tmp_path / "home")
    loaded = load_city_config(folder / "city.yaml")
    report = steps.load_city(home, loaded, steps.fetch_city(home, loaded))
    assert report["sources"]["stats"]["duplicate_rows"] == 1
    assert report["sources"]["stats"]["unmapped_codes"] == {"OTHER": 1}
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        rows = dict(con.execute("""SELECT area_id, value FROM observations WHERE variable = 'population'
                                   AND derivation IS NULL""").fetchall())
    finally:
        con.close()
    assert rows == {"01": 200.0, "02": 50.0}


def test_a_corrupt_parquet_file_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "city"
    folder.mkdir()
    (folder / "stats.parquet").write_bytes(b"PAR1 not really")
    (folder / "city.yaml").write_text(CONFIG)
    home = Home(tmp_path / "home")
    loaded = load_city_config(folder / "city.yaml")
    with pytest.raises(SourceDataError, match=r"stats.parquet.*cannot read as Parquet"):
        steps.load_city(home, loaded, steps.fetch_city(home, loaded))
