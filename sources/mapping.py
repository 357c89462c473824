"""Turn a source's text table into canonical observation rows, as its config mapping says.

Each row keeps where it came from (`source_record`: file and row) and its published value and
unit. Nothing is dropped or kept silently: empty cells, missing-value markers, unmapped codes and
rows repeated cell for cell are counted in the report; a non-numeric value, a bad year or two
different values for the same key stop the load with an error naming the file, row and field.
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from canonical.errors import SourceDataError
from canonical.units import conversion_factor, days_in_year_factor
from canonical.variables import VARIABLES
from sources.config import DEFAULT_MISSING_VALUES, AggregatePeriods, ObservationsMapping, SourceConfig, VariableMapping
from sources.parsers.numbers import shown as shown_text
from sources.parsers.tabular import CsvStream, TextTable

OBSERVATION_SCHEMA: dict[str, Any] = {
    "city_id": pl.String, "year": pl.Int32, "variable": pl.String, "data_point": pl.String,
    "area_type": pl.String, "area_id": pl.String, "value": pl.Float64, "unit": pl.String,
    "source_value": pl.Float64, "source_unit": pl.String, "source_id": pl.String,
    "snapshot_id": pl.String, "source_record": pl.String, "derivation": pl.String,
}
# A mean of sub-annual rows needs this share of the year's periods: the rule of the hourly readings'
# annual means (warehouse/derive.py MIN_COVERAGE; a test keeps the two equal).
MEAN_MIN_COVERAGE = 0.75
MAX_PERIOD_YEARS = 20  # '2010-2014' is a period; '2018-07' (to 2107) is not
EXAMPLES = 5  # row numbers listed per report item
_YEAR = re.compile(r"[0-9]{4}(\.0+)?", re.ASCII)
# A period spanning years: '2010-2014', '2018/19', '2018-2019', '2010–14'.
_DATE = re.compile(r"([0-9]{1,2})[./-]([0-9]{1,2})[./-]([0-9]{4})", re.ASCII)
_SPAN = re.compile(r"([0-9]{4})\s*[-/\u2013]\s*([0-9]{4}|[0-9]{2})", re.ASCII)


MAX_LISTED_CODES = 100
_YEAR_CACHE = 4096  # distinct year texts whose parse is kept
OTHER_CODES = "(other codes)"


def _cut(text: str, limit: int = 60) -> str:
    """A cell text as the report keeps it: at most `limit` characters."""
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass
class MappingReport:
    rows_read: int = 0
    observations: int = 0
    empty_cells: int = 0
    duplicate_rows: int = 0  # rows identical cell for cell to an earlier row (among those `where` keeps)
    unmapped_codes: dict[str, int] = field(default_factory=dict)
    filtered_rows: int = 0  # rows a `where` filter left out
    rows_without_year: int = 0  # rows whose year field does not match `year_pattern`
    incomplete_aggregates: list[str] = field(default_factory=list)  # withheld: too few periods
    duplicate_examples: list[str] = field(default_factory=list)  # 'row 5 = row 3', the first few
    duplicates_dropped: int = 0  # with duplicates: drop
    repeated_observations: int = 0  # a row giving an observation already read, with an equal value
    repeated_examples: list[str] = field(default_factory=list)
    missing_markers: dict[str, int] = field(default_factory=dict)  # marker -> cells (also in empty_cells)
    rows_without_weight: int = 0  # weighted mean: rows with a value but an empty weight, left out
    year_periods: dict[str, int] = field(default_factory=dict)  # '2010-2014 -> 2014': rows
    # City values an aggregate withheld (year, variable, data_point, reason): the KPI rows that needed
    # them name the reason (kpis/store.py:read_withheld reads them from the stored load report).
    withheld_values: list[dict[str, Any]] = field(default_factory=list)

    def count_unmapped(self, code: str) -> None:
        """Count a code the config does not list; past MAX_LISTED_CODES distinct codes, as one 'other' entry
        (a hostile file with a million codes must not become a million-entry manifest)."""
        code = _cut(code)
        if code not in self.unmapped_codes and len(self.unmapped_codes) >= MAX_LISTED_CODES:
            code = OTHER_CODES
        self.unmapped_codes[code] = self.unmapped_codes.get(code, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rows_read": self.rows_read, "observations": self.observations,
                               "empty_cells": self.empty_cells, "duplicate_rows": self.duplicate_rows,
                               "unmapped_codes": dict(sorted(self.unmapped_codes.items()))}
        # Keys of the optional mapping features appear only when they did something.
        optional: dict[str, Any] = {
            "duplicate_examples": self.duplicate_examples, "duplicates_dropped": self.duplicates_dropped,
            "repeated_observations": self.repeated_observations, "repeated_examples": self.repeated_examples,
            "missing_markers": dict(sorted(self.missing_markers.items())), "filtered_rows": self.filtered_rows,
            "rows_without_year": self.rows_without_year, "rows_without_weight": self.rows_without_weight,
            "year_periods": dict(sorted(self.year_periods.items())),
            "incomplete_aggregates": sorted(self.incomplete_aggregates), "withheld_values": self.withheld_values}
        out.update({key: value for key, value in optional.items() if value})
        return out


# A table held as rows (`read_csv`, Excel, JSON, pages) or a CSV streamed row by row (`open_csv`).
Table = TextTable | CsvStream


def _labels(table: Table) -> dict[int, str]:
    """Row number -> how the row is shown, for tables whose rows carry labels (API pages)."""
    if isinstance(table, CsvStream) or table.row_labels is None:
        return {}
    return dict(zip(table.row_numbers, table.row_labels, strict=True))


@dataclass(frozen=True)
class _Year:
    year: int
    period: str | None = None  # the published period when it spans years ('2010-2014')


def _parse_year(table: Table, text: str, row: int, mapping: ObservationsMapping, source_id: str,
                row_label: str | None = None) -> _Year:
    field_name = mapping.year_field
    cleaned = text.strip()

    def fail(message: str) -> SourceDataError:
        return SourceDataError(table.display_name, message, row=row, field=field_name, source_id=source_id,
                               row_label=row_label)

    span = _SPAN.fullmatch(cleaned)
    if span is not None:
        start = int(span.group(1))
        end = int(span.group(2))
        if len(span.group(2)) == 2:  # '2018/19', '1999-00': the first later year ending in those digits
            end += start // 100 * 100 + (100 if start // 100 * 100 + end <= start else 0)
        if not start < end <= start + MAX_PERIOD_YEARS:
            raise fail(f"year {shown_text(text)} is neither a year nor a period of up to {MAX_PERIOD_YEARS} years "
                       "(e.g. '2018-07' for a month would need year_pattern)")
        if mapping.period_year is None:
            raise fail(f"year {shown_text(text)} is a period of several years; set period_year "
                       "(start or end) to say which reporting year it is assigned to")
        year, period = (start if mapping.period_year == "start" else end), cleaned
    elif _YEAR.fullmatch(cleaned):
        year, period = int(float(cleaned)), None
    else:
        raise fail(f"year {shown_text(text)} is not an integer")
    if not 1900 <= year <= 2100:
        raise fail(f"year {year} is outside 1900-2100")
    return _Year(year, period)


@dataclass(slots=True)
class _Parts:
    """The rows an aggregated observation combines, kept small: a value (and period, weight) per row, the
    first and last row, the periods of several years met. A big file's rows cost 8-24 bytes each here."""

    key: str  # the variables entry
    field_name: str
    values: array[float] = field(default_factory=lambda: array("d"))
    periods: list[str | None] = field(default_factory=list)  # empty unless `periods` names a field
    weights: array[float] = field(default_factory=lambda: array("d"))  # empty unless weight_field
    first_row: int = 0
    last_row: int = 0
    year_periods: set[str] = field(default_factory=set)

    def add(self, value: float, row_number: int, period: str | None, weight: float | None,
            year_period: str | None) -> None:
        if not self.values:
            self.first_row = self.last_row = row_number
        self.values.append(value)
        self.first_row, self.last_row = min(self.first_row, row_number), max(self.last_row, row_number)
        if period is not None:
            self.periods.append(period)
        if weight is not None:
            self.weights.append(weight)
        if year_period is not None:
            self.year_periods.add(year_period)


