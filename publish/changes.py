"""CHANGES.md: what changed against the previous release (role `changes`).

Rows are matched on their key (city, year, indicator, data point). A row is
- added / removed: its key is only in the new / old release;
- changed: its value, status or formula version differs (old and new shown side by side).
`diff_frames` is also what `citykpi releases diff A B` prints and what the report charts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from kpis.catalogue import Indicator
from publish import FileEntry, PublishContext, file_entry, write_bytes

NAME = "CHANGES.md"
ROLE = "changes"
KEY = ["city_id", "year", "indicator_id", "data_point"]
COMPARED = ["value", "status", "formula_version"]
NO_DATA_POINT = ""  # joins treat null keys as unequal: compare on a filled copy


@dataclass(frozen=True)
class Changes:
    added: pl.DataFrame  # rows of the new release
    removed: pl.DataFrame  # rows of the old release
    changed: pl.DataFrame  # KEY + old_/new_ value, status, formula_version, unit
    unchanged: int

    @property
    def empty(self) -> bool:
        return self.added.is_empty() and self.removed.is_empty() and self.changed.is_empty()


def _keyed(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(*KEY, *COMPARED, "unit").with_columns(pl.col("data_point").fill_null(NO_DATA_POINT))


def diff_frames(old: pl.DataFrame, new: pl.DataFrame) -> Changes:
    a, b = _keyed(old), _keyed(new)
    added = b.join(a.select(KEY), on=KEY, how="anti").sort(KEY)
    removed = a.join(b.select(KEY), on=KEY, how="anti").sort(KEY)
    both = a.rename({c: f"old_{c}" for c in [*COMPARED, "unit"]}).join(
        b.rename({c: f"new_{c}" for c in [*COMPARED, "unit"]}), on=KEY, how="inner")
    differs = pl.lit(False)
    for column in COMPARED:
        differs = differs | pl.col(f"old_{column}").ne_missing(pl.col(f"new_{column}"))
    changed = both.filter(differs).sort(KEY)
    return Changes(added, removed, changed, both.height - changed.height)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.6g}"


def _label(row: dict, names: dict[str, str]) -> str:
    point = f" [{row['data_point']}]" if row["data_point"] else ""
    name = names.get(row["indicator_id"], "")
    name = name if len(name) <= 60 else name[:59] + "…"  # the full name is in the catalogue
    return f"{row['city_id']} {row['year']} {row['indicator_id']}{point} {name}".strip()


def render_markdown(changes: Changes, old_id: str | None, new_id: str | None,
                    catalogue: Sequence[Indicator] = ()) -> str:
    names = {i.id: i.name for i in catalogue}
    title = f"# Changes in release {new_id}" if new_id else "# Changes"
    if old_id is None:
        return f"{title}\n\nFirst release: there is no previous release to compare with.\n"
    lines = [title, "", f"Compared with release {old_id}: {changes.added.height} rows added, "
                        f"{changes.removed.height} removed, {changes.changed.height} changed, "
                        f"{changes.unchanged} unchanged (a row is one city, year, indicator and data point).", ""]
    if changes.empty:
        lines += ["No indicator value, status or formula version changed.", ""]
    if not changes.changed.is_empty():
        lines += ["## Changed", "", "| row | old value | new value | change | old status | new status | formula |",
                  "|---|---:|---:|---:|---|---|---|"]
        for r in changes.changed.iter_rows(named=True):
            old, new = r["old_value"], r["new_value"]
            delta = f"{(new - old) / abs(old):+.2%}" if old not in (None, 0) and new is not None else ""
            formula = (f"v{r['old_formula_version']} → v{r['new_formula_version']}"
                       if r["old_formula_version"] != r["new_formula_version"] else "")
            lines.append(f"| {_label(r, names)} | {_fmt(old)} {r['old_unit']} | {_fmt(new)} {r['new_unit']} | {delta} "
                         f"| {r['old_status']} | {r['new_status']} | {formula} |")
        lines.append("")
    for heading, frame in (("Added", changes.added), ("Removed", changes.removed)):
        if frame.is_empty():
            continue
        lines += [f"## {heading}", "", "| row | value | status |", "|---|---:|---|"]
        lines += [f"| {_label(r, names)} | {_fmt(r['value'])} {r['unit']} | {r['status']} |"
                  for r in frame.iter_rows(named=True)]
        lines.append("")
    return "\n".join(lines)


def write_changes(frame: pl.DataFrame, catalogue: Sequence[Indicator], context: PublishContext,
                  folder: Path) -> list[FileEntry]:
    previous = context.previous
    changes = diff_frames(previous.frame if previous else frame.clear(), frame)
    text = render_markdown(changes, previous.release_id if previous else None, context.release_id, catalogue)
    write_bytes(folder, NAME, text.encode("utf-8"))
    against = f"release {previous.release_id}" if previous else "nothing (first release)"
    return [file_entry(folder, NAME, ROLE, f"changes against {against}: indicators added, removed and changed, "
                                           "with old and new values")]
