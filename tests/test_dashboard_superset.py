"""The starter Superset dashboard (dashboards/superset/): a valid import, and every query runs on a release.

The export's YAML files are checked against the fields Superset's import schemas require (superset
6.1: ImportV1DatabaseSchema, ImportV1DatasetSchema, ImportV1ChartSchema, ImportV1DashboardSchema,
MetadataSchema) and their cross references (uuids). Then every dataset's SQL runs against the demo
release's citykpi.duckdb and must return rows with exactly the columns the dataset declares, and
every chart's query, built the way Superset builds it from the chart's params (x axis with its time
grain, group-by columns, saved metrics; raw tables' columns), must return rows with values.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import uuid
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest
import yaml
from conftest import REPO_ROOT, CompletedHome

from canonical.sqltext import ident

EXPORT = REPO_ROOT / "dashboards" / "superset" / "citykpi"
REQUIRED = {  # folder -> fields the Superset 6.1 import schema marks required
    "databases": ("database_name", "sqlalchemy_uri", "uuid", "version"),
    "datasets": ("table_name", "uuid", "version", "database_uuid"),
    "charts": ("slice_name", "viz_type", "uuid", "version", "dataset_uuid"),
    "dashboards": ("dashboard_title", "uuid", "version"),
}
# Chart types whose query this test knows how to build (a new type must teach it first).
TIME_SERIES = {"echarts_timeseries_bar", "echarts_timeseries_line"}
KNOWN_TYPES = {*TIME_SERIES, "table", "big_number_total"}
NO_OP_FILTER = {"clause": "WHERE", "comparator": "No filter", "expressionType": "SIMPLE",
                "operator": "TEMPORAL_RANGE", "subject": "date"}


def load(folder: str) -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted((EXPORT / folder).rglob("*.yaml")):
        found[path.relative_to(EXPORT).as_posix()] = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert found, f"no {folder} in {EXPORT}"
    return found


def by_uuid(folder: str) -> dict[str, dict[str, Any]]:
    return {entry["uuid"]: entry for entry in load(folder).values()}


def chart_columns(params: dict[str, Any]) -> list[str]:
    """The dataset columns a chart reads (besides its metrics)."""
    if params["viz_type"] == "table":
        return list(params["all_columns"])
    if params["viz_type"] in TIME_SERIES:
        return [params["x_axis"], *params["groupby"]]
    return []


def chart_metrics(params: dict[str, Any]) -> list[str]:
    if params["viz_type"] == "big_number_total":
        return [params["metric"]]
    return list(params.get("metrics") or [])


def chart_query(chart: dict[str, Any], dataset: dict[str, Any]) -> str:
    """The chart's query over its virtual dataset, as Superset builds it from the saved params."""
    params = chart["params"]
    metrics = {m["metric_name"]: m["expression"] for m in dataset["metrics"]}
    source = f"({dataset['sql']}) AS dataset"
    if params["viz_type"] == "table":
        assert params["query_mode"] == "raw", chart["slice_name"]
        return f"SELECT {', '.join(ident(c) for c in params['all_columns'])} FROM {source}"
    selected = [f"{metrics[m]} AS {ident(m)}" for m in chart_metrics(params)]
    if params["viz_type"] == "big_number_total":
        return f"SELECT {', '.join(selected)} FROM {source}"
    x_axis = ident(params["x_axis"])
    if params.get("time_grain_sqla") == "P1Y":
        x_axis = f"date_trunc('year', {x_axis})"
    dimensions = [f"{x_axis} AS __x", *(ident(c) for c in params["groupby"])]
    return f"SELECT {', '.join([*dimensions, *selected])} FROM {source} GROUP BY ALL ORDER BY ALL"