def _row_filter(table: Table, mapping: ObservationsMapping, source_id: str) -> list[tuple[int, set[str]]]:
    return [(table.column_index(name, source_id=source_id), {wanted} if isinstance(wanted, str) else set(wanted))
            for name, wanted in mapping.where.items()]


def _natural(text: str) -> list[tuple[int, int | str]]:
    """Sort key putting '2' before '10' (month numbers)."""
    return [(0, int(piece)) if piece.isdigit() else (1, piece) for piece in re.split(r"([0-9]+)", text) if piece]


def _in_order(periods: set[str | None]) -> list[str]:
    """Period values in time order as far as they tell: dates like 30/06/2020 by year, then month and day
    (day first when some first number is above 12, month first when some second one is); else natural order."""
    texts = [period or "" for period in periods]
    dates = [match for text in texts if (match := _DATE.fullmatch(text))]
    if texts and len(dates) == len(texts):
        day_first = any(int(m.group(1)) > 12 for m in dates)
        month_first = not day_first and any(int(m.group(2)) > 12 for m in dates)
        if day_first or month_first:
            def key(m: re.Match[str]) -> tuple[int, int, int]:
                day, month = (m.group(1), m.group(2)) if day_first else (m.group(2), m.group(1))
                return int(m.group(3)), int(month), int(day)
            return [m.group(0) for m in sorted(dates, key=key)]
    return sorted(texts, key=_natural)


