"""A stage's progress lines on stderr: one line per city for a few cities, one line per stage for many.

Up to `PER_CITY_MAX` cities (or with `citykpi run --every-city`) every city gets its lines, as the
README shows. Past that, a run over 1,000 cities printed about 20,000 lines (one per source snapshot,
one per stage and city), so each stage prints its totals in one line instead, and each notice (a
load warning, a year skipped) once, with the cities it concerns: a message every city shares is one
line, not a thousand. The per-city facts stay in the warehouse and the release (issue #16).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from canonical.listing import first_and_more
from pipelines.summary import CITIES_SHOWN

PER_CITY_MAX = CITIES_SHOWN  # more cities than this: totals per stage, notices grouped
HEARTBEAT_S = 30.0  # a long stage over many cities says how far it got at most this often


@dataclass
class StageLines:
    """Progress lines of one stage over `cities` cities; `say` prints (and logs) one line."""

    say: Callable[[str], None]
    cities: int
    every_city: bool = False
    name: str = ""
    _notices: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    _last_heartbeat: float = field(default_factory=lambda: time.monotonic())

    @property
    def per_city(self) -> bool:
        return self.every_city or self.cities <= PER_CITY_MAX

    def city(self, line: str) -> None:
        """A city's routine line (what it landed, loaded, computed): printed only city by city."""
        if self.per_city:
            self.say(line)

    def notice(self, city_id: str, text: str, separator: str = "/") -> None:
        """Something about a city to read: `<city><separator><text>` city by city, else grouped by text."""
        if self.per_city:
            self.say(f"{city_id}{separator}{text}")
        else:
            self._notices.setdefault((text, separator), []).append(city_id)

    def total(self, line: str) -> None:
        """The stage's totals over many cities (not printed when every city had its own line)."""
        if not self.per_city:
            self.say(line)

    def done(self, cities_done: int) -> None:
        """How far a long stage over many cities got (`core: 160 of 1,000 cities`), at most every HEARTBEAT_S
        seconds, so that minutes without a line do not look like a hang."""
        now = time.monotonic()
        if self.per_city or cities_done >= self.cities or now - self._last_heartbeat < HEARTBEAT_S:
            return
        self._last_heartbeat = now
        self.say(f"{self.name}: {cities_done:,} of {self.cities:,} cities")

    def close(self) -> None:
        """Print the grouped notices: each text once, with its cities (one city: as city by city)."""
        for (text, separator), cities in self._notices.items():
            if len(cities) == 1:
                self.say(f"{cities[0]}{separator}{text}")
            else:
                self.say(f"{text} [{len(cities):,} cities: {first_and_more(cities, CITIES_SHOWN, ', ')}]")
        self._notices.clear()


def cities_text(count: int) -> str:
    """`1 city`, `1,000 cities`."""
    return f"{count:,} {'city' if count == 1 else 'cities'}"


def counts_text(counts: Mapping[str, int]) -> str:
    """`computed 46,500, missing 0` (a stage's counts summed over its cities)."""
    return ", ".join(f"{name} {number:,}" for name, number in counts.items())


def summed(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Counts of several cities added up, names in the order first seen."""
    total: dict[str, int] = {}
    for one in counts:
        for name, number in one.items():
            total[name] = total.get(name, 0) + number
    return total
