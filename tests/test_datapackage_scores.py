"""datapackage.json describes the benchmarking tables (kpi_scores, kpi_rollups, kpi_progress) as well
as kpi_values: checked with `frictionless` on the session's demo release, on the two-city release,
on a corrupted copy, and on packages whose score tables are empty or absent.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import CompletedHome, sha256_bytes
from test_publish_multicity import two_city_home

from kpis.catalogue import load_catalogue
from publish import City, PublishContext, datapackage, kpi_csv, scores
from publish.datapackage import SCORE_COLUMNS, frictionless_type
from publish.releases import Release, load_release
from warehouse.home import Home

SCORE_TABLES = ["kpi_scores", "kpi_rollups", "kpi_progress"]
TABLES = ["kpi_values", *SCORE_TABLES]
# The warehouse's unique keys (0003_scores.sql); data_point is nullable in kpi_scores and kpi_progress.
KEYS = {"kpi_values": ["city_id", "year", "framework", "indicator_id", "data_point"],
        "kpi_scores": ["city_id", "year", "indicator_id", "data_point"],
        "kpi_rollups": ["city_id", "year", "level", "group_path"],
        "kpi_progress": ["city_id", "indicator_id", "data_point", "method"]}


@pytest.fixture(scope="module")
def release(completed_home: CompletedHome) -> Release:
    return load_release(Home(completed_home.home), completed_home.release.name)


def _package(folder: Path) -> dict[str, Any]:
    package: dict[str, Any] = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    return package


def _resource(package: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in package["resources"] if r["name"] == name)


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle))


def _errors(folder: Path) -> list[list[Any]]:
    """Every validation error as [resource, row, field, type, note]."""
    from frictionless import validate

    report = validate(str(folder / "datapackage.json"))
    errors: list[list[Any]] = [["package", None, None, e.type, e.note] for e in report.errors]
    errors += [[task.name, getattr(e, "row_number", None), getattr(e, "field_name", None), e.type, e.note]
               for task in report.tasks for e in task.errors]
    assert report.valid == (not errors)
    return errors


def _writable_copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


def assert_describes_files(folder: Path) -> dict[str, Any]:
    """Every CSV resource matches its file: fields = header, types from the Parquet twin's dtypes,
    size and hash; the score tables' keys are unique. Returns the package."""
    package = _package(folder)
    for table in TABLES:
        if not (folder / f"{table}.csv").exists():
            continue
        resource = _resource(package, table)
        csv_path = folder / resource["path"]
        assert resource["path"] == f"{table}.csv"
        assert (resource["format"], resource["mediatype"], resource["encoding"]) == ("csv", "text/csv", "utf-8")
        assert resource["profile"] == "tabular-data-resource"
        assert resource["bytes"] == csv_path.stat().st_size
        assert resource["hash"] == f"sha256:{sha256_bytes(csv_path)}"
        fields = resource["schema"]["fields"]
        assert [f["name"] for f in fields] == _header(csv_path)
        assert all(f["description"] for f in fields), table
        parquet = pl.read_parquet(folder / f"{table}.parquet")
        if table == "kpi_values":
            parquet = kpi_csv.csv_frame(parquet)  # missing_inputs: a list in Parquet, text in the CSV
        expected = {name: frictionless_type(dtype) for name, dtype in parquet.schema.items()}
        if table == "kpi_values":
            expected["inputs"] = "array"  # JSON text, read as an array
        assert {f["name"]: f["type"] for f in fields} == expected, table
        rows = pl.read_csv(csv_path, infer_schema=False)
        assert not rows.select(KEYS[table]).is_duplicated().any(), f"{table}: key not unique"
        for fk in resource["schema"].get("foreignKeys", []):
            target = _resource(package, fk["reference"]["resource"])
            target_fields = {f["name"] for f in target["schema"]["fields"]}
            assert set(_as_list(fk["reference"]["fields"])) <= target_fields
            assert set(_as_list(fk["fields"])) <= {f["name"] for f in fields}
    return package