def _combine(method: str, values: list[float], weights: list[float] | None = None) -> float | None:
    if method == "count":
        return float(len(values))
    if method == "sum":
        return math.fsum(values)
    if weights is not None:
        total = math.fsum(weights)
        return math.fsum(v * w for v, w in zip(values, weights, strict=True)) / total if total > 0 else None
    return math.fsum(values) / len(values)


def map_observations(table: Table, source: SourceConfig, *, city_id: str, snapshot_id: str) -> tuple[
        pl.DataFrame, MappingReport]:
    """Observations of a table as its source's mapping says, with the report of every row's fate.

    A streamed CSV (`CsvStream`) is read twice and never held: once for the rows' 8-byte hashes (rows
    repeated cell for cell), once to map; an aggregate keeps only its parts (`_Parts`)."""
    mapping = source.observations
    assert mapping is not None
    year_regex = re.compile(mapping.year_pattern) if mapping.year_pattern else None
    steps = mapping.aggregate_steps
    periods = mapping.resolved_periods
    try:
        year_col = table.column_index(mapping.year_field, source_id=source.id) if mapping.year_field else None
        area_col = table.column_index(mapping.area_field, source_id=source.id) if mapping.area_field else None
        filters = _row_filter(table, mapping, source.id)
        period_col = table.column_index(periods.field, source_id=source.id) if periods else None
        weight_col = table.column_index(mapping.weight_field, source_id=source.id) if mapping.weight_field else None
        if mapping.layout == "wide":
            columns = {key: [(name, table.column_index(name, source_id=source.id)) for name in (vm.columns or [key])]
                       for key, vm in mapping.variables.items()}
        else:
            code_col = table.column_index(mapping.variable_field or "", source_id=source.id)
            value_col = table.column_index(mapping.value_field or "", source_id=source.id)
    except SourceDataError:
        if isinstance(table, CsvStream):
            for _ in table.rows():  # a bad row is named first, as when the whole file is read before mapping
                pass
        raise
    repeats = _StreamRepeats(table, filters) if isinstance(table, CsvStream) else _HeldRepeats(table, filters)
    report = MappingReport(rows_read=repeats.rows_read)
    markers = {m.strip().casefold(): m for m in (DEFAULT_MISSING_VALUES if mapping.missing_values is None
                                                  else mapping.missing_values)}
    factors = {key: conversion_factor(vm.unit, VARIABLES[vm.variable].unit, variable=vm.variable,
                                      data_point=vm.data_point) for key, vm in mapping.variables.items()}
    records: dict[tuple[Any, ...], dict[str, Any]] = {}
    parts: dict[tuple[Any, ...], _Parts] = {}
    labels = _labels(table)

    def shown(row_number: int) -> str:
        return labels.get(row_number, str(row_number))

    def error(message: str, row_number: int, field_name: str | None) -> SourceDataError:
        return SourceDataError(table.display_name, message, row=row_number, field=field_name,
                               source_id=source.id, row_label=labels.get(row_number))

    def empty(text: str) -> bool:
        """An empty cell or a missing-value marker (counted per marker)."""
        stripped = text.strip()
        if not stripped:
            return True
        marker = markers.get(stripped.casefold())
        if marker is None:
            return False
        report.missing_markers[marker] = report.missing_markers.get(marker, 0) + 1
        return True

    def number(text: str, row_number: int, vm: VariableMapping, field_name: str) -> float:
        try:
            return table.number_format.parse(text)
        except ValueError as exc:
            raise error(f"{exc} (mapped to {vm.variable})", row_number, field_name) from None

    def published_value(row_number: int, cells: list[str], vm: VariableMapping, texts: list[tuple[str, str]]
                        ) -> float | None:
        """The value of a row for one mapping, in the mapping's unit; None when empty."""
        present = [(name, text) for name, text in texts if not empty(text)]
        if not present:
            report.empty_cells += 1
            return None
        if steps and steps[0] == "count":
            return 1.0  # the row counts; its cell is a code, not a number
        value = math.fsum(number(text, row_number, vm, name) for name, text in present)
        if vm.share_of is not None:
            base_text = cells[table.column_index(vm.share_of, source_id=source.id)]
            if empty(base_text):
                report.empty_cells += 1
                return None
            share = value / 100.0 if vm.share_in == "percent" else value
            value = share * number(base_text, row_number, vm, vm.share_of)
        return value

    years: dict[str, _Year] = {}  # year text -> its parse (a big file repeats a few years on every row)

    def row_year(row_number: int, cells: list[str]) -> _Year | None:
        if mapping.year is not None:
            return _Year(mapping.year)
        assert year_col is not None and mapping.year_field is not None
        text = cells[year_col]
        if year_regex is not None:
            match = year_regex.search(text.strip())
            if match is None:
                report.rows_without_year += 1
                return None
            text = match.group(1)
        year = years.get(text)
        if year is None:
            year = _parse_year(table, text, row_number, mapping, source.id, labels.get(row_number))
            if len(years) < _YEAR_CACHE:
                years[text] = year
        if year.period is not None:
            assigned = f"{year.period} -> {year.year}"
            report.year_periods[assigned] = report.year_periods.get(assigned, 0) + 1
        return year

    def area_of(row_number: int, cells: list[str]) -> tuple[str, str]:
        if area_col is None:
            return "city", city_id
        area_text = cells[area_col].strip()
        if not area_text:
            raise error("area code is empty", row_number, mapping.area_field)
        return mapping.area_type, area_text

    def row_weight(row_number: int, cells: list[str], vm: VariableMapping) -> float | None:
        assert weight_col is not None and mapping.weight_field is not None
        text = cells[weight_col]
        if empty(text):
            report.rows_without_weight += 1
            return None
        weight = number(text, row_number, vm, mapping.weight_field)
        if weight < 0:
            raise error(f"weight {shown_text(text)} is negative", row_number, mapping.weight_field)
        return weight

    def emit(row_number: int, cells: list[str], year: _Year, key: str, texts: list[tuple[str, str]]) -> None:
        vm = mapping.variables[key]
        published = published_value(row_number, cells, vm, texts)
        if published is None:
            return
        field_name = "+".join(name for name, _ in texts)
        area_type, area_id = area_of(row_number, cells)
        obs_key = (year.year, vm.variable, vm.data_point, area_type, area_id)
        if steps:
            weight = row_weight(row_number, cells, vm) if weight_col is not None else None
            if weight_col is not None and weight is None:
                return
            period = cells[period_col].strip() if period_col is not None else None
            entry = parts.get(obs_key)
            if entry is None:
                entry = parts[obs_key] = _Parts(key, field_name)
            entry.add(published, row_number, period, weight, year.period)
            return
        where = f"{table.display_name} row {shown(row_number)} field {field_name!r}"
        if year.period is not None:
            where += f", period {year.period!r} assigned to {year.year} (period_year: {mapping.period_year})"
        record = _record(vm, factors[key], published, year.year, area_type, area_id, where)
        previous = records.get(obs_key)
        if previous is None:
            records[obs_key] = record
        elif math.isclose(previous["value"], record["value"], rel_tol=1e-9, abs_tol=1e-12):
            # Compared in the canonical unit: two fields may publish the same figure in different units.
            report.repeated_observations += 1
            if len(report.repeated_examples) < EXAMPLES:
                report.repeated_examples.append(f"{where} = {previous['source_record']}")
        else:
            raise error(
                f"conflicting values for {vm.variable}{'/' + vm.data_point if vm.data_point else ''} "
                f"{area_id} {year.year}: {previous['source_value']} {previous['source_unit']} "
                f"({previous['source_record']}) vs {published} {vm.unit}", row_number, field_name)

    def _record(vm: VariableMapping, factor: float, published: float, year: int, area_type: str, area_id: str,
                source_record: str) -> dict[str, Any]:
        variable = VARIABLES[vm.variable]
        return {
            "city_id": city_id, "year": year, "variable": vm.variable, "data_point": vm.data_point,
            "area_type": area_type, "area_id": area_id, "unit": variable.unit,
            "value": published * factor * days_in_year_factor(vm.unit, year),  # daily rates: the year's days
            "source_value": published, "source_unit": vm.unit, "source_id": source.id,
            "snapshot_id": snapshot_id, "source_record": source_record, "derivation": None,
        }

    def duplicate(position: int, row_number: int, cells: list[str]) -> bool:
        """Whether to skip this row: identical rows are counted, listed and then kept, dropped or refused."""
        first = repeats.first_row(position, cells, row_number)
        if first is None:
            return False
        report.duplicate_rows += 1
        if len(report.duplicate_examples) < EXAMPLES:
            report.duplicate_examples.append(f"row {shown(row_number)} = row {shown(first)}")
        if mapping.duplicates == "error":
            raise error(f"row repeats row {shown(first)} cell for cell (duplicates: error; set duplicates: keep "
                        "if such rows are separate records, drop if they are a publishing artefact)",
                        row_number, None)
        if mapping.duplicates == "drop":
            report.duplicates_dropped += 1
            return True
        return False

    # A count's periods are those of every row of the year, before `where`: a day with accidents but no
    # death is a day with zero deaths, not a missing day.
    counting = steps[:1] == ["count"] and period_col is not None
    count_coverage: dict[int, set[str | None]] | None = {} if counting else None
    for position, (cells, row_number) in enumerate(_rows_of(table)):
        if count_coverage is not None:
            covered = _quiet_year(table, mapping, year_regex, year_col, cells, row_number)
            if covered is not None and period_col is not None:
                count_coverage.setdefault(covered, set()).add(cells[period_col].strip())
        if any(cells[index] not in wanted for index, wanted in filters):
            report.filtered_rows += 1
            continue
        if duplicate(position, row_number, cells):
            continue
        if mapping.layout == "wide":
            year = row_year(row_number, cells)
            if year is None:
                continue
            for key in mapping.variables:
                emit(row_number, cells, year, key, [(name, cells[index]) for name, index in columns[key]])
        else:
            code = cells[code_col].strip()
            if code not in mapping.variables:
                report.count_unmapped(code)
                continue
            year = row_year(row_number, cells)
            if year is None:
                continue
            emit(row_number, cells, year, code, [(mapping.value_field or "", cells[value_col])])
    for obs_key, contributions in parts.items():
        vm = mapping.variables[contributions.key]
        year, _, _, area_type, area_id = obs_key
        label = f"{vm.variable}{'[' + vm.data_point + ']' if vm.data_point else ''} {_cut(area_id)} {year}"
        present = count_coverage.get(year, set()) if count_coverage is not None else set(contributions.periods)
        combined = _aggregate(mapping, steps, periods, contributions, present, label, report)
        if combined is None:
            if area_type == "city" and report.incomplete_aggregates:
                report.withheld_values.append({"year": year, "variable": vm.variable, "data_point": vm.data_point,
                                               "reason": f"{source.id}: {report.incomplete_aggregates[-1]}"})
            continue
        published, how = combined
        spans = sorted(contributions.year_periods)
        where = (f"{table.display_name} {how} of {len(contributions.values)} rows (rows "
                 f"{shown(contributions.first_row)}-{shown(contributions.last_row)}) "
                 f"field {contributions.field_name!r}")
        if periods is not None:
            listed = _in_order(present)
            where += f", {len(listed)} of {periods.per_year} {periods.field} values ({listed[0]} .. {listed[-1]})"
        if spans:
            where += f", period {', '.join(map(repr, spans))} assigned to {year} (period_year: {mapping.period_year})"
        records[obs_key] = _record(vm, factors[contributions.key], published, year, area_type, area_id, where)
    report.observations = len(records)
    frame = pl.DataFrame(list(records.values()), schema=OBSERVATION_SCHEMA, orient="row") if records else \
        pl.DataFrame(schema=OBSERVATION_SCHEMA)
    return frame, report