def test_the_export_is_a_superset_dashboard_import() -> None:
    metadata = yaml.safe_load((EXPORT / "metadata.yaml").read_text(encoding="utf-8"))
    assert metadata["version"] == "1.0.0" and metadata["type"] == "Dashboard"
    for folder, fields in REQUIRED.items():
        for name, entry in load(folder).items():
            assert all(entry.get(f) is not None for f in fields), (name, [f for f in fields if entry.get(f) is None])
            uuid.UUID(entry["uuid"])
            assert entry["version"] == "1.0.0", name
    uuids = [e["uuid"] for folder in REQUIRED for e in load(folder).values()]
    assert len(uuids) == len(set(uuids))

    databases, datasets, charts = by_uuid("databases"), by_uuid("datasets"), by_uuid("charts")
    (database,) = databases.values()
    assert database["sqlalchemy_uri"].startswith("duckdb:///")
    assert database["extra"]["engine_params"]["connect_args"] == {"read_only": True}  # never the writer's lock
    for dataset in datasets.values():
        assert dataset["database_uuid"] in databases and dataset["sql"].strip().upper().startswith("SELECT")
        declared = {c["column_name"]: c for c in dataset["columns"]}
        if dataset["main_dttm_col"]:
            assert declared[dataset["main_dttm_col"]]["is_dttm"], dataset["table_name"]
    for chart in charts.values():
        params = chart["params"]
        assert params["viz_type"] == chart["viz_type"] in KNOWN_TYPES, chart["slice_name"]
        dataset = datasets[chart["dataset_uuid"]]
        columns = {c["column_name"] for c in dataset["columns"]}
        assert set(chart_columns(params)) <= columns, (chart["slice_name"], set(chart_columns(params)) - columns)
        assert set(chart_metrics(params)) <= {m["metric_name"] for m in dataset["metrics"]}, chart["slice_name"]
        assert all(f == NO_OP_FILTER for f in params.get("adhoc_filters", [])), (
            f"{chart['slice_name']}: a filter this test does not translate into its query")
        if params["viz_type"] in TIME_SERIES and params.get("time_grain_sqla"):
            assert next(c for c in dataset["columns"] if c["column_name"] == params["x_axis"])["is_dttm"]

    (dashboard,) = load("dashboards").values()
    shown = {v["meta"]["uuid"] for v in dashboard["position"].values() if isinstance(v, dict) and v["type"] == "CHART"}
    assert shown == set(charts), "every chart is on the dashboard and every dashboard chart exists"
    for key, node in dashboard["position"].items():
        if isinstance(node, dict):
            assert all(child in dashboard["position"] for child in node.get("children", [])), key


def make_zip_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_zip", REPO_ROOT / "dashboards" / "superset" / "make_zip.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_zip_points_the_database_at_a_release(tmp_path: Path) -> None:
    make_zip = make_zip_module()
    output = tmp_path / "dashboard.zip"
    assert make_zip.main(["--database", "/srv/citykpi/releases/latest/citykpi.duckdb", "-o", str(output)]) == 0
    with zipfile.ZipFile(output) as archive:
        names = archive.namelist()
        database = yaml.safe_load(archive.read("citykpi/databases/citykpi_release.yaml"))
    files = sorted(p.relative_to(EXPORT.parent).as_posix() for p in EXPORT.rglob("*.yaml"))
    assert sorted(names) == files and "citykpi/metadata.yaml" in names  # one root folder, as Superset exports
    assert database["sqlalchemy_uri"] == "duckdb:////srv/citykpi/releases/latest/citykpi.duckdb"
    assert make_zip.main(["--database", "releases/latest/citykpi.duckdb", "-o", str(output)]) == 2  # relative


def test_every_dashboard_query_runs_against_the_demo_release(completed_home: CompletedHome) -> None:
    database = completed_home.release / "citykpi.duckdb"
    datasets, charts = by_uuid("datasets"), by_uuid("charts")
    con = duckdb.connect(str(database), read_only=True)
    try:
        years = sorted(r[0] for r in con.execute("SELECT DISTINCT year FROM kpi_values").fetchall())
        for dataset in datasets.values():
            name, sql = dataset["table_name"], dataset["sql"]
            described = [(r[0], r[1]) for r in con.execute(f"DESCRIBE ({sql})").fetchall()]
            assert described == [(c["column_name"], c["type"]) for c in dataset["columns"]], name
            assert con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0] > 0, f"{name}: no rows"  # type: ignore[index]
            for metric in dataset["metrics"]:
                value = con.execute(f"SELECT {metric['expression']} FROM ({sql})").fetchone()
                assert value is not None and value[0] is not None, (name, metric["metric_name"])
        for chart in charts.values():
            params, query = chart["params"], chart_query(chart, datasets[chart["dataset_uuid"]])
            result = con.execute(query)
            columns = [d[0] for d in result.description]
            rows = result.fetchall()
            assert rows, f"{chart['slice_name']}: no rows\n{query}"
            for metric in chart_metrics(params):
                assert any(r[columns.index(metric)] is not None for r in rows), (chart["slice_name"], metric)
            if params["viz_type"] in TIME_SERIES and params.get("time_grain_sqla") == "P1Y":
                # The date column makes a time series: one point per reporting year, on 1 January.
                points = sorted({r[0] for r in rows})  # date_trunc gives a TIMESTAMP: compare the day
                assert [p.date() if isinstance(p, dt.datetime) else p for p in points] == [
                    dt.date(y, 1, 1) for y in years], (chart["slice_name"], points)
    finally:
        con.close()


@pytest.mark.parametrize("path", ["relative/citykpi.duckdb", "/tmp/it's.duckdb"])
def test_make_zip_refuses_paths_it_cannot_write_safely(path: str) -> None:
    with pytest.raises(ValueError, match="database path"):
        make_zip_module().database_uri(path)
