"""Turn a source's text table into canonical observation rows, as its config mapping says.

Each row keeps where it came from (`source_record`: file and row) and its published value and
unit. Nothing is dropped silently: empty cells and unmapped codes are counted in the report;
a non-numeric value, a bad year or two different values for the same key stop the load with
an error naming the file, row and field.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from sources.config import ObservationsMapping, SourceConfig, VariableMapping
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
    filtered_rows: int = 0  # rows a `where` filter left out
    rows_without_year: int = 0  # rows whose year field does not match `year_pattern`
    incomplete_aggregates: list[str] = field(default_factory=list)  # dropped by `aggregate_complete`

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rows_read": self.rows_read, "observations": self.observations,
                               "empty_cells": self.empty_cells, "duplicate_rows": self.duplicate_rows,
                               "unmapped_codes": dict(sorted(self.unmapped_codes.items()))}
        # Keys of the optional mapping features appear only when they did something.
        if self.filtered_rows:
            out["filtered_rows"] = self.filtered_rows
        if self.rows_without_year:
            out["rows_without_year"] = self.rows_without_year
        if self.incomplete_aggregates:
            out["incomplete_aggregates"] = sorted(self.incomplete_aggregates)
        return out


def _labels(table: TextTable) -> dict[int, str]:
    """Row number -> how the row is shown, for tables whose rows carry labels (API pages)."""
    if table.row_labels is None:
        return {}
    return dict(zip(table.row_numbers, table.row_labels, strict=True))


def _parse_year(table: TextTable, text: str, row: int, field_name: str, source_id: str,
                row_label: str | None = None) -> int:
    cleaned = text.strip()
    try:
        year = int(float(cleaned)) if cleaned and float(cleaned).is_integer() else int(cleaned)
    except ValueError:
        raise SourceDataError(table.display_name, f"year {text!r} is not an integer", row=row,
                              field=field_name, source_id=source_id, row_label=row_label) from None
    if not 1900 <= year <= 2100:
        raise SourceDataError(table.display_name, f"year {year} is outside 1900-2100", row=row,
                              field=field_name, source_id=source_id, row_label=row_label)
    return year


@dataclass
class _Part:
    """One row's contribution to an aggregated observation."""

    published: float
    row_number: int
    period: str | None


def _row_filter(table: TextTable, mapping: ObservationsMapping, source_id: str) -> list[tuple[int, set[str]]]:
    return [(table.column_index(name, source_id=source_id), {wanted} if isinstance(wanted, str) else set(wanted))
            for name, wanted in mapping.where.items()]


