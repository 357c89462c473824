"""Long lists in messages: the first few items and a count of the rest, so one error line stays readable."""

from __future__ import annotations

from collections.abc import Sequence


def first_and_more(items: Sequence[str], shown: int, separator: str = "; ") -> str:
    """`a; b; and 3 more` (the first `shown` items, then how many were left out)."""
    more = len(items) - shown
    return separator.join(items[:shown]) + (f"{separator}and {more:,} more" if more > 0 else "")
