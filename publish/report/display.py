"""How the report shows numbers: rounded display values, Yes/No as text, direction-aware verdicts.

The data files keep full precision; only the report rounds. A year-over-year change earns an arrow
and a better/worse colour only when it is *meaningful*: at least `TREND_MIN_RELATIVE` (1 %) of the
larger of the two values, and visible after rounding to `SIGNIFICANT` digits. Smaller changes are
shown as "no meaningful change" (→), so 99.82033 → 99.82034 does not read as a swing.

Which way is better comes from the catalogue's `direction` (kpis/indicators/*.yaml): higher or lower is
better. A target band or a context figure (neutral) has no better side: the report says up / down, never
better or worse (unless the city's own target table picks a side for its scores, see `Directions`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kpis.catalogue import DIRECTION_WORDS, Direction, Indicator

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
    """Which way is better per (indicator, data point), read from the catalogue (kpis/indicators/*.yaml, field
    `direction`). The catalogue's higher/lower always wins (a target table that contradicts it is refused when it
    is read); a `target_band` or `neutral` entry has no better side, unless the city's own target table gives it
    one for its scores (then the report follows the city's choice)."""

    catalogue: Mapping[tuple[str, str], Direction]  # (indicator, data point or "") -> the catalogue's direction
    per_city: Mapping[tuple[str, str, str], str]  # (city, indicator, data point or "") -> higher / lower

    def side(self, indicator_id: str, data_point: str | None) -> str | None:
        """`higher` / `lower` from the catalogue alone (what comparisons across cities use); None otherwise."""
        return _SIDES.get(self.direction(indicator_id, data_point) or "")

    def direction(self, indicator_id: str, data_point: str | None) -> Direction | None:
        """The catalogue's direction of one data point (None: an indicator the catalogue does not know)."""
        return self.catalogue.get((indicator_id, data_point or "")) or self.catalogue.get((indicator_id, ""))

    def of(self, city_id: str, indicator_id: str, data_point: str | None) -> str | None:
        """`higher` / `lower` for one city's comparisons: the catalogue's side, else the city's own target's."""
        return self.side(indicator_id, data_point) or self.per_city.get((city_id, indicator_id, data_point or ""))

    def word(self, city_id: str, indicator_id: str, data_point: str | None) -> str:
        """What the report prints as "better": the side, or why there is none (target band, context figure)."""
        side = self.of(city_id, indicator_id, data_point)
        if side is not None:
            from_city = self.side(indicator_id, data_point) is None
            return better_word(side) + (" (the city's target)" if from_city else "")
        direction = self.direction(indicator_id, data_point)
        return DIRECTION_WORDS[direction] if direction else better_word(None)

    @classmethod
    def build(cls, catalogue: Iterable[Indicator], city_rows: Iterable[Mapping[str, Any]] = ()) -> Directions:
        """From the catalogue and, optionally, the rows of the release's kpi_scores (their target directions)."""
        directions: dict[tuple[str, str], Direction] = {}
        for indicator in catalogue:
            directions[(indicator.id, "")] = indicator.direction
            for point in indicator.data_points:
                directions[(indicator.id, point)] = indicator.direction_for(point)
        per_city = {(r["city_id"], r["indicator_id"], r["data_point"] or ""): r["direction"] for r in city_rows
                    if r.get("direction") in ("higher", "lower")}
        return cls(directions, per_city)


_SIDES: dict[str, str] = {"higher_is_better": "higher", "lower_is_better": "lower"}


def better_word(direction: str | None) -> str:
    return {"higher": "higher is better", "lower": "lower is better"}.get(direction or "", "no direction set")