def map_observations(table: TextTable, source: SourceConfig, *, city_id: str, snapshot_id: str) -> tuple[
        pl.DataFrame, MappingReport]:
    mapping = source.observations
    assert mapping is not None
    report = MappingReport(rows_read=len(table.rows))
    year_col = table.column_index(mapping.year_field, source_id=source.id) if mapping.year_field else None
    year_regex = re.compile(mapping.year_pattern) if mapping.year_pattern else None
    area_col = table.column_index(mapping.area_field, source_id=source.id) if mapping.area_field else None
    filters = _row_filter(table, mapping, source.id)
    complete = mapping.aggregate_complete
    period_col = table.column_index(complete.field, source_id=source.id) if complete else None
    factors = {key: conversion_factor(vm.unit, VARIABLES[vm.variable].unit, variable=vm.variable,
                                      data_point=vm.data_point) for key, vm in mapping.variables.items()}
    records: dict[tuple[Any, ...], dict[str, Any]] = {}
    parts: dict[tuple[Any, ...], tuple[VariableMapping, str, list[_Part]]] = {}
    duplicate_rows: set[int] = set()  # file rows repeating an observation already read
    seen_rows: set[tuple[str, ...]] = set()
    labels = _labels(table)

    def shown(row_number: int) -> str:
        return labels.get(row_number, str(row_number))

    def number(text: str, row_number: int, vm: VariableMapping, field_name: str) -> float:
        try:
            return table.number_format.parse(text)
        except ValueError as exc:
            raise SourceDataError(table.display_name, f"{exc} (mapped to {vm.variable})", row=row_number,
                                  field=field_name, source_id=source.id, row_label=labels.get(row_number)) from None

    def published_value(row_number: int, cells: list[str], vm: VariableMapping, texts: list[tuple[str, str]]
                        ) -> float | None:
        """The value of a row for one mapping, in the mapping's unit; None when empty."""
        present = [(name, text) for name, text in texts if text.strip()]
        if not present:
            report.empty_cells += 1
            return None
        value = sum(number(text, row_number, vm, name) for name, text in present)
        if vm.share_of is not None:
            base_text = cells[table.column_index(vm.share_of, source_id=source.id)]
            if not base_text.strip():
                report.empty_cells += 1
                return None
            share = value / 100.0 if vm.share_in == "percent" else value
            value = share * number(base_text, row_number, vm, vm.share_of)
        return value

    def row_year(row_number: int, cells: list[str]) -> int | None:
        if mapping.year is not None:
            return mapping.year
        assert year_col is not None and mapping.year_field is not None
        text = cells[year_col]
        if year_regex is not None:
            match = year_regex.search(text.strip())
            if match is None:
                report.rows_without_year += 1
                return None
            text = match.group(1)
        return _parse_year(table, text, row_number, mapping.year_field, source.id, labels.get(row_number))

    def area_of(row_number: int, cells: list[str]) -> tuple[str, str]:
        if area_col is None:
            return "city", city_id
        area_text = cells[area_col].strip()
        if not area_text:
            raise SourceDataError(table.display_name, "area code is empty", row=row_number,
                                  field=mapping.area_field, source_id=source.id, row_label=labels.get(row_number))
        return mapping.area_type, area_text

    def emit(row_number: int, cells: list[str], year: int, key: str, texts: list[tuple[str, str]]) -> None:
        vm = mapping.variables[key]
        published = published_value(row_number, cells, vm, texts)
        if published is None:
            return
        field_name = "+".join(name for name, _ in texts)
        area_type, area_id = area_of(row_number, cells)
        obs_key = (year, vm.variable, vm.data_point, area_type, area_id)
        if mapping.aggregate is not None:
            period = cells[period_col] if period_col is not None else None
            entry = parts.setdefault(obs_key, (vm, field_name, []))
            entry[2].append(_Part(published, row_number, period))
            return
        record = _record(vm, factors[key], published, year, area_type, area_id,
                         f"{table.display_name} row {shown(row_number)} field {field_name!r}")
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
                row=row_number, field=field_name, source_id=source.id, row_label=labels.get(row_number))

    def _record(vm: VariableMapping, factor: float, published: float, year: int, area_type: str, area_id: str,
                source_record: str) -> dict[str, Any]:
        variable = VARIABLES[vm.variable]
        return {
            "city_id": city_id, "year": year, "variable": vm.variable, "data_point": vm.data_point,
            "area_type": area_type, "area_id": area_id, "value": published * factor, "unit": variable.unit,
            "source_value": published, "source_unit": vm.unit, "source_id": source.id,
            "snapshot_id": snapshot_id, "source_record": source_record, "derivation": None,
        }

    if mapping.layout == "wide":
        columns = {key: [(name, table.column_index(name, source_id=source.id)) for name in (vm.columns or [key])]
                   for key, vm in mapping.variables.items()}
    else:
        code_col = table.column_index(mapping.variable_field or "", source_id=source.id)
        value_col = table.column_index(mapping.value_field or "", source_id=source.id)
    for cells, row_number in zip(table.rows, table.row_numbers, strict=True):
        if any(cells[index] not in wanted for index, wanted in filters):
            report.filtered_rows += 1
            continue
        if mapping.aggregate is not None:
            fingerprint = tuple(cells)
            if fingerprint in seen_rows:  # a row repeated cell for cell would be counted twice
                duplicate_rows.add(row_number)
                continue
            seen_rows.add(fingerprint)
        if mapping.layout == "wide":
            year = row_year(row_number, cells)
            if year is None:
                continue
            for key in mapping.variables:
                emit(row_number, cells, year, key, [(name, cells[index]) for name, index in columns[key]])
        else:
            code = cells[code_col].strip()
            if code not in mapping.variables:
                report.unmapped_codes[code] = report.unmapped_codes.get(code, 0) + 1
                continue
            year = row_year(row_number, cells)
            if year is None:
                continue
            emit(row_number, cells, year, code, [(mapping.value_field or "", cells[value_col])])
    for obs_key, (vm, field_name, contributions) in parts.items():
        year, _, _, area_type, area_id = obs_key
        label = f"{vm.variable}{'[' + vm.data_point + ']' if vm.data_point else ''} {area_id} {year}"
        if complete is not None:
            periods = {p.period for p in contributions}
            if len(periods) < complete.count:
                report.incomplete_aggregates.append(
                    f"{label}: {len(periods)} of {complete.count} {complete.field} values")
                continue
        values = [p.published for p in contributions]
        total = math.fsum(values)
        published = total if mapping.aggregate == "sum" else total / len(values)
        rows = sorted(p.row_number for p in contributions)
        key = next(k for k, m in mapping.variables.items() if m is vm)
        records[obs_key] = _record(vm, factors[key], published, year, area_type, area_id,
                                   f"{table.display_name} {mapping.aggregate} of {len(rows)} rows "
                                   f"(rows {shown(rows[0])}-{shown(rows[-1])}) field {field_name!r}")
    report.observations = len(records)
    report.duplicate_rows = len(duplicate_rows)
    frame = pl.DataFrame(list(records.values()), schema=OBSERVATION_SCHEMA, orient="row") if records else \
        pl.DataFrame(schema=OBSERVATION_SCHEMA)
    return frame, report