def _rows_of(table: Table) -> Iterator[tuple[list[str], int]]:
    """A table's rows in order: cells and file row number (a streamed CSV is read from its start)."""
    if isinstance(table, CsvStream):
        return table.rows()
    return zip(table.rows, table.row_numbers, strict=True)


class _HeldRepeats:
    """Rows repeated cell for cell in a table held in memory (found by `_identical_rows`)."""

    def __init__(self, table: TextTable, filters: list[tuple[int, set[str]]]) -> None:
        self.rows_read = len(table.rows)
        self._firsts = _identical_rows(table, filters)  # position of a row -> position of the first equal
        self._numbers = table.row_numbers

    def first_row(self, position: int, cells: list[str], row_number: int) -> int | None:
        """The row number of the first row equal to this one, or None."""
        earlier = self._firsts.get(position)
        return None if earlier is None else self._numbers[earlier]


class _StreamRepeats:
    """Rows repeated cell for cell in a streamed CSV: a first pass keeps one 64-bit hash per row (8 bytes,
    sorted in place to find the hashes met twice); the mapping pass then keeps the cells of only the rows
    with such a hash, so a hash collision never makes two different rows duplicates. The first pass also
    reads (and so checks) every row before any is mapped, as `read_csv` does."""

    def __init__(self, table: CsvStream, filters: list[tuple[int, set[str]]]) -> None:
        hashes = array("q")
        rows = 0
        for cells, _ in table.rows():
            rows += 1
            if all(cells[index] in wanted for index, wanted in filters):
                hashes.append(hash(tuple(cells)))
        self.rows_read = rows
        self._candidates = _repeated_hashes(hashes)
        self._firsts: dict[tuple[str, ...], int] = {}

    def first_row(self, position: int, cells: list[str], row_number: int) -> int | None:
        if not self._candidates:
            return None
        key = tuple(cells)
        if hash(key) not in self._candidates:
            return None
        first = self._firsts.setdefault(key, row_number)
        return None if first == row_number else first


