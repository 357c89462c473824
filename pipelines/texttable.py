"""Plain-text tables for the CLI: one way to cut a cell and to align columns.

Every table the `citykpi` commands print goes through `cut` (directly or via `format_table`), so a
long name always ends in "…" instead of being chopped silently, and columns stay aligned.
Standard library only: the CLI imports this before any heavy library.
"""

from __future__ import annotations

from collections.abc import Sequence

ELLIPSIS = "…"
UNCAPPED = 10**6


def cut(text: object, width: int) -> str:
    """`text` on one line, at most `width` characters: a longer text keeps width-1 and ends in '…'."""
    flat = " ".join(str(text).split())
    if width < 1:
        return ""
    return flat if len(flat) <= width else flat[: width - 1] + ELLIPSIS


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]], *,
                 max_widths: Sequence[int | None] | None = None, right: Sequence[int] = (),
                 gap: str = "  ") -> list[str]:
    """Lines of an aligned table: each column as wide as its widest cell, capped at its `max_widths`
    entry (None: no cap; cells beyond it are cut with '…'); columns whose index is in `right` are
    right-aligned (numbers). The last column is not padded (no trailing blanks)."""
    columns = len(header)
    given = list(max_widths) if max_widths is not None else [None] * columns
    caps = [UNCAPPED if cap is None else cap for cap in given]
    cells = [[cut(cell, caps[i]) for i, cell in enumerate(row)] for row in rows]
    titles = [cut(title, caps[i]) for i, title in enumerate(header)]
    widths = [max([len(titles[i]), *(len(row[i]) for row in cells)]) for i in range(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [value.rjust(widths[i]) if i in right else value.ljust(widths[i]) for i, value in enumerate(values)]
        return gap.join(parts).rstrip()

    return [line(titles), *(line(row) for row in cells)]
