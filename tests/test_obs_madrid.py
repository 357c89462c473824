"""Madrid's real 2020_Accidentalidad.csv (../shared, read in place) through the documented config
(tests/corpus/observations/madrid_accidents.yaml), against a count made here with the csv module."""

from __future__ import annotations

import csv
from pathlib import Path

import yaml
from shared_data import require_shared
from test_obs_corpus import CORPUS, load

from sources.config import CsvOptions
from sources.parsers.tabular import read_csv

FILE = "fixtures/cities/madrid/2020_Accidentalidad.csv"


def independent_count(path: Path) -> tuple[int, int, int]:
    """(persons with LESIVIDAD* 04, distinct dates, rows) read with the csv module alone."""
    with path.open(encoding="latin-1", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    header, data = rows[0], rows[1:]
    lesividad, fecha = header.index("LESIVIDAD*"), header.index("FECHA")
    return sum(r[lesividad] == "04" for r in data), len({r[fecha] for r in data}), len(data)


def config_for(tmp_path: Path, path: Path, **observations: object) -> Path:
    raw = yaml.safe_load((CORPUS / "madrid_accidents.yaml").read_text(encoding="utf-8"))
    raw["sources"][0]["location"] = str(path)
    raw["allowed_roots"] = [str(path.parent)]  # the shared file is read in place
    raw["sources"][0]["observations"].update(observations)
    out = tmp_path / "madrid.yaml"
    out.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return out


def test_header_quirks_are_read() -> None:
    path = require_shared(FILE)
    table = read_csv(path, CsvOptions(delimiter=";", encoding="latin-1"), path.name)
    assert table.columns[0] == "Nº  EXPEDIENTE" and table.columns[-2:] == ["column 14", "column 15"]
    assert table.column_index("Nº EXPEDIENTE") == 0  # one space where the file has two
    assert table.column_index("ESTADO METEREOLÓGICO") == 7


def test_documented_config_withholds_the_half_year(tmp_path: Path) -> None:
    path = require_shared(FILE)
    killed, days, rows = independent_count(path)
    assert (killed, days, rows) == (18, 182, 14499)
    observations, report = load(config_for(tmp_path, path))["accidents"]
    assert observations == {}
    assert report["rows_read"] == rows and report["filtered_rows"] == rows - killed
    assert report["incomplete_aggregates"] == [
        f"traffic_fatalities madrid 2020: {days} of 365 FECHA values; withheld (a count needs all 365: at least 365)"]


def test_partial_year_published_on_request_states_its_period(tmp_path: Path) -> None:
    path = require_shared(FILE)
    killed, days, _ = independent_count(path)
    config = config_for(tmp_path, path, periods={"field": "FECHA", "per_year": 365, "required": 182})
    observations, report = load(config)["accidents"]
    row = observations[2020, "traffic_fatalities", None, "madrid"]
    assert row["value"] == killed == 18
    assert row["source_record"].endswith(f"field 'LESIVIDAD*', {days} of 365 FECHA values (01/01/2020 .. 30/06/2020)")
    assert report["duplicate_rows"] == 0  # among the 18 persons killed no two rows are alike
