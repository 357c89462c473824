"""The per-city lookups of the HTML report are indexed once per release (a 1,000-city release filtered every
file and every quality entry for each city: quadratic) and give what the plain filters give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from publish.report.sections import FileLink, quality_for
from publish.report_html import FOLDER, ROLE, _OwnFiles, city_file

CITIES = ["a", "a-b", "b", "city.1", "x"]  # "a-b"'s workbooks also start with "a-", as the plain filter matched


def _plain_own(files: list[FileLink], city_id: str, page: str) -> list[FileLink]:
    """The filter the index replaces, as it was."""
    own = [f for f in files if f.role != "u4ssc_workbook" or Path(f.path).name.startswith(f"{city_id}-")]
    return [f for f in own if not (f.role == ROLE and f.path.startswith(f"{FOLDER}/") and f.path.endswith(".html")
                                   and f.path != page)]


def _files() -> list[FileLink]:
    files = [FileLink("kpi_values.parquet", "kpi_values", "rows"), FileLink("report.html", ROLE, "overview")]
    for year in (2023, 2022):  # not in name order: the release order is kept
        for city in reversed(CITIES):
            files.append(FileLink(f"u4ssc/{city}-{year}.xlsx", "u4ssc_workbook", "workbook"))
    files += [FileLink(city_file(city), ROLE, "page") for city in CITIES]
    files += [FileLink(f"{FOLDER}/vega.js", ROLE, "bundle"), FileLink("manifest.json", "manifest", "manifest")]
    return files


def test_each_city_gets_the_files_the_plain_filter_gives() -> None:
    files = _files()
    index = _OwnFiles(files)
    for city in [*CITIES, "nobody"]:
        assert index.of(city, city_file(city)) == _plain_own(files, city, city_file(city)), city
    assert [f.path for f in index.of("a", city_file("a")) if f.role == "u4ssc_workbook"] == [
        "u4ssc/a-b-2023.xlsx", "u4ssc/a-2023.xlsx", "u4ssc/a-b-2022.xlsx", "u4ssc/a-2022.xlsx"]


def test_quality_for_lists_each_citys_entries_in_order_and_those_of_no_city() -> None:
    warned: list[Any] = []
    for i in range(60):
        warned.append({"city_id": CITIES[i % len(CITIES)], "check": f"c{i}"})
        if i % 7 == 0:
            warned.append({"check": f"release-wide {i}"})  # no city: on every page
    summary = {"passed": 3, "warned_checks": warned, "failed_checks": [{"city_id": "b", "check": "f"}, "not a dict"]}
    for city in [*CITIES, "nobody"]:
        expected = {**summary,
                    "warned_checks": [w for w in warned if w.get("city_id") in (None, city)],
                    "failed_checks": [f for f in summary["failed_checks"]
                                      if isinstance(f, dict) and f.get("city_id") in (None, city)]}
        assert quality_for(summary, city) == expected, city
    other = {"warned_checks": [{"city_id": "a", "check": "new"}]}  # another release's summary: indexed anew
    assert quality_for(other, "a") == other
    assert quality_for(None, "a") is None
