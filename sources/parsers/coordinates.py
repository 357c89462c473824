"""Coordinates written as portals write them, and point features from tables (CSV, Excel).

- decimal degrees or projected metres, with a decimal point or a decimal comma (`439579,3291`);
- degree-minute-second text: `3°42'43.91"O`, `40°25'25.98"N`, `-3 42 43.91`, `W 3° 42.5'`; the
  hemisphere letter may be N, S, E, W or the Spanish/Portuguese/French O (oeste/ouest = west).
  S, W and O make the value negative; a minus sign together with S/W/O is refused as ambiguous.
"""

from __future__ import annotations

import re

import numpy as np
import shapely

from canonical.errors import SourceDataError
from sources.config import PointsMapping
from sources.parsers.features import FeatureSet, RawFeature
from sources.parsers.numbers import NumberFormat
from sources.parsers.tabular import TextTable

_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
# A hemisphere letter before the number or after it (after a digit or a mark, so 'n/a' is no 'N').
_HEMISPHERE = re.compile(r"^\s*([NSEWO])(?=[\s\d])|(?<=[\d\s°º˚'’′\"”″])([NSEWO])\s*$", re.IGNORECASE)
_NEGATIVE = {"S", "W", "O"}
_AXIS_LETTERS = {"lat": {"N", "S"}, "lon": {"E", "W", "O"}}
_DMS_MARKS = re.compile(r"[°º˚'’′\"”″:]|\d\s+\d")
_DMS_LEFTOVER = set("°º˚'’′\"”″: ")


def parse_number(text: str, number_format: NumberFormat) -> float:
    """A plain number in the table's format, else with the other decimal separator (columns of one
    file can differ: Madrid publishes degrees with '.' and metres with ',' in the same rows)."""
    try:
        return number_format.parse(text)
    except ValueError:
        other = NumberFormat(decimal="," if number_format.decimal == "." else ".", thousands="")
        return other.parse(text)


def parse_degrees(text: str, axis: str, number_format: NumberFormat) -> float:
    """Decimal degrees or degree-minute-second text -> signed decimal degrees. Raises ValueError."""
    raw = text.strip()
    if not raw:
        raise ValueError("empty")
    letter = None
    match = _HEMISPHERE.search(raw)
    body = raw
    if match:
        letter = (match.group(1) or match.group(2)).upper()
        body = (raw[:match.start()] + raw[match.end():]).strip()
        if letter not in _AXIS_LETTERS[axis]:
            wanted, other = ("longitude", "latitude") if axis == "lon" else ("latitude", "longitude")
            raise ValueError(f"{raw!r} is a {other} (hemisphere {letter}), not a {wanted}")
    negative = body.startswith("-")
    body = body.lstrip("+-").strip()
    if not _DMS_MARKS.search(body):
        value = parse_number(body, number_format)
    else:
        parts = _NUMBER.findall(body)
        leftover = _NUMBER.sub("", body)
        if not parts or len(parts) > 3 or not set(leftover) <= _DMS_LEFTOVER:
            raise ValueError(f"{raw!r} is not degrees, minutes and seconds")
        numbers = [float(p.replace(",", ".")) for p in parts]
        if any(n >= 60 for n in numbers[1:]):
            raise ValueError(f"{raw!r} has minutes or seconds of 60 or more")
        value = numbers[0] + sum(n / 60 ** i for i, n in enumerate(numbers[1:], start=1))
    if negative and letter in _NEGATIVE:
        raise ValueError(f"{raw!r} has both a minus sign and hemisphere {letter}")
    if negative or letter in _NEGATIVE:
        value = -value
    return value


def table_features(table: TextTable, mapping: PointsMapping, source_id: str) -> FeatureSet:
    """One point per row from lon/lat (degrees or DMS) or x/y (projected, CRS from the config)."""
    if mapping.lon_field is not None and mapping.lat_field is not None:
        fields, degrees = (mapping.lon_field, mapping.lat_field), True
    elif mapping.x_field is not None and mapping.y_field is not None:
        fields, degrees = (mapping.x_field, mapping.y_field), False
    else:
        raise SourceDataError(table.display_name, "points from a table need lon_field/lat_field or "
                              "x_field/y_field (+ crs) in the points block", source_id=source_id)
    columns = [table.column_index(name, source_id=source_id) for name in fields]
    axes = ("lon", "lat")
    coords: list[tuple[float, float] | None] = []
    problems: list[str | None] = []
    for row in table.rows:
        first, second = (row[i] for i in columns)
        try:
            if degrees:
                xy = (parse_degrees(first, axes[0], table.number_format),
                      parse_degrees(second, axes[1], table.number_format))
            else:
                xy = (parse_number(first, table.number_format), parse_number(second, table.number_format))
            coords.append(xy)
            problems.append(None)
        except ValueError as exc:
            text = str(exc)
            coords.append(None)
            problems.append("no coordinates (empty cells)" if text == "empty" or "'' is not" in text else
                            f"{fields[0]}/{fields[1]}: {text}")
    # Points made in one vectorised call: tables of grid cells run to 100,000 rows.
    found = [xy for xy in coords if xy is not None]
    made = iter(shapely.points(np.array(found, dtype=np.float64).reshape(-1, 2)).tolist())
    features = []
    for position, row in enumerate(table.rows):
        geometry = next(made) if coords[position] is not None else None
        features.append(RawFeature(table.row_numbers[position], f"row {table.row_label(position)}",
                                   dict(zip(table.columns, row, strict=True)), geometry, problems[position]))
    return FeatureSet(table.display_name, features, None, "", list(table.columns), table.number_format,
                      swap_hint=f"swap `{'lon_field' if degrees else 'x_field'}` and "
                                f"`{'lat_field' if degrees else 'y_field'}`")