def _repeated_hashes(hashes: array[int]) -> set[int]:
    """The values met more than once among `hashes` (sorted in place: no copy of the 8 bytes a row)."""
    if len(hashes) < 2:
        return set()
    ordered = np.frombuffer(hashes, dtype=np.int64)
    ordered.sort()
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    return set(np.unique(repeated).tolist())


def _identical_rows(table: TextTable, filters: list[tuple[int, set[str]]]) -> dict[int, int]:
    """Rows (among those `where` keeps) equal cell for cell to an earlier one: position -> the first's position.

    One 64-bit hash per row (8 bytes, not the row) finds the candidates; rows with equal hashes are then
    compared cell by cell, so a hash collision never makes two different rows duplicates (where a reader
    left unread columns out, those columns are compared by the hash of the whole row only)."""
    positions = array("q")
    hashes = array("q")
    for position, cells in enumerate(table.rows):
        if all(cells[index] in wanted for index, wanted in filters):
            positions.append(position)
            hashes.append(hash(tuple(cells)) if table.row_hashes is None else table.row_hashes[position])
    if len(hashes) < 2:
        return {}
    frame = pl.DataFrame({"h": pl.Series(hashes, dtype=pl.Int64), "p": pl.Series(positions, dtype=pl.Int64)})
    candidates = frame.filter(pl.col("h").is_duplicated()).sort("p")
    del frame, positions, hashes
    repeats: dict[int, int] = {}
    firsts: dict[tuple[int | str, ...], int] = {}  # among the candidates only
    full = dict(zip(candidates["p"], candidates["h"], strict=True))
    for position in candidates["p"]:
        # The cells (those the reader kept) and the hash over all cells must both be equal.
        first = firsts.setdefault((full[position], *table.rows[position]), position)
        if first != position:
            repeats[position] = first
    return repeats


