"""Every worked example of docs/city-config.md's observations section (tests/corpus/observations/*.yaml),
loaded as the warehouse loads it, against values worked out by hand."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from sources.config import load_city_config
from sources.landing import Snapshot
from warehouse.load import parse_source

CORPUS = Path(__file__).parent / "corpus" / "observations"


def snapshot_of(path: Path, city_id: str, source_id: str, kind: str, fmt: str) -> Snapshot:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    return Snapshot(snapshot_id=f"{city_id}/{source_id}/{digest[:16]}", city_id=city_id, source_id=source_id,
                    kind=kind, location=str(path), format=fmt, content_sha256=digest, size_bytes=len(data),
                    path=path, relative_path=path.name, fetched_at="2026-01-01T00:00:00Z", request={}, new=True,
                    pages=(path,))


def load(config: Path, location: Path | None = None) -> dict[str, tuple[dict[tuple[Any, ...], dict[str, Any]],
                                                                         dict[str, Any]]]:
    """source id -> ({(year, variable, data_point, area_id): observation row}, load report)."""
    loaded = load_city_config(config)
    out = {}
    for source in loaded.config.sources:
        path = location or loaded.source_path(source)
        parsed = parse_source(loaded, source, snapshot_of(path, loaded.city_id, source.id, source.kind,
                                                          source.resolved_format))
        assert parsed.frame is not None
        rows = {(r["year"], r["variable"], r["data_point"], r["area_id"]): r for r in parsed.frame.to_dicts()}
        out[source.id] = (rows, parsed.report)
    return out


def values(rows: dict[tuple[Any, ...], dict[str, Any]]) -> dict[tuple[Any, ...], float]:
    return {key: row["value"] for key, row in rows.items()}


def test_madrid_accidents_counts_persons_killed_identical_rows_included() -> None:
    rows, report = load(CORPUS / "madrid_accidents.yaml")["accidents"]
    # 2019: two identical rows on 10/03 (rows 71, 72: day 69 is row 70) + row 218 on 02/08 (day 214, after
    # the two extra rows); 2020 covers 3 days only.
    assert values(rows) == {(2019, "traffic_fatalities", None, "madrid"): 3.0}
    record = rows[2019, "traffic_fatalities", None, "madrid"]["source_record"]
    assert record == ("madrid_accidents_sample.csv count of 3 rows (rows 71-218) field 'LESIVIDAD*', "
                      "365 of 365 FECHA values (01/01/2019 .. 31/12/2019)")
    assert report["duplicate_rows"] == 1 and report["duplicate_examples"] == ["row 72 = row 71"]
    assert report["filtered_rows"] == 373 - 1 - 4  # every row but the header and the four 04 rows
    assert report["incomplete_aggregates"] == [
        "traffic_fatalities madrid 2020: 3 of 365 FECHA values; withheld (a count needs all 365: at least 365)"]


def test_identical_rows_of_single_ages_all_count() -> None:
    rows, report = load(CORPUS / "single_year_ages.yaml")["ages"]
    assert values(rows) == {(2023, "population", None, "01"): 100 + 100 + 120 + 100 + 90.0,
                            (2023, "population", None, "02"): 160.0}
    assert report["duplicate_rows"] == 3  # rows 3 and 5 repeat row 2, row 8 repeats row 7
    assert report["duplicate_examples"] == ["row 3 = row 2", "row 5 = row 2", "row 8 = row 7"]
    assert "duplicates_dropped" not in report


def test_missing_markers_are_empty_cells() -> None:
    rows, report = load(CORPUS / "missing_markers.yaml")["census"]
    assert values(rows) == {(2021, "households_total", None, "sample-town"): 400.0,
                            (2022, "population", None, "sample-town"): 1000.0,
                            (2023, "population", None, "sample-town"): 1100.0,
                            (2023, "households_total", None, "sample-town"): 450.0}
    assert report["empty_cells"] == 5
    assert report["missing_markers"] == {":": 1, "..": 1, "n.d.": 1, "x": 1}


def test_json_envelopes() -> None:
    loaded = load(CORPUS / "json_envelopes.yaml")
    assert values(loaded["unemployment"][0]) == {(2022, "unemployed_persons", None, "sample-town"): 31500.0,
                                                 (2023, "unemployed_persons", None, "sample-town"): 29800.0}
    assert values(loaded["population"][0]) == {(2022, "population", None, "sample-town"): 8335897.0,
                                               (2023, "population", None, "sample-town"): 8258035.0}
    assert values(loaded["air"][0]) == {(2022, "air_concentration_ugm3", "PM2.5", "sample-town"): 11.5}
    assert loaded["air"][1]["empty_cells"] == 1  # 2023's null
    assert values(loaded["households"][0]) == {(2022, "households_total", None, "sample-town"): 120000.0,
                                               (2023, "households_total", None, "sample-town"): 121500.0}


def test_periods() -> None:
    loaded = load(CORPUS / "periods.yaml")
    survey, survey_report = loaded["survey-5y"]
    assert values(survey) == {(2014, "households_total", None, "sample-town"): 118500.0,
                              (2019, "households_total", None, "sample-town"): 121000.0}
    assert survey[2019, "households_total", None, "sample-town"]["source_record"] == (
        "periods_multi_year.csv row 3 field 'Households', period '2015/19' assigned to 2019 (period_year: end)")
    assert survey_report["year_periods"] == {"2010-2014 -> 2014": 1, "2015/19 -> 2019": 1}
    unemployment, report = loaded["unemployment"]
    # 2022: 9 months 300..380 -> 340; 2023: 8 months, below 9 of 12.
    assert values(unemployment) == {(2022, "unemployed_persons", None, "sample-town"): 340.0}
    assert report["incomplete_aggregates"] == [
        "unemployed_persons sample-town 2023: 8 of 12 Month values; withheld (a mean needs 75 % of 12: at least 9)"]
    pm25, report = loaded["pm25-districts"]
    # (100,000 x 10 + 300,000 x 14) / 400,000; district 03 has no population.
    assert values(pm25) == {(2023, "air_concentration_ugm3", "PM2.5", "sample-town"): pytest.approx(13.0)}
    assert report["rows_without_weight"] == 1
    labour, _ = loaded["labour"]
    # months summed over districts: 3000, 3200, 3400, then 3000 nine times -> 36,600 / 12
    assert values(labour) == {(2023, "labour_force", None, "sample-town"): pytest.approx(3050.0)}
    assert labour[2023, "labour_force", None, "sample-town"]["source_record"].startswith(
        "periods_two_step.csv mean over 12 Month values of the sum of 24 rows (rows 2-25)")


def test_docs_show_every_corpus_config_verbatim() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "city-config.md").read_text(encoding="utf-8")
    blocks = {}
    for block in doc.split("```yaml\n")[1:]:
        text = block.split("```", 1)[0]
        first = text.splitlines()[0]
        if first.startswith("# corpus: tests/corpus/observations/"):
            blocks[first.removeprefix("# corpus: ")] = text
    files = {f"tests/corpus/observations/{p.name}": p.read_text(encoding="utf-8") for p in CORPUS.glob("*.yaml")}
    assert blocks == files
