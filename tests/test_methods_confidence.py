"""Every KPI row says how sure its formula is, how its inputs were made and its known deviation from
the official method (issue #15): kpi_values, the release files' schema and the U4SSC workbook."""

from __future__ import annotations

import json

import polars as pl

from kpis.catalogue import indicators_by_id, load_catalogue
from kpis.engine import AS_PUBLISHED, compute_kpi_values
from publish.datapackage import KPI_COLUMNS as PACKAGE_COLUMNS
from publish.releases import RELEASE_COLUMNS
from publish.u4ssc_workbook import KPI_HEADER, _kpi_row


def observation(variable: str, data_point: str | None, area_type: str, area_id: str, value: float,
                derivation: str | None) -> dict[str, object]:
    return {"city_id": "c", "year": 2023, "variable": variable, "data_point": data_point, "area_type": area_type,
            "area_id": area_id, "value": value, "unit": "ug/m3" if variable.startswith("air") else "person",
            "source_value": None, "source_unit": None, "source_id": "s", "snapshot_id": None,
            "source_record": "r", "derivation": derivation, "failed_check": None}


def test_rows_carry_confidence_method_variant_and_caveats() -> None:
    catalogue = indicators_by_id()
    frame = pl.DataFrame([
        # 11.6.2: district means derived from stations, district populations as published.
        observation("air_concentration_ugm3", "PM2.5", "district", "D1", 10.0, "district_annual_mean@2"),
        observation("air_concentration_ugm3", "PM2.5", "district", "D2", 20.0, "district_annual_mean@2"),
        observation("population", None, "district", "D1", 300.0, None),
        observation("population", None, "district", "D2", 100.0, None),
    ])
    rows = {(r["indicator_id"], r["data_point"]): r for r in compute_kpi_values(
        frame, {"c": [2023]}, [catalogue["11.6.2"], catalogue["11.2.1"]]).iter_rows(named=True)}
    pm25 = rows[("11.6.2", "PM2.5")]
    assert pm25["status"] == "computed" and pm25["value"] == (300 * 10 + 100 * 20) / 400  # 12.5
    assert pm25["confidence"] == "from_knowledge"
    assert pm25["method_variant"] == f"district_annual_mean@2; {AS_PUBLISHED}"
    assert pm25["caveats"] == catalogue["11.6.2"].compute.caveat  # type: ignore[union-attr]
    pm10 = rows[("11.6.2", "PM10")]
    assert pm10["status"] == "missing" and pm10["method_variant"] is None and pm10["confidence"] == "from_knowledge"
    transit = rows[("11.2.1", "total")]
    assert transit["caveats"] and transit["caveats"].startswith("500 m / 1 km walking distance along the street")
    assert "otherwise straight-line buffers" in transit["caveats"]
    straight = rows[("11.2.1", "total, straight line")]  # its own formula, its own caveat
    assert straight["caveats"] and straight["caveats"].startswith("straight-line 500 m / 1 km buffers")

    # Every catalogue entry has one of the documented confidence words.
    words = {r["confidence"] for r in compute_kpi_values(frame, {"c": [2023]}).iter_rows(named=True)}
    assert words <= set(PACKAGE_COLUMNS["confidence"].constraints["enum"]) and None not in words
    assert len(load_catalogue()) > 0


def test_release_files_and_workbook_carry_the_columns() -> None:
    for name in ("confidence", "method_variant", "caveats"):
        assert name in RELEASE_COLUMNS and PACKAGE_COLUMNS[name].description
    indicator = indicators_by_id()["EC:ICT:ICT:1C"]
    row = {"numerator": 1.0, "denominator": 2.0, "value": 50.0, "unit": "%", "status": "computed",
           "status_reason": None, "formula": "a / b", "formula_version": "1", "inputs": json.dumps([]),
           "confidence": "formula_read", "method_variant": AS_PUBLISHED, "caveats": None}
    cells = dict(zip(KPI_HEADER, [*_kpi_row(indicator, None, row, []), None, "", None, None, "", ""], strict=True))
    assert cells["Confidence"] == "formula_read" and cells["Method variant"] == AS_PUBLISHED
    assert cells["Caveats"] == "" and cells["Notes"].startswith("formula v1")
