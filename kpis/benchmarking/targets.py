"""Target tables: what each indicator (and data point) is scored and tracked against.

Two tables, same CSV columns:

- the project default, ``kpis/targets/default.csv``, built only from public references (WHO 2021
  air quality guidelines, universal-access SDG targets, SDSN optimum values). It is NOT the official
  U4SSC benchmark: those sit in a locked tab of the U4SSC data collection template and are not public.
- a city's own table, ``<config stem>.targets.csv`` beside the city config (``cities/oslo.yaml`` ->
  ``cities/oslo.targets.csv``; `sources.config.LoadedConfig.targets_path` says where, and the caller
  passes that path here). It overrides the default row by row, keyed by (indicator, data point).
  CSV rather than YAML because a folder of city configs is read as every ``*.yaml`` in it, and a
  spreadsheet is where a city officer keeps targets anyway.

Columns: indicator_id, data_point (empty when the indicator has none), target, direction
(``higher`` | ``lower`` is better; must agree with the catalogue's `direction` where that is higher or
lower is better, and picks the side for a target band or a context figure), worst (lower-is-better
only; empty = not scored), deadline (year, empty = 2030), official_u4ssc_benchmark (true/false,
empty = false), source (citation, required), note.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from canonical.errors import CitykpiError
from kpis.catalogue import DIRECTION_WORDS, Indicator, indicators_by_id

DEFAULT_DEADLINE = 2030
DEFAULT_TABLE = "kpis/targets/default.csv"
CSV_COLUMNS = ("indicator_id", "data_point", "target", "direction", "worst", "deadline",
               "official_u4ssc_benchmark", "source", "note")
REQUIRED_COLUMNS = ("indicator_id", "data_point", "target", "direction", "source")
TARGET_SCHEMA: dict[str, Any] = {
    "indicator_id": pl.String, "data_point": pl.String, "target": pl.Float64, "direction": pl.String,
    "worst": pl.Float64, "deadline": pl.Int32, "official_u4ssc_benchmark": pl.Boolean, "source": pl.String,
    "note": pl.String, "target_source": pl.String,
}
_BOOLEANS = {"": False, "false": False, "no": False, "0": False, "true": True, "yes": True, "1": True}


class TargetsError(CitykpiError):
    """A target table is invalid; the message names the file, the row and the field."""

    def __init__(self, path: Path | str, message: str, *, row: int | None = None, field: str | None = None) -> None:
        where = [str(path)] + ([f"row {row}"] if row is not None else []) + ([f"field {field!r}"] if field else [])
        super().__init__(f"{', '.join(where)}: {message}")


@dataclass(frozen=True)
class _Cell:
    path: str
    row: int  # 1-based file line, the header being line 1

    def fail(self, message: str, field: str | None = None) -> TargetsError:
        return TargetsError(self.path, message, row=self.row, field=field)


def _number(cell: _Cell, field: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise cell.fail(f"not a number: {text!r}", field) from None
    if not math.isfinite(value):
        raise cell.fail(f"must be finite, got {text!r}", field)
    return value


def _parse_row(cell: _Cell, raw: Mapping[str, str], catalogue: Mapping[str, Indicator]) -> dict[str, Any]:
    text = {k: (raw.get(k) or "").strip() for k in CSV_COLUMNS}
    indicator = catalogue.get(text["indicator_id"])
    if indicator is None:
        raise cell.fail(f"unknown indicator {text['indicator_id']!r} (see `citykpi indicators`)", "indicator_id")
    data_point = text["data_point"] or None
    if indicator.data_points and data_point not in indicator.data_points:
        raise cell.fail(f"{indicator.id} needs one of its data points {indicator.data_points}, got {data_point!r}",
                        "data_point")
    if not indicator.data_points and data_point is not None:
        raise cell.fail(f"{indicator.id} has no data points; leave data_point empty", "data_point")
    direction = text["direction"].lower()
    if direction not in ("higher", "lower"):
        raise cell.fail(f"direction must be 'higher' or 'lower' (is better), got {text['direction']!r}", "direction")
    meaning = indicator.direction_for(data_point)
    side = {"higher_is_better": "higher", "lower_is_better": "lower"}.get(meaning)
    if side is not None and side != direction:
        # The catalogue says which way is better from the indicator's meaning; a target cannot reverse it.
        raise cell.fail(f"direction {direction!r} contradicts the catalogue: for {indicator.id}"
                        f"{' ' + data_point if data_point else ''} {DIRECTION_WORDS[meaning]} "
                        "(docs/indicators.md)", "direction")
    target = _number(cell, "target", text["target"])
    worst = _number(cell, "worst", text["worst"]) if text["worst"] else None
    if direction == "higher":
        # U4SSC share of target for higher-is-better is value / target: a worst value has no role.
        if target <= 0:
            raise cell.fail("a higher-is-better target must be positive (share of target = value / target)", "target")
        if worst is not None:
            raise cell.fail("worst applies to lower-is-better rows only (higher is better scores value / target)",
                            "worst")
    elif target < 0:
        raise cell.fail("target must not be negative", "target")
    elif worst is not None and worst <= target:
        raise cell.fail(f"worst ({worst:g}) must be above the target ({target:g}) when lower is better", "worst")
    deadline = DEFAULT_DEADLINE
    if text["deadline"]:
        if not text["deadline"].isdigit() or not 2000 <= int(text["deadline"]) <= 2100:
            raise cell.fail(f"deadline must be a year 2000-2100, got {text['deadline']!r}", "deadline")
        deadline = int(text["deadline"])
    official = _BOOLEANS.get(text["official_u4ssc_benchmark"].lower())
    if official is None:
        raise cell.fail("official_u4ssc_benchmark must be true or false", "official_u4ssc_benchmark")
    if not text["source"]:
        raise cell.fail("every target needs its source (a citation)", "source")
    return {"indicator_id": indicator.id, "data_point": data_point, "target": target, "direction": direction,
            "worst": worst, "deadline": deadline, "official_u4ssc_benchmark": official, "source": text["source"],
            "note": text["note"] or None}


def read_target_table(path: Path, label: str, *, display_path: str | None = None) -> pl.DataFrame:
    """Read and validate one target table; `label` becomes its rows' `target_source`."""
    shown = display_path or str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # utf-8-sig: spreadsheets often save a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetsError(shown, f"cannot read the target table: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if missing or unknown:
        problems = ([f"missing column(s) {missing}"] if missing else []) + \
                   ([f"unknown column(s) {unknown}"] if unknown else [])
        raise TargetsError(shown, f"{'; '.join(problems)}; expected columns {list(CSV_COLUMNS)}", row=1)
    catalogue = indicators_by_id()
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, str | None], int] = {}
    for raw in reader:
        line = reader.line_num  # physical line: DictReader skips blank lines, so no counting by hand
        if not any((v or "").strip() for v in raw.values() if isinstance(v, str)):
            continue  # a row of empty fields (",,,,") as spreadsheets save them
        cell = _Cell(shown, line)
        if None in raw:  # csv puts surplus fields under the None key
            raise cell.fail(f"more fields than the {len(header)} columns of the header")
        row = _parse_row(cell, raw, catalogue)
        key = (row["indicator_id"], row["data_point"])
        if key in seen:
            raise cell.fail(f"{key[0]} {key[1] or ''} is already given in row {seen[key]}".replace("  ", " "))
        seen[key] = line
        rows.append({**row, "target_source": label})
    return pl.DataFrame(rows, schema=TARGET_SCHEMA, orient="row") if rows else pl.DataFrame(schema=TARGET_SCHEMA)


