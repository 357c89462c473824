"""Eurostat payloads as text tables: JSON-stat (2.0, and the 1.x the old service returned), SDMX-CSV
and SDMX-ML (2.1 structure-specific and generic data).

Every reader returns one row per observation with a column per dimension (its code), `year`
(the first four digits of the time period) and `value`, so an urban audit table such as
`urb_cpop1` maps with `layout: long`, `variable_field: indic_ur`, `area_field: cities`.
SDMX-ML is parsed with defusedxml: a DTD, entity declarations (the "billion laughs" bomb) and
external references are refused, never expanded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree

from canonical.errors import TOO_DEEP, SourceDataError
from sources.config import CsvOptions
from sources.parsers.numbers import NumberFormat
from sources.parsers.tabular import TextTable, _cell_text, read_csv

TIME_DIMENSIONS = ("time", "TIME_PERIOD", "TIME", "Tid", "year")


def year_of(period: str) -> str:
    """'2019', '2019-01', '2019Q1', '2019-W05' -> '2019'; anything else -> ''."""
    period = period.strip()
    return period[:4] if period[:4].isdigit() else ""


# ---- JSON-stat ---------------------------------------------------------------------------------


def read_jsonstat(path: Path, display_name: str) -> TextTable:
    try:
        payload = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceDataError(display_name, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise SourceDataError(display_name, TOO_DEEP) from None
    dataset, ids, sizes = _jsonstat_dataset(payload, display_name)
    dims = dataset["dimension"]
    codes = [_category_codes(dims.get(dim), dim, size, display_name) for dim, size in zip(ids, sizes, strict=True)]
    time_dim = _time_dimension(dataset, ids)
    values = dataset.get("value")
    status = dataset.get("status")
    cells: Iterator[tuple[int, Any]]
    if isinstance(values, list):
        cells = iter(enumerate(values))
    elif isinstance(values, dict):
        try:
            cells = iter(sorted((int(k), v) for k, v in values.items()))
        except ValueError:
            raise SourceDataError(display_name, "JSON-stat 'value' keys must be flat indexes") from None
    else:
        raise SourceDataError(display_name, "JSON-stat dataset has no 'value'")
    total = 1
    for size in sizes:
        total *= size
    columns = [*ids, "year", "value", "status"]
    rows: list[list[str]] = []
    numbers: list[int] = []
    for index, value in cells:
        if not 0 <= index < total:
            raise SourceDataError(display_name, f"value index {index} is outside the cube ({total} cells)")
        position, rest = [], index
        for size in reversed(sizes):
            rest, offset = divmod(rest, size)
            position.append(offset)
        position.reverse()
        row = [codes[d][p] for d, p in enumerate(position)]
        period = row[ids.index(time_dim)] if time_dim else ""
        flag = status.get(str(index)) if isinstance(status, dict) else (
            status[index] if isinstance(status, list) and index < len(status) else status)
        rows.append([*row, year_of(period), _cell_text(value), _cell_text(flag if isinstance(flag, str) else None)])
        numbers.append(index + 1)
    return TextTable(path, display_name, columns, rows, numbers, NumberFormat())


def _jsonstat_dataset(payload: Any, display_name: str) -> tuple[dict[str, Any], list[str], list[int]]:
    if isinstance(payload, dict) and payload.get("class") == "dataset" and "id" in payload:
        dataset = payload  # JSON-stat 2.0
        ids, sizes = payload.get("id"), payload.get("size")
    elif isinstance(payload, dict) and len(payload) >= 1 and all(isinstance(v, dict) for v in payload.values()) \
            and any("dimension" in v for v in payload.values()):
        # JSON-stat 1.x bundle: {"<name>": {"value", "dimension": {"id", "size", ...}}}; the first dataset.
        dataset = next(v for v in payload.values() if "dimension" in v)
        ids, sizes = dataset["dimension"].get("id"), dataset["dimension"].get("size")
    else:
        raise SourceDataError(display_name, "expected a JSON-stat dataset (class 'dataset' with id/size/dimension)")
    if not (isinstance(ids, list) and isinstance(sizes, list) and len(ids) == len(sizes)
            and all(isinstance(s, int) and s >= 0 for s in sizes) and isinstance(dataset.get("dimension"), dict)):
        raise SourceDataError(display_name, "JSON-stat 'id' and 'size' do not describe the dimensions")
    return dataset, [str(i) for i in ids], sizes


def _category_codes(dimension: Any, dim: str, size: int, display_name: str) -> list[str]:
    category = dimension.get("category") if isinstance(dimension, dict) else None
    if not isinstance(category, dict):
        raise SourceDataError(display_name, f"dimension {dim!r} has no category")
    index = category.get("index")
    if isinstance(index, list):
        codes = [str(c) for c in index]
    elif isinstance(index, dict):
        codes = [""] * len(index)
        for code, position in index.items():
            if not isinstance(position, int) or not 0 <= position < len(index):
                raise SourceDataError(display_name, f"dimension {dim!r}: bad index {position!r} for {code!r}")
            codes[position] = str(code)
    elif isinstance(category.get("label"), dict) and len(category["label"]) == 1:
        codes = [str(next(iter(category["label"])))]
    else:
        raise SourceDataError(display_name, f"dimension {dim!r} has no category index")
    if len(codes) != size:
        raise SourceDataError(display_name, f"dimension {dim!r} has {len(codes)} categories, size says {size}")
    return codes


def _time_dimension(dataset: dict[str, Any], ids: list[str]) -> str | None:
    role = dataset.get("role") or dataset.get("dimension", {}).get("role") or {}
    times = role.get("time") if isinstance(role, dict) else None
    if isinstance(times, list) and times and times[0] in ids:
        return str(times[0])
    return next((dim for dim in ids if dim in TIME_DIMENSIONS), None)


# ---- SDMX-CSV ----------------------------------------------------------------------------------


def read_sdmx_csv(path: Path, options: CsvOptions | None, display_name: str) -> TextTable:
    """SDMX-CSV 1.0/2.0 (comma-separated, dimension columns, TIME_PERIOD, OBS_VALUE) plus `year`."""
    table = read_csv(path, options or CsvOptions(delimiter=","), display_name)
    if "TIME_PERIOD" in table.columns and "year" not in table.columns:
        at = table.columns.index("TIME_PERIOD")
        table.columns.append("year")
        for row in table.rows:
            row.append(year_of(row[at]))
    return table


# ---- SDMX-ML -----------------------------------------------------------------------------------


def read_sdmx_ml(path: Path, display_name: str) -> TextTable:
    """Observations of SDMX-ML 2.1 structure-specific or generic data, with their series keys."""
    try:
        root = defusedxml.ElementTree.parse(path, forbid_dtd=True).getroot()
    except defusedxml.DefusedXmlException as exc:
        raise SourceDataError(display_name, f"refused unsafe XML ({type(exc).__name__}: {exc}); "
                              "SDMX-ML never needs a DTD or entities") from None
    except ParseError as exc:
        raise SourceDataError(display_name, f"not well-formed XML: {exc}") from None
    records: list[dict[str, str]] = []
    datasets = [e for e in root.iter() if _local(e.tag) == "DataSet"]
    if not datasets:
        raise SourceDataError(display_name, "no SDMX DataSet element (is this SDMX-ML data?)")
    for dataset in datasets:
        _walk(dataset, {}, records)
    columns: list[str] = []
    for record in records:
        for key in record:
            if key not in columns:
                columns.append(key)
    if "TIME_PERIOD" in columns and "year" not in columns:
        columns.append("year")
        for record in records:
            record["year"] = year_of(record.get("TIME_PERIOD", ""))
    rows = [[record.get(c, "") for c in columns] for record in records]
    return TextTable(path, display_name, columns, rows, list(range(1, len(rows) + 1)), NumberFormat())


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _plain_attributes(element: Element) -> dict[str, str]:
    """Attributes without a namespace (dimension and attribute values in structure-specific data)."""
    return {k: v for k, v in element.attrib.items() if not k.startswith("{")}


def _walk(element: Element, inherited: dict[str, str], records: list[dict[str, str]]) -> None:
    for child in element:
        name = _local(child.tag)
        if name in ("SeriesKey", "Attributes", "ObsKey", "ObsDimension", "ObsValue"):
            continue
        values = {**inherited, **_plain_attributes(child)}
        for part in child:
            part_name = _local(part.tag)
            if part_name in ("SeriesKey", "ObsKey", "Attributes"):  # generic: <Value id= value=/>
                for item in part:
                    if "id" in item.attrib:
                        values[item.attrib["id"]] = item.attrib.get("value", "")
            elif part_name == "ObsDimension":
                values[part.attrib.get("id", "TIME_PERIOD")] = part.attrib.get("value", "")
            elif part_name == "ObsValue":
                values["OBS_VALUE"] = part.attrib.get("value", "")
        if name == "Obs":
            values.pop("value", None)
            records.append(values)
        else:
            _walk(child, values, records)
