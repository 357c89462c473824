"""tests/cities/new_york.yaml's aggregated sources against figures computed here with the csv module
from the real files (../shared, read in place): the published values, not just plausible ones."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import yaml
from shared_data import SHARED_DIR, require_shared
from test_obs_corpus import load

CONFIG = Path(__file__).parent / "cities" / "new_york.yaml"
NYC = "fixtures/cities/new_york"


def rows_of(name: str) -> list[dict[str, str]]:
    with (SHARED_DIR / NYC / name).open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def only(tmp_path: Path, source_id: str) -> Path:
    raw = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    raw["sources"] = [s for s in raw["sources"] if s["id"] == source_id]
    raw["sources"][0]["location"] = str(SHARED_DIR / NYC / Path(raw["sources"][0]["location"]).name)
    raw["allowed_roots"] = [str(SHARED_DIR / NYC)]  # the shared files are read in place
    path = tmp_path / "nyc.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_laus_annual_means_drop_the_repeated_rows(tmp_path: Path) -> None:
    require_shared(NYC)
    observations, report = load(only(tmp_path, "labour"))["labour"]
    nyc = [r for r in rows_of("LAUS_NYC_subset.csv") if r["Area"] == "New York City"]
    distinct = {tuple(r.values()) for r in nyc}
    assert report["duplicate_rows"] == report["duplicates_dropped"] == len(nyc) - len(distinct)
    for year in (2018, 2019):
        months = {int(r["Month"]): float(r["Labor Force"]) for r in nyc if r["Year"] == str(year)}
        assert len(months) == 12
        assert math.isclose(observations[year, "labour_force", None, "new-york"]["value"],
                            sum(months.values()) / 12, rel_tol=1e-12)


def test_dsny_annual_sum_and_incomplete_2019(tmp_path: Path) -> None:
    require_shared(NYC)
    observations, report = load(only(tmp_path, "waste"))["waste"]
    columns = ["REFUSETONSCOLLECTED", "PAPERTONSCOLLECTED", "MGPTONSCOLLECTED", "RESORGANICSTONS",
               "SCHOOLORGANICTONS", "LEAVESORGANICTONS", "XMASTREETONS"]
    total = math.fsum(float(r[c].replace(",", "")) for r in rows_of("DSNY_Monthly_Tonnage_Data.csv")
                      if r["MONTH"].startswith("2018 / ") for c in columns if r[c].strip())
    short_ton = 0.90718474
    assert math.isclose(observations[2018, "solid_waste_total_t", None, "new-york"]["value"], total * short_ton,
                        rel_tol=1e-9)
    assert "solid_waste_total_t new-york 2019: 11 of 12 MONTH values; withheld (a sum needs all 12: at least 12)" \
        in report["incomplete_aggregates"]