def _as_list(fields: str | list[str]) -> list[str]:
    return [fields] if isinstance(fields, str) else fields


def test_dtype_mapping() -> None:
    expected: dict[Any, str] = {pl.Int32: "integer", pl.Int64: "integer", pl.UInt8: "integer", pl.Float64: "number",
                pl.Float32: "number", pl.Decimal(10, 2): "number", pl.Boolean: "boolean", pl.String: "string",
                pl.Categorical: "string", pl.Date: "date", pl.Datetime("us"): "datetime", pl.Time: "time",
                pl.List(pl.String): "array", pl.Struct({"a": pl.Int8}): "object", pl.Null: "any"}
    frame = pl.DataFrame(schema={f"c{n}": dtype for n, dtype in enumerate(expected)})
    assert [frictionless_type(dtype) for dtype in frame.schema.values()] == list(expected.values())
    with pytest.raises(TypeError, match="Binary"):
        frictionless_type(pl.Binary())


# ---- the demo release -------------------------------------------------------------------------------


def test_release_datapackage_describes_the_score_tables(release: Release) -> None:
    assert _errors(release.path) == []
    package = assert_describes_files(release.path)
    assert [r["name"] for r in package["resources"]] == ["kpi_values", "indicators", *SCORE_TABLES]
    manifest = {f["path"]: f for f in release.manifest["files"]}
    for table in SCORE_TABLES:
        resource = _resource(package, table)
        entry = manifest[f"{table}.csv"]
        assert resource["hash"] == f"sha256:{entry['sha256']}" and resource["bytes"] == entry["bytes"]
        assert "never the official U4SSC benchmarks" in resource["description"]
        assert set(SCORE_COLUMNS[table]) == {f["name"] for f in resource["schema"]["fields"]}
        assert pl.read_csv(release.path / resource["path"], infer_schema=False).height > 0  # a real check

    types = {f["name"]: f["type"] for f in _resource(package, "kpi_scores")["schema"]["fields"]}
    assert (types["year"], types["value"], types["points"], types["official_u4ssc_benchmark"], types["band"]) == \
        ("integer", "number", "integer", "boolean", "string")
    assert _resource(package, "kpi_rollups")["schema"]["primaryKey"] == KEYS["kpi_rollups"]
    for table in ("kpi_scores", "kpi_progress"):
        resource = _resource(package, table)
        # data_point really is empty in some rows, so it cannot be part of a Table Schema primary key ...
        assert pl.read_parquet(release.path / f"{table}.parquet")["data_point"].null_count() > 0
        assert "primaryKey" not in resource["schema"]
        # ... and the description names the key instead.
        assert f"Unique key: {', '.join(KEYS[table])};" in resource["description"]
    scores_fk = _resource(package, "kpi_scores")["schema"]["foreignKeys"][0]
    assert scores_fk == {"fields": KEYS["kpi_scores"], "reference": {"resource": "kpi_values",
                                                                     "fields": KEYS["kpi_scores"]}}


def test_frictionless_checks_the_score_rows(release: Release, tmp_path: Path) -> None:
    """The validator reads the score files: a KPI kpi_values does not have, a duplicate roll-up key
    and points outside 1-4 are each reported in their resource."""
    copy = _writable_copy(release.path, tmp_path / "copy")
    scores_csv = copy / "kpi_scores.csv"
    with scores_csv.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    scored = next(n for n, r in enumerate(rows) if r[header.index("status")] == "scored")
    rows[scored][header.index("points")] = "5"
    rows[scored + 1][header.index("indicator_id")] = "XX:XX:XX:9C"
    with scores_csv.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    rollups_csv = copy / "kpi_rollups.csv"
    text = rollups_csv.read_text(encoding="utf-8")
    rollups_csv.write_text(text + text.splitlines(keepends=True)[1], encoding="utf-8")

    found = {(e[0], e[3]) for e in _errors(copy)}
    assert {("kpi_scores", "constraint-error"), ("kpi_scores", "foreign-key"), ("kpi_scores", "hash-count"),
            ("kpi_rollups", "primary-key"), ("kpi_rollups", "hash-count")} <= found, found
    assert not {name for name, _ in found} & {"kpi_values", "kpi_progress", "indicators"}