def default_targets() -> pl.DataFrame:
    resource = resources.files("kpis").joinpath("targets", "default.csv")
    with resources.as_file(resource) as path:
        return sort_targets(read_target_table(path, f"default: {DEFAULT_TABLE}", display_path=DEFAULT_TABLE))


def merge_targets(default: pl.DataFrame, city: pl.DataFrame) -> pl.DataFrame:
    """City rows replace default rows with the same (indicator, data point); the rest of both is kept."""
    key = ["indicator_id", "data_point"]
    kept = default.join(city.select(key), on=key, how="anti", nulls_equal=True)
    return sort_targets(pl.concat([kept, city]))


def sort_targets(frame: pl.DataFrame) -> pl.DataFrame:
    """Catalogue order, then data point order, so every listing and join output is deterministic."""
    catalogue = indicators_by_id()
    order = {ind_id: n for n, ind_id in enumerate(catalogue)}

    def point_rank(row: dict[str, Any]) -> int:
        points = catalogue[row["indicator_id"]].data_points
        return points.index(row["data_point"]) if row["data_point"] in points else -1

    rows = list(frame.iter_rows(named=True))
    return (frame.with_columns(pl.Series("_order", [order[r["indicator_id"]] for r in rows], dtype=pl.Int64),
                               pl.Series("_point", [point_rank(r) for r in rows], dtype=pl.Int64))
            .sort("_order", "_point").drop("_order", "_point"))


def load_targets(city_table: Path | None = None) -> pl.DataFrame:
    """The targets in force for a city: the default table overridden by the city's own table at
    `city_table` (`LoadedConfig.targets_path`). A city's table is optional: no path, or no file at the
    path, gives the default table alone."""
    default = default_targets()
    if city_table is None or not city_table.exists():
        return default
    return merge_targets(default, read_target_table(city_table, f"city: {city_table}"))


def format_targets(targets: pl.DataFrame) -> str:
    """The targets as a text table for `citykpi targets`: one line per row, its citation below it."""
    header = f"{'indicator':<14} {'data point':<11} {'better':<7} {'target':>8} {'worst':>8} {'by':>5}  from"
    lines = [header, "-" * len(header)]
    for row in targets.iter_rows(named=True):
        worst = f"{row['worst']:g}" if row["worst"] is not None else "-"
        origin = row["target_source"] + (" (official U4SSC benchmark)" if row["official_u4ssc_benchmark"] else "")
        lines.append(f"{row['indicator_id']:<14} {row['data_point'] or '-':<11} {row['direction']:<7} "
                     f"{row['target']:>8g} {worst:>8} {row['deadline']:>5}  {origin}")
        lines.append(f"{'':<14} source: {row['source']}")
    lines.append("")
    lines.append(f"{targets.height} target(s). Default rows are citykpi's own choice from public references and are "
                 "NOT the official U4SSC benchmarks (those are not public); see docs/benchmarking.md.")
    return "\n".join(lines)
