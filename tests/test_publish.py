"""Release formats: each file checked by the tool its readers use (frictionless, pysdmx, jsonschema
against the Smart Data Models schema, openpyxl, DuckDB), plus release ids, `latest`, determinism
and the `releases` and `publish` commands.

Reads the session's completed demo release; tests that publish more releases work on a copy.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import polars as pl
import pytest
import yaml
from conftest import REPO_ROOT, CompletedHome, sha256_bytes, verify_release

from pipelines.cli import main
from publish.changes import diff_frames, render_markdown
from publish.releases import FILE_ROLES, RELEASE_COLUMNS, Release, load_release
from publish.sdmx import COLUMNS as SDMX_COLUMNS
from publish.sdmx import SDMX_ID
from publish.u4ssc_workbook import DATA_QUALITY, KPI_HEADER
from warehouse.home import Home

DATA_ROLES = {"kpi_values_parquet", "kpi_values_csv", "datapackage", "sdmx_csv", "open_sdg", "ngsi_ld",
              "u4ssc_workbook", "scores", "rollups", "progress"}
REQUIRED_ROLES = {*DATA_ROLES, "report_html", "checksums", "changes", "duckdb_snapshot", "quality_docs"}
RELEASE_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
SMART_DATA_MODELS = REPO_ROOT.parent / "shared" / "fixtures" / "payloads" / "smart_data_models" / \
    "KeyPerformanceIndicator"


@pytest.fixture(scope="module")
def release(completed_home: CompletedHome) -> Release:
    return load_release(Home(completed_home.home), completed_home.release.name)


@pytest.fixture(scope="module")
def values(release: Release) -> pl.DataFrame:
    return pl.read_parquet(release.path / "kpi_values.parquet")


def _data_hashes(release: Release) -> dict[str, str]:
    return {f["path"]: f["sha256"] for f in release.manifest["files"] if f["role"] in DATA_ROLES}


# ---- manifest, ids, latest ----------------------------------------------------------------------


def test_manifest_lists_every_file_with_its_role(release: Release) -> None:
    verify_release(release.path)  # hashes, sizes, SHA256SUMS, no unlisted file
    files = release.manifest["files"]
    assert {f["role"] for f in files} == REQUIRED_ROLES
    assert {f["role"] for f in files} <= set(FILE_ROLES)
    for entry in files:
        assert set(entry) == {"path", "role", "description", "sha256", "bytes"}
        assert entry["description"] and entry["bytes"] > 0
    assert [f["path"] for f in files if f["role"] == "checksums"] == ["SHA256SUMS"]
    assert RELEASE_ID.match(release.release_id), release.release_id
    assert release.release_id.endswith(release.manifest["content_sha256"][:8])
    assert release.manifest["previous_release"] is None


def test_latest_points_at_the_complete_release(completed_home: CompletedHome, release: Release) -> None:
    latest = completed_home.home / "releases" / "latest"
    assert latest.is_symlink() and os.readlink(latest) == release.release_id  # relative: the home can move
    assert load_release(Home(completed_home.home), "latest").release_id == release.release_id


def test_unchanged_inputs_give_identical_data_files(completed_home: CompletedHome, home_copy: Path) -> None:
    from pipelines.steps import publish
    from sources.config import load_city_config

    home = Home(home_copy)
    first = load_release(home, "latest")
    config = load_city_config(completed_home.config)
    # No wall-time assertion here (load breaks it): benchmarks/run.py times the publish stage.
    second = publish(home, [config], "publish-again")
    third = publish(home, [config], "publish-once-more")

    assert _data_hashes(second) == _data_hashes(first) == _data_hashes(third)
    assert sorted([third.release_id, first.release_id, second.release_id]) == \
        [first.release_id, second.release_id, third.release_id]  # ids sort in publication order
    assert {r.release_id[-8:] for r in (first, second, third)} == {first.release_id[-8:]}  # same data, same hash
    assert os.readlink(home.releases / "latest") == third.release_id
    assert third.manifest["previous_release"] == second.release_id
    changes = (third.path / "CHANGES.md").read_text(encoding="utf-8")
    assert f"Compared with release {second.release_id}" in changes and "No indicator value" in changes
    for path in (second.path, third.path):
        verify_release(path)
        assert {stat.S_IMODE(p.stat().st_mode) for p in path.rglob("*") if p.is_file()} == {0o444}
    # The first release is untouched.
    assert {p: sha256_bytes(first.path / p) for p in _data_hashes(first)} == _data_hashes(first)


# ---- Frictionless Data Package -----------------------------------------------------------------


def test_datapackage_is_valid_for_frictionless(release: Release, tmp_path: Path) -> None:
    from frictionless import validate

    report = validate(str(release.path / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])[:10]
    package = json.loads((release.path / "datapackage.json").read_text(encoding="utf-8"))
    # kpi_values, the catalogue and the benchmarking tables (tests/test_datapackage_scores.py checks those).
    assert [r["name"] for r in package["resources"]] == ["kpi_values", "indicators", "kpi_scores", "kpi_rollups",
                                                         "kpi_progress"]
    table = next(r for r in package["resources"] if r["name"] == "kpi_values")
    assert [f["name"] for f in table["schema"]["fields"]] == RELEASE_COLUMNS
    assert all(f["type"] and f["description"] for f in table["schema"]["fields"])
    assert table["hash"] == f"sha256:{sha256_bytes(release.path / 'kpi_values.csv')}"
    indicators = next(r for r in package["resources"] if r["name"] == "indicators")
    assert {row["unit"] for row in indicators["data"]} > {"%", "µg/m3"}  # units travel with the catalogue
    # ... and which way is better (kpis/catalogue.py `direction`; the enum is in the schema)
    assert {row["direction"] for row in indicators["data"]} == {"higher_is_better", "lower_is_better",
                                                                "target_band", "neutral"}
    # The demo's sources are CC0 except its OpenStreetMap-shaped street network (ODbL: share-alike).
    assert package["licenses"] == [{"name": "CC0-1.0", "title": "CC0-1.0",
                                    "path": "https://creativecommons.org/publicdomain/zero/1.0/"},
                                   {"name": "ODbL-1.0", "title": "ODbL-1.0",
                                    "path": "https://opendatacommons.org/licenses/odbl/1-0/"}]
    assert len(package["sources"]) == len(release.manifest["input_snapshots"])
    assert all(s["version"].startswith("sha256:") for s in package["sources"])

    # The validator really reads the data: a value outside the status codelist is reported.
    copy = tmp_path / "copy"
    shutil.copytree(release.path, copy)
    csv_path = copy / "kpi_values.csv"
    csv_path.chmod(0o644)
    csv_path.write_text(csv_path.read_text(encoding="utf-8").replace(",computed,", ",guessed,", 1), encoding="utf-8")
    broken = validate(str(copy / "datapackage.json"))
    assert not broken.valid
    assert {"constraint-error", "hash-count"} <= {e.type for task in broken.tasks for e in task.errors}


# ---- SDMX-CSV ---------------------------------------------------------------------------------------


def test_sdmx_csv_reads_back_with_pysdmx(release: Release, values: pl.DataFrame) -> None:
    from pysdmx.io import read_sdmx
    from pysdmx.io.pd import PandasDataset

    message = read_sdmx(str(release.path / "kpi_values.sdmx.csv"))
    [dataset] = message.data or []
    assert isinstance(dataset, PandasDataset)
    assert dataset.short_urn == "Dataflow=CITYKPI:DF_CITYKPI(1.0)"
    frame = dataset.data
    assert list(frame.columns) == SDMX_COLUMNS[1:]
    computed = values.filter(pl.col("status") == "computed")
    assert len(frame) == computed.height
    for column in ("FREQ", "SERIES", "REF_AREA", "COMPOSITE_BREAKDOWN", "UNIT_MEASURE", "OBS_STATUS"):
        assert all(SDMX_ID.match(str(v)) for v in frame[column]), column
    pm25 = frame[(frame["SERIES"] == "SDG_11_6_2") & (frame["COMPOSITE_BREAKDOWN"] == "PM2_5")]
    expected = computed.filter(pl.col("indicator_id") == "11.6.2", pl.col("data_point") == "PM2.5").sort("year")
    assert [int(y) for y in pm25["TIME_PERIOD"]] == expected["year"].to_list()
    assert [float(v) for v in pm25["OBS_VALUE"]] == expected["value"].to_list()  # round-trips exactly
    assert set(pm25["UNIT_MEASURE"]) == {"UG_PER_M3"} and set(frame["UNIT_MULT"].astype(str)) == {"0"}


# ---- Open SDG ---------------------------------------------------------------------------------------


def test_open_sdg_has_a_data_and_metadata_file_per_sdg11_indicator(release: Release, values: pl.DataFrame) -> None:
    from kpis.catalogue import load_catalogue

    sdg = [i for i in load_catalogue() if i.framework == "sdg11"]
    folder = release.path / "open_sdg"
    assert len(release.files("open_sdg")) == 2 * len(sdg)
    for indicator in sdg:
        slug = indicator.id.replace(".", "-")
        rows = list(csv.reader(io.StringIO((folder / "data" / f"indicator_{slug}.csv").read_text(encoding="utf-8"))))
        header, body = rows[0], rows[1:]
        assert header[0] == "Year" and header[-1] == "Value", header
        front = (folder / "meta" / f"{slug}.md").read_text(encoding="utf-8").split("---\n")[1]
        meta = yaml.safe_load(front)
        assert meta["indicator_number"] == indicator.id and meta["sdg_goal"] == "11"
        computed = values.filter(pl.col("indicator_id") == indicator.id, pl.col("status") == "computed")
        assert len(body) == computed.height
        assert meta["reporting_status"] == ("complete" if body else "notstarted")
        if body:
            assert header[1:-1] == [*(["Series"] if indicator.data_points else []), "Units", "City", "GeoCode",
                                    "Observation status"]
            assert sorted(float(r[-1]) for r in body) == sorted(computed["value"].to_list())
            assert {r[header.index("GeoCode")] for r in body} == {"demo-city"}


# ---- NGSI-LD ------------------------------------------------------------------------------------------

COMMON_SCHEMA = "https://smart-data-models.github.io/data-models/common-schema.json"
# The KPI schema refers to two definitions of Smart Data Models' common-schema.json (not in ../shared,
# and tests use no network): these are its GSMA-Commons and Location-Commons as published in
# smart-data-models/data-models, cut to the properties our entities and the examples use.
COMMON_SUBSET: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": COMMON_SCHEMA,
    "definitions": {
        "EntityIdentifierType": {"anyOf": [
            {"type": "string", "minLength": 1, "maxLength": 256,
             "pattern": "^[\\w\\-\\.\\{\\}\\$\\+\\*\\[\\]`|~^@!,:\\\\]+$"},
            {"type": "string", "format": "uri"}]},
        "GSMA-Commons": {"type": "object", "properties": {
            "id": {"$ref": "#/definitions/EntityIdentifierType"},
            "dateCreated": {"type": "string", "format": "date-time"},
            "dateModified": {"type": "string", "format": "date-time"},
            "source": {"type": "string"}, "name": {"type": "string"}, "alternateName": {"type": "string"},
            "description": {"type": "string"}, "dataProvider": {"type": "string"},
            "owner": {"type": "array", "items": {"$ref": "#/definitions/EntityIdentifierType"}},
            "seeAlso": {"oneOf": [{"type": "array", "minItems": 1, "items": {"type": "string", "format": "uri"}},
                                  {"type": "string", "format": "uri"}]}}},
        "Location-Commons": {"type": "object", "properties": {
            "address": {"type": "object", "properties": {
                key: {"type": "string"} for key in ("streetAddress", "addressLocality", "addressRegion",
                                                    "addressCountry", "postalCode", "postOfficeBoxNumber",
                                                    "streetNr", "district")}},
            "areaServed": {"type": "string"}}},
    },
}


@pytest.mark.skipif(not (SMART_DATA_MODELS / "schema.json").is_file(),
                    reason="../shared/fixtures/payloads/smart_data_models/KeyPerformanceIndicator is not beside the "
                           "repository (the Smart Data Models schema is read in place, never copied)")
def test_ngsi_ld_entities_validate_against_the_smart_data_models_schema(release: Release,
                                                                        values: pl.DataFrame) -> None:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    schema = json.loads((SMART_DATA_MODELS / "schema.json").read_text(encoding="utf-8"))
    registry = Registry().with_resource(COMMON_SCHEMA, Resource.from_contents(COMMON_SUBSET))
    validator = Draft202012Validator(schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)
    # The validator accepts the model's own examples and rejects a wrong enum value: it really checks.
    for example in ("example.json", "example.jsonld"):
        assert not list(validator.iter_errors(json.loads((SMART_DATA_MODELS / example).read_text(encoding="utf-8"))))

    [path] = release.files("ngsi_ld")
    entities = json.loads(path.read_text(encoding="utf-8"))
    for entity in entities:
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(entity)]
        assert errors == [], f"{entity['id']}: {errors}"
    assert list(validator.iter_errors({**entities[0], "calculationMethod": "guessed"}))

    computed = values.filter(pl.col("status") == "computed")
    assert len(entities) == computed.height
    assert len({e["id"] for e in entities}) == len(entities)
    pm = next(e for e in entities if e["id"] == "urn:ngsi-ld:KeyPerformanceIndicator:demo-city:11.6.2:PM2.5:2024")
    assert pm["kpiValue"] == computed.filter(pl.col("indicator_id") == "11.6.2", pl.col("data_point") == "PM2.5",
                                             pl.col("year") == 2024)["value"][0]
    assert pm["calculationPeriod"] == {"from": "2024-01-01", "to": "2024-12-31"}


def test_publish_ngsi_ld_upserts_every_entity_into_a_local_broker(completed_home: CompletedHome, release: Release,
                                                                  httpserver: Any, capsys: Any) -> None:
    from werkzeug import Request, Response

    received: list[Any] = []

    def upsert(request: Request) -> Response:
        received.append((request.headers.get("Content-Type"), request.headers.get("NGSILD-Tenant"),
                         json.loads(request.get_data())))
        return Response(status=201)

    httpserver.expect_request("/ngsi-ld/v1/entityOperations/upsert", method="POST").respond_with_handler(upsert)
    argv = ["--home", str(completed_home.home), "publish", "--ngsi-ld", httpserver.url_for("/"), "--tenant", "demo"]
    assert main(argv) == 0, capsys.readouterr()
    [path] = release.files("ngsi_ld")
    entities = json.loads(path.read_text(encoding="utf-8"))
    sent = [e for _, _, batch in received for e in batch]
    assert {ctype for ctype, _, _ in received} == {"application/ld+json"}
    assert {tenant for _, tenant, _ in received} == {"demo"}
    assert [e["id"] for e in sent] == [e["id"] for e in entities]
    assert sent[0]["kpiValue"] == {"type": "Property", "value": entities[0]["kpiValue"]}  # normalized form
    assert sent[0]["@context"] == entities[0]["@context"]
    assert f"{len(entities)} KeyPerformanceIndicator entities upserted" in capsys.readouterr().out

    # A broker that rejects some entities (207 Multi-Status): the command fails and names them.
    httpserver.clear()
    failed = {"success": [], "errors": [{"entityId": entities[0]["id"], "error": {"title": "BadRequestData"}}]}
    httpserver.expect_request("/ngsi-ld/v1/entityOperations/upsert", method="POST").respond_with_json(
        failed, status=207)
    assert main(argv) == 2
    assert entities[0]["id"] in capsys.readouterr().err


# ---- U4SSC workbook -------------------------------------------------------------------------------------


def test_u4ssc_workbook_per_city_and_year(release: Release, values: pl.DataFrame) -> None:
    from kpis.catalogue import load_catalogue

    assert sorted(p.name for p in release.files("u4ssc_workbook")) == [f"demo-city-{y}.xlsx" for y in (2022, 2023,
                                                                                                         2024)]
    wb = openpyxl.load_workbook(release.path / "u4ssc" / "demo-city-2024.xlsx")
    assert wb.sheetnames == ["KPIs", "Not reported", "About"]
    assert wb.properties.created.year == 1980  # fixed: equal inputs, equal bytes
    kpis = list(wb["KPIs"].iter_rows(values_only=True))
    assert list(kpis[0]) == KPI_HEADER
    u4ssc = [i for i in load_catalogue() if i.framework == "u4ssc"]
    assert len(kpis) - 1 == sum(len(i.data_points) or 1 for i in u4ssc)
    row = dict(zip(KPI_HEADER, next(r for r in kpis if r[0] == "EC:ICT:ICT:1C"), strict=True))
    expected = values.filter(pl.col("indicator_id") == "EC:ICT:ICT:1C", pl.col("year") == 2024).row(0, named=True)
    assert (row["Value"], row["Numerator"], row["Denominator"]) == (expected["value"], expected["numerator"],
                                                                    expected["denominator"])
    assert row["Core/Advanced"] == "Core" and row["Unit"] == "%" and row["Status"] == "computed"
    assert "statistik-stadt" in row["Data sources"] and "row" in row["Data sources"]
    assert row["Data origin"] and row["Notes"].startswith("formula v")

    year = values.filter(pl.col("framework") == "u4ssc", pl.col("year") == 2024)
    not_reported = list(wb["Not reported"].iter_rows(values_only=True))[1:]
    assert len(not_reported) == year.filter(pl.col("status") != "computed").height
    assert all(r[5] for r in not_reported), "a KPI not reported without a reason"
    [validation] = wb["KPIs"].data_validations.dataValidation
    assert validation.formula1.startswith("About!")
    about = [r[1] for r in wb["About"].iter_rows(values_only=True)]
    assert all(q in about for q in DATA_QUALITY)


# ---- CHANGES.md and `citykpi releases` ---------------------------------------------------------------------


def test_changes_name_added_removed_and_changed_rows_with_old_and_new_values(values: pl.DataFrame) -> None:
    computed = values.filter(pl.col("status") == "computed")
    target = computed.row(0, named=True)
    old = (values.with_columns(pl.when((pl.col("indicator_id") == target["indicator_id"])
                                       & (pl.col("year") == target["year"])
                                       & (pl.col("data_point").eq_missing(target["data_point"])))
                               .then(pl.col("value") * 2).otherwise(pl.col("value")).alias("value"))
           .filter(pl.col("indicator_id") != "SC:SH:SI:4C"))  # so the new release "adds" it
    extra = values.head(1).with_columns(pl.lit("XX:YY:ZZ:1C").alias("indicator_id"))
    old = pl.concat([old, extra])
    changes = diff_frames(old, values)
    assert changes.changed.height == 1
    assert changes.added["indicator_id"].unique().to_list() == ["SC:SH:SI:4C"]
    assert changes.removed["indicator_id"].to_list() == ["XX:YY:ZZ:1C"]
    text = render_markdown(changes, "A", "B")
    assert f"{target['value'] * 2:.6g}" in text and f"{target['value']:.6g}" in text and "-50.00%" in text
    assert "## Added" in text and "## Removed" in text and "XX:YY:ZZ:1C" in text
    assert diff_frames(values, values).empty


def test_releases_list_show_and_diff(completed_home: CompletedHome, home_copy: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from pipelines.steps import publish
    from sources.config import load_city_config

    home = Home(home_copy)
    first = load_release(home, "latest")
    second = publish(home, [load_city_config(completed_home.config)], "second")
    capsys.readouterr()
    for command in (["releases"], ["releases", "list"]):  # a table: id, created, cities, years, rows, latest
        assert main(["--home", str(home_copy), *command]) == 0
        rows = capsys.readouterr().out.splitlines()[1:]
        assert [row.split()[0] for row in rows] == [first.release_id, second.release_id]
        assert rows[1].endswith("latest") and "demo-city" in rows[1]

    assert main(["--home", str(home_copy), "releases", "show", "latest"]) == 0
    out = capsys.readouterr().out
    assert f"release   {second.release_id} (latest)" in out and f"previous  {first.release_id}" in out
    for role in REQUIRED_ROLES:
        assert role in out

    assert main(["--home", str(home_copy), "releases", "diff", first.release_id, "latest"]) == 0
    out = capsys.readouterr().out
    assert f"Compared with release {first.release_id}" in out and "0 changed" in out

    assert main(["--home", str(home_copy), "releases", "show", "20990101T000000Z-deadbeef"]) == 2
    assert "no release '20990101T000000Z-deadbeef'" in capsys.readouterr().err


# ---- the DuckDB snapshot (full concurrency test: test_dashboard_reads.py) -----------------------------------

SQL_INTERFACE = {  # docs/sql-interface.md: tables and views with their columns, in order
    "kpi_values": RELEASE_COLUMNS,
    "indicators": ["indicator_id", "framework", "name", "unit", "dimension", "subdimension", "category", "type",
                   "data_points", "sdg_targets", "definition", "formula_text", "has_formula", "source", "direction",
                   "direction_note", "data_point_directions"],
    "cities": ["city_id", "name", "country", "reporting_years"],
    "release": ["release_id", "created_at", "previous_release_id", "kpi_rows", "interface_version"],
    "kpi_report": ["city_id", "city_name", "year", "framework", "indicator_id", "indicator_name", "dimension",
                   "kpi_type", "data_point", "value", "unit", "status", "status_reason", "date", "direction"],
    "coverage": ["city_id", "year", "dimension_group", "indicator_rows", "computed_rows", "computed_percent", "date"],
    "kpi_scores": ["city_id", "year", "indicator_id", "data_point", "dimension", "subdimension", "category", "value",
                   "unit", "target", "direction", "worst", "deadline", "share_pct", "share_capped_pct", "points",
                   "band", "band_label", "official_u4ssc_benchmark", "target_source", "target_citation", "status",
                   "status_reason"],
    "kpi_rollups": ["city_id", "year", "level", "group_path", "dimension", "subdimension", "category", "n_kpis",
                    "n_scored_kpis", "n_scored_data_points", "points_sum", "max_points", "score_pct", "band",
                    "band_label"],
    "kpi_progress": ["city_id", "framework", "indicator_id", "data_point", "method", "base_year", "base_value",
                     "latest_year", "latest_value", "n_years", "target", "direction", "deadline", "target_source",
                     "cagr_actual", "cagr_required", "ratio", "trend", "status", "label", "reason"],
}


def test_snapshot_database_has_the_documented_interface_and_works_anywhere(
        release: Release, values: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    moved = tmp_path / "elsewhere"
    shutil.copytree(release.path, moved)  # copied or served elsewhere: no path inside points back
    monkeypatch.chdir(tmp_path)
    con = duckdb.connect(str(moved / "citykpi.duckdb"), read_only=True)
    try:
        for name, columns in SQL_INTERFACE.items():
            assert [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()] == columns, name
        assert con.execute("SELECT release_id, kpi_rows FROM release").fetchall() == [
            (release.release_id, values.height)]
        assert con.execute("SELECT count(*) FROM kpi_report").fetchone() == (values.height,)
        computed = con.execute("SELECT sum(computed_rows) FROM coverage").fetchone()
        assert computed == (values.filter(pl.col("status") == "computed").height,)
        # `date`: a DATE per row, 1 January of the reporting year (time-series charts need one).
        assert con.execute("SELECT count(*) FROM kpi_report WHERE date <> make_date(year, 1, 1) OR date IS NULL"
                           ).fetchone() == (0,)
        assert con.execute("SELECT DISTINCT typeof(date) FROM coverage").fetchall() == [("DATE",)]
        # `direction`: the data point's own where the catalogue gives one, else the indicator's.
        directions = dict(con.execute("SELECT DISTINCT data_point, direction FROM kpi_report "
                                      "WHERE indicator_id IN ('EC:I:T:4A', 'EN:EN:AQ:1C')").fetchall())
        assert directions == {"private vehicle": "lower_is_better", "public transport": "higher_is_better",
                              "walking": "higher_is_better", "cycling": "higher_is_better",
                              "para transport": "neutral", "PM2.5": "lower_is_better", "PM10": "lower_is_better",
                              "NO2": "lower_is_better", "SO2": "lower_is_better", "O3": "lower_is_better",
                              **{f"{p}, all stations": "lower_is_better"
                                 for p in ("PM2.5", "PM10", "NO2", "SO2", "O3")}}
        assert con.execute("SELECT count(*) FROM kpi_report WHERE direction IS NULL").fetchone() == (0,)
        with pytest.raises(duckdb.Error):
            con.execute("DELETE FROM kpi_values")
    finally:
        con.close()