def _quiet_year(table: Table, mapping: ObservationsMapping, year_regex: re.Pattern[str] | None,
                year_col: int | None, cells: list[str], row_number: int) -> int | None:
    """A row's year for coverage only: None where it has none (the row itself is judged later, if used)."""
    if mapping.year is not None:
        return mapping.year
    assert year_col is not None
    text = cells[year_col]
    if year_regex is not None:
        match = year_regex.search(text.strip())
        if match is None:
            return None
        text = match.group(1)
    try:
        return _parse_year(table, text, row_number, mapping, "").year
    except SourceDataError:
        return None


def _aggregate(mapping: ObservationsMapping, steps: list[str], periods: AggregatePeriods | None,
               contributions: _Parts, present: set[str | None], label: str, report: MappingReport
               ) -> tuple[float, str] | None:
    """The combined value of one observation's rows and how it was made; None when withheld (listed)."""
    needed = 0
    if periods is not None:
        if periods.required is not None:
            needed, rule = periods.required, f"periods.required {periods.required}"
        elif "mean" in steps[-1:]:
            needed = math.ceil(MEAN_MIN_COVERAGE * periods.per_year - 1e-9)
            rule = f"a mean needs {round(MEAN_MIN_COVERAGE * 100)} % of {periods.per_year}"
        else:
            needed, rule = periods.per_year, f"a {steps[-1]} needs all {periods.per_year}"
        if len(present) < needed:
            report.incomplete_aggregates.append(
                f"{label}: {len(present)} of {periods.per_year} {periods.field} values; withheld "
                f"({rule}: at least {needed})")
            return None
    weighted = mapping.weight_field is not None
    if len(steps) == 1:
        value = _combine(steps[0], list(contributions.values), list(contributions.weights) if weighted else None)
        how = f"weighted mean (weight {mapping.weight_field!r})" if weighted else steps[0]
    else:
        by_period: dict[str | None, list[int]] = {}  # period -> positions in contributions
        for index, period in enumerate(contributions.periods):
            by_period.setdefault(period, []).append(index)
        firsts: list[float] = []
        for period, group in by_period.items():
            weights = [contributions.weights[i] for i in group] if weighted else None
            first = _combine(steps[0], [contributions.values[i] for i in group], weights)
            if first is None:
                report.incomplete_aggregates.append(f"{label}: weights of {period} sum to 0; that period left out")
            else:
                firsts.append(first)
        if len(firsts) < needed:  # periods whose weights sum to 0 do not count as covered
            report.incomplete_aggregates.append(f"{label}: {len(firsts)} periods with a value; withheld "
                                                f"(at least {needed})")
            return None
        value = _combine(steps[1], firsts) if firsts else None
        inner = f"weighted mean (weight {mapping.weight_field!r})" if weighted else steps[0]
        how = f"{steps[1]} over {len(by_period)} {periods.field if periods else 'period'} values of the {inner}"
    if value is None:
        report.incomplete_aggregates.append(f"{label}: weights sum to 0; withheld")
        return None
    return value, how
