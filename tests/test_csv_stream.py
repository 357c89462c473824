"""A statistics CSV streamed (`open_csv` -> `CsvStream`, read twice, never held) maps exactly as the same
file read whole (`read_csv` -> `TextTable`): same rows, same report, same errors (issue #14: bounded
memory)."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import pytest

from canonical.errors import SourceDataError
from sources.config import CsvOptions, SourceConfig
from sources.mapping import map_observations
from sources.parsers.tabular import CsvStream, open_csv, read_csv

POP = {"P": {"variable": "population", "unit": "persons"}}
SUM = {"year_field": "Y", "area_field": "D", "aggregate": "sum", "periods": "annual", "variables": POP}

CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "sum-with-repeats": ("Y,D,P\n2023,01,100\n2023,01,100\n2023,02,50\n\n2023,01,100\n", SUM),
    "drop-repeats": ("Y,D,P\n2023,01,100\n2023,01,100\n2023,02,50\n", {**SUM, "duplicates": "drop"}),
    "error-on-repeat": ("Y,D,P\n2023,01,100\n2023,02,7\n2023,01,100\n", {**SUM, "duplicates": "error"}),
    "repeats-judged-after-where": ("Y,G,P\n2023,Borough,5\n2023,Borough,5\n2023,City,9\n",
                                   {"year_field": "Y", "where": {"G": "City"}, "duplicates": "error",
                                    "variables": POP}),
    "no-aggregate-repeated-observation": ("Y,D,P\n2023,01,4\n2023,01,4\n2022,01,3\n",
                                          {"year_field": "Y", "area_field": "D", "variables": POP}),
    "conflicting-values": ("Y,D,P\n2023,01,4\n2023,01,5\n", {"year_field": "Y", "area_field": "D", "variables": POP}),
    "decimal-comma": ("Y;D;P\n2023;01;1,5\n2023;01;2,25\n", SUM),
    "underscore-refused": ("Y,D,P\n2023,01,5_000\n", SUM),
    "bad-year": ("Y,D,P\n2023,01,5\n20x3,01,5\n", SUM),
    "markers-and-empty": ("Y,D,P\n2023,01,NA\n2023,01,\n2023,02,3\n", SUM),
    "monthly-mean": ("Y,M,P\n" + "".join(f"2023,{m},{m}\n" for m in range(1, 13)) + "2024,1,5\n",
                     {"year_field": "Y", "aggregate": "mean", "periods": {"field": "M", "per_year": 12},
                      "variables": POP}),
    "two-step-weighted": ("Y,M,W,P\n2023,1,1,5\n2023,1,3,7\n2023,2,1,7\n",
                          {"year_field": "Y", "aggregate": ["mean", "mean"], "weight_field": "W",
                           "periods": {"field": "M", "per_year": 2}, "variables": POP}),
    "long-layout-unmapped": ("Y,Code,V\n2023,P,4\n2023,Q,5\n",
                             {"layout": "long", "year_field": "Y", "variable_field": "Code", "value_field": "V",
                              "variables": {"P": POP["P"]}}),
    "missing-column": ("Y,D,X\n2023,01,4\n", SUM),
    "ragged-row": ("Y,D,P\n2023,01,4\n2023,01\n", SUM),
    "missing-column-and-ragged-row": ("Y,D,X\n2023,01,4\n2023,01\n", SUM),
    "only-header": ("Y,D,P\n\n\n", SUM),
    "duplicate-header": ("Y,D,Y\n2023,01,4\n", SUM),
    "malformed-quote": ('Y,D,P\n2023,01,4\n"2023,"01",4\n', SUM),
}


def _source(path: Path, observations: dict[str, Any]) -> SourceConfig:
    return SourceConfig.model_validate({"id": "t", "kind": "file", "location": str(path), "target": "observations",
                                        "observations": observations})


def _outcome(reader: Any, path: Path, observations: dict[str, Any], options: CsvOptions | None = None
             ) -> tuple[str, Any]:
    try:
        frame, report = map_observations(reader(path, options, path.name), _source(path, observations),
                                         city_id="c", snapshot_id="s")
    except SourceDataError as exc:
        return "error", str(exc)
    return "ok", (frame.sort(["year", "variable", "area_id"]).to_dicts(), report.as_dict())


@pytest.mark.parametrize("case", list(CASES))
def test_streamed_and_held_csv_map_alike(tmp_path: Path, case: str) -> None:
    text, observations = CASES[case]
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    held = _outcome(read_csv, path, observations)
    streamed = _outcome(open_csv, path, observations)
    assert streamed == held
    if case.startswith(("error-on", "conflicting", "underscore", "bad-year", "missing", "ragged", "only",
                        "duplicate-header", "malformed")):
        assert held[0] == "error", held
    else:
        assert held[0] == "ok", held


def test_a_bad_row_is_named_before_a_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("Y,D,X\n2023,01,4\n2023,01\n", encoding="utf-8")
    with pytest.raises(SourceDataError, match=r"t\.csv, row 3: expected 3 fields, found 2"):
        map_observations(open_csv(path, None, "t.csv"), _source(path, SUM), city_id="c", snapshot_id="s")


def test_a_decoding_error_deep_in_the_file_is_named_alike(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"Y,D,P\n" + b"2023,01,1\n" * 3000 + b"2023,\xff\xfe,1\n")
    options = CsvOptions(encoding="utf-8")
    held = _outcome(read_csv, path, SUM, options)
    assert held[0] == "error" and "cannot decode as utf-8" in held[1]
    assert _outcome(open_csv, path, SUM, options) == held


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-8-sig"])
def test_a_byte_order_mark_is_read_alike(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("Y,D,P\n2023,01,4\n2023,02,5\n".encode(encoding))
    assert path.read_bytes().startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF32_LE, codecs.BOM_UTF8))
    held = _outcome(read_csv, path, SUM)
    assert held[0] == "ok" and _outcome(open_csv, path, SUM) == held


def test_hash_collisions_never_make_different_streamed_rows_duplicates(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import sources.mapping

    monkeypatch.setattr(sources.mapping, "hash", lambda _: 0, raising=False)  # every row collides
    path = tmp_path / "t.csv"
    path.write_text("Y,P\n2023,1\n2023,2\n2023,1\n2023,3\n", encoding="utf-8")
    frame, report = map_observations(open_csv(path, None, "t.csv"),
                                     _source(path, {"year_field": "Y", "aggregate": "sum", "periods": "annual",
                                                    "variables": POP}), city_id="c", snapshot_id="s")
    assert frame["value"].to_list() == [7.0]
    assert report.duplicate_rows == 1 and report.duplicate_examples == ["row 4 = row 2"]


def test_a_stream_reads_the_file_again_each_time_and_holds_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("Y;D;P\n" + "".join(f"2023;{i % 7};{i},5\n" for i in range(2000)), encoding="utf-8")
    stream = open_csv(path, None, "t.csv")
    assert isinstance(stream, CsvStream) and stream.columns == ["Y", "D", "P"]
    assert stream.number_format.decimal == "," and stream.delimiter == ";"
    first, second = list(stream.rows()), list(stream.rows())
    assert first == second and len(first) == 2000 and first[0] == (["2023", "0", "0,5"], 2)


def test_the_loader_streams_csv_sources(tmp_path: Path) -> None:
    from test_obs_corpus import snapshot_of

    from warehouse.load import read_table

    path = tmp_path / "t.csv"
    path.write_text("Y,D,P\n2023,01,4\n", encoding="utf-8")
    source = _source(path, SUM)
    snapshot = snapshot_of(path, "c", source.id, source.kind, source.resolved_format)
    assert isinstance(read_table(source, snapshot), CsvStream)


def test_a_cell_spanning_lines_keeps_later_rows_on_their_file_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('Y,D,P\n2023,"0\n1",4\n\n2023,01,x\n', encoding="utf-8")
    assert [line for _, line in open_csv(path, None, "t.csv").rows()] == [2, 5]
    with pytest.raises(SourceDataError, match=r"t\.csv, row 5, field 'P'"):
        map_observations(open_csv(path, None, "t.csv"), _source(path, SUM), city_id="c", snapshot_id="s")