@pytest.mark.slow
def test_two_city_release_validates(tmp_path_factory: pytest.TempPathFactory) -> None:
    release = load_release(two_city_home(tmp_path_factory.getbasetemp()), "latest")
    assert _errors(release.path) == []
    assert_describes_files(release.path)
    cities = pl.read_csv(release.path / "kpi_scores.csv", infer_schema=False)["city_id"].unique().sort()
    assert cities.to_list() == ["demo-city", "twin-city"]


# ---- packages written by the writers: empty and absent score tables --------------------------------


def _write(release: Release, folder: Path, benchmarks: dict[str, pl.DataFrame] | None) -> Path:
    """kpi_values.csv/.parquet, datapackage.json and the score files, written by the release writers."""
    folder.mkdir()
    frame = pl.read_parquet(release.path / "kpi_values.parquet")
    frame.write_parquet(folder / "kpi_values.parquet")
    context = PublishContext(cities=(City("demo-city", "Demoville", "", ()),), benchmarks=benchmarks)
    catalogue = load_catalogue()
    for writer in (kpi_csv.write_csv, scores.write_scores, datapackage.write_datapackage):  # data_writers order
        writer(frame, catalogue, context, folder)
    return folder


def _benchmarks(release: Release) -> dict[str, pl.DataFrame]:
    return {t: pl.read_parquet(release.path / f"{t}.parquet") for t in SCORE_TABLES}


@pytest.mark.parametrize("case", ["empty", "only_excluded"])
def test_score_tables_without_scores_still_validate(release: Release, tmp_path: Path, case: str) -> None:
    benchmarks = _benchmarks(release)
    if case == "empty":
        benchmarks = {t: frame.clear() for t, frame in benchmarks.items()}
    else:  # no KPI could be scored: every score row excluded, no roll-up scores
        benchmarks["kpi_scores"] = benchmarks["kpi_scores"].filter(pl.col("status") == "excluded")
        benchmarks["kpi_rollups"] = benchmarks["kpi_rollups"].with_columns(
            pl.lit(0, pl.Int32).alias("n_scored_kpis"), pl.lit(0, pl.Int32).alias("n_scored_data_points"),
            pl.lit(0, pl.Int32).alias("max_points"),
            *(pl.lit(None, benchmarks["kpi_rollups"][c].dtype).alias(c)
              for c in ("points_sum", "score_pct", "band", "band_label")))
    folder = _write(release, tmp_path / "release", benchmarks)
    assert _errors(folder) == []
    package = assert_describes_files(folder)
    assert [r["name"] for r in package["resources"]] == ["kpi_values", "indicators", *SCORE_TABLES]
    if case == "empty":
        assert all(len((folder / f"{t}.csv").read_text(encoding="utf-8").splitlines()) == 1 for t in SCORE_TABLES)
    # Equal inputs, equal bytes: the package written again is identical.
    again = _write(release, tmp_path / "again", benchmarks)
    assert (again / "datapackage.json").read_bytes() == (folder / "datapackage.json").read_bytes()


def test_release_without_benchmarking_describes_only_kpi_values(release: Release, tmp_path: Path) -> None:
    folder = _write(release, tmp_path / "release", None)
    assert not any((folder / f"{t}.csv").exists() for t in SCORE_TABLES)
    assert _errors(folder) == []
    package = assert_describes_files(folder)
    assert [r["name"] for r in package["resources"]] == ["kpi_values", "indicators"]
    assert "U4SSC benchmarks" not in package["description"]
    # kpi_values is described the same way with or without benchmarking.
    assert _resource(package, "kpi_values") == _resource(_package(release.path), "kpi_values")
