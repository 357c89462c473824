"""Turn a source's text table into canonical observation rows, as its config mapping says.

Each row keeps where it came from (`source_record`: file and row) and its published value and
unit. Nothing is dropped silently: empty cells and unmapped codes are counted in the report;
a non-numeric value, a bad year or two different values for the same key stop the load with
an error naming the file, row and field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from sources.config import SourceConfig, VariableMapping
from sources.errors import SourceDataError
from sources.parsers.tabular import TextTable
from warehouse.units import conversion_factor
from warehouse.variables import VARIABLES

OBSERVATION_SCHEMA: dict[str, Any] = {
    "city_id": pl.String, "year": pl.Int32, "variable": pl.String, "data_point": pl.String,
    "area_type": pl.String, "area_id": pl.String, "value": pl.Float64, "unit": pl.String,
    "source_value": pl.Float64, "source_unit": pl.String, "source_id": pl.String,
    "snapshot_id": pl.String, "source_record": pl.String, "derivation": pl.String,
}


@dataclass
class MappingReport:
    rows_read: int = 0
    observations: int = 0
    empty_cells: int = 0
    duplicate_rows: int = 0
    unmapped_codes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"rows_read": self.rows_read, "observations": self.observations,
                "empty_cells": self.empty_cells, "duplicate_rows": self.duplicate_rows,
                "unmapped_codes": dict(sorted(self.unmapped_codes.items()))}


def _parse_year(table: TextTable, text: str, row: int, field_name: str, source_id: str) -> int:
    cleaned = text.strip()
    try:
        year = int(float(cleaned)) if cleaned and float(cleaned).is_integer() else int(cleaned)
    except ValueError:
        raise SourceDataError(table.display_name, f"year {text!r} is not an integer", row=row,
                              field=field_name, source_id=source_id) from None
    if not 1900 <= year <= 2100:
        raise SourceDataError(table.display_name, f"year {year} is outside 1900-2100", row=row,
                              field=field_name, source_id=source_id)
    return year


def map_observations(table: TextTable, source: SourceConfig, *, city_id: str, snapshot_id: str) -> tuple[
        pl.DataFrame, MappingReport]:
    mapping = source.observations
    assert mapping is not None
    report = MappingReport(rows_read=len(table.rows))
    year_col = table.column_index(mapping.year_field, source_id=source.id)
    area_col = table.column_index(mapping.area_field, source_id=source.id) if mapping.area_field else None
    records: dict[tuple[Any, ...], dict[str, Any]] = {}
    duplicate_rows: set[int] = set()  # file rows repeating an observation already read

    def emit(row_number: int, cells: list[str], vm: VariableMapping, text: str, field_name: str) -> None:
        if not text.strip():
            report.empty_cells += 1
            return
        try:
            published = table.number_format.parse(text)
        except ValueError as exc:
            raise SourceDataError(table.display_name, f"{exc} (mapped to {vm.variable})", row=row_number,
                                  field=field_name, source_id=source.id) from None
        variable = VARIABLES[vm.variable]
        factor = conversion_factor(vm.unit, variable.unit, variable=vm.variable, data_point=vm.data_point)
        year = _parse_year(table, cells[year_col], row_number, mapping.year_field, source.id)
        area_type, area_id = ("city", city_id)
        if area_col is not None:
            area_text = cells[area_col].strip()
            if not area_text:
                raise SourceDataError(table.display_name, "area code is empty", row=row_number,
                                      field=mapping.area_field, source_id=source.id)
            area_type, area_id = mapping.area_type, area_text
        record: dict[str, Any] = {
            "city_id": city_id, "year": year, "variable": vm.variable, "data_point": vm.data_point,
            "area_type": area_type, "area_id": area_id, "value": published * factor, "unit": variable.unit,
            "source_value": published, "source_unit": vm.unit, "source_id": source.id,
            "snapshot_id": snapshot_id,
            "source_record": f"{table.display_name} row {row_number} field {field_name!r}",
            "derivation": None,
        }
        obs_key = (year, vm.variable, vm.data_point, area_type, area_id)
        previous = records.get(obs_key)
        if previous is None:
            records[obs_key] = record
        elif math.isclose(previous["value"], record["value"], rel_tol=1e-9, abs_tol=1e-12):
            # Compared in the canonical unit: two fields may publish the same figure in different units.
            duplicate_rows.add(row_number)
        else:
            raise SourceDataError(
                table.display_name,
                f"conflicting values for {vm.variable}{'/' + vm.data_point if vm.data_point else ''} "
                f"{area_id} {year}: {previous['source_value']} {previous['source_unit']} "
                f"({previous['source_record']}) vs {published} {vm.unit}",
                row=row_number, field=field_name, source_id=source.id)

    if mapping.layout == "wide":
        columns = {name: table.column_index(name, source_id=source.id) for name in mapping.variables}
        for cells, row_number in zip(table.rows, table.row_numbers, strict=True):
            for name, vm in mapping.variables.items():
                emit(row_number, cells, vm, cells[columns[name]], name)
    else:
        code_col = table.column_index(mapping.variable_field or "", source_id=source.id)
        value_col = table.column_index(mapping.value_field or "", source_id=source.id)
        for cells, row_number in zip(table.rows, table.row_numbers, strict=True):
            code = cells[code_col].strip()
            vm_or_none = mapping.variables.get(code)
            if vm_or_none is None:
                report.unmapped_codes[code] = report.unmapped_codes.get(code, 0) + 1
                continue
            emit(row_number, cells, vm_or_none, cells[value_col], mapping.value_field or "")
    report.observations = len(records)
    report.duplicate_rows = len(duplicate_rows)
    frame = pl.DataFrame(list(records.values()), schema=OBSERVATION_SCHEMA, orient="row") if records else \
        pl.DataFrame(schema=OBSERVATION_SCHEMA)
    return frame, report

