"""How the report shows numbers: rounded display values, Yes/No as text, direction-aware verdicts.

The data files keep full precision; only the report rounds. A year-over-year change earns an arrow
and a better/worse colour only when it is *meaningful*: at least `TREND_MIN_RELATIVE` (1 %) of the
larger of the two values, and visible after rounding to `SIGNIFICANT` digits. Smaller changes are
shown as "no meaningful change" (→), so 99.82033 → 99.82034 does not read as a swing.

Which way is better comes from the targets table (`kpis/targets/default.csv`, overridden per city by
the scores the release holds): `higher` or `lower`. Without a direction the report says "changed",
never better or worse.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

SIGNIFICANT = 3
TREND_MIN_RELATIVE = 0.01  # 1 % of the larger value: smaller changes are "no meaningful change"
Verdict = Literal["better", "worse", "same", "up", "down", "new"]
ARROWS: dict[Verdict, str] = {"better": "", "worse": "", "same": "→", "up": "↑", "down": "↓", "new": ""}


def is_yes_no(unit: str | None) -> bool:
    """Yes/No indicators (unit 'Yes/No ...'): 1 is Yes, 0 is No; shown as words, never charted."""
    return bool(unit) and str(unit).strip().lower().startswith("yes/no")


def rounded(value: float) -> float:
    """`value` to `SIGNIFICANT` significant digits (0.280001 -> 0.28; 99.82033 -> 99.8)."""
    if value == 0 or not math.isfinite(value):
        return value
    digits = SIGNIFICANT - 1 - math.floor(math.log10(abs(value)))
    return round(value, max(digits, -12))


def show(value: Any, unit: str | None = None) -> str:
    """A value as the report prints it: Yes/No words, rounded numbers with thousands separators."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, int | float):
        if is_yes_no(unit):
            return "Yes" if value >= 0.5 else "No"
        number = float(value)
        if number == 0:
            return "0"
        if abs(number) >= 10 ** SIGNIFICANT:
            return f"{round(number):,}"
        digits = max(SIGNIFICANT - 1 - math.floor(math.log10(abs(number))), 0)
        text = f"{rounded(number):,.{min(digits, 12)}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def meaningful(old: float, new: float) -> bool:
    """Whether old -> new is a change worth an arrow (see the module doc for the rule)."""
    scale = max(abs(old), abs(new))
    if scale == 0 or rounded(old) == rounded(new):
        return False
    return abs(new - old) >= TREND_MIN_RELATIVE * scale


def verdict(old: float | None, new: float | None, direction: str | None) -> Verdict | None:
    """better / worse (direction known), up / down (unknown), same (no meaningful change); None: nothing to compare."""
    if new is None:
        return None
    if old is None:
        return "new"
    if not meaningful(old, new):
        return "same"
    rose = new > old
    if direction == "higher":
        return "better" if rose else "worse"
    if direction == "lower":
        return "worse" if rose else "better"
    return "up" if rose else "down"


def arrow(old: float | None, new: float | None) -> str:
    """↑ / ↓ only beyond the meaningful-change threshold, → otherwise, empty with nothing to compare."""
    if old is None or new is None:
        return ""
    if not meaningful(old, new):
        return "→"
    return "↑" if new > old else "↓"


@dataclass(frozen=True)
class Directions:
    """Which way is better per (indicator, data point): the city's scored targets first, then the defaults."""

    default: Mapping[tuple[str, str], str]
    per_city: Mapping[tuple[str, str, str], str]

    def of(self, city_id: str, indicator_id: str, data_point: str | None) -> str | None:
        point = data_point or ""
        return (self.per_city.get((city_id, indicator_id, point)) or self.default.get((indicator_id, point))
                or self.default.get((indicator_id, "")))

    @classmethod
    def build(cls, default_rows: Iterable[Mapping[str, Any]], city_rows: Iterable[Mapping[str, Any]]) -> Directions:
        default = {(r["indicator_id"], r["data_point"] or ""): r["direction"] for r in default_rows
                   if r.get("direction") in ("higher", "lower")}
        per_city = {(r["city_id"], r["indicator_id"], r["data_point"] or ""): r["direction"] for r in city_rows
                    if r.get("direction") in ("higher", "lower")}
        return cls(default, per_city)


def better_word(direction: str | None) -> str:
    return {"higher": "higher is better", "lower": "lower is better"}.get(direction or "", "no direction set")
