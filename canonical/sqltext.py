"""The one place SQL text is built from names and values that are not the code's own.

Configured field names, sheet names, ids and file paths come from city configs and source files:
untrusted. They reach SQL only through these two functions (or as `?` / `$name` parameters,
which is better still for values). `tests/test_sql_quoting.py` fails on f-string SQL that
interpolates a name without them.
"""

from __future__ import annotations

from typing import Any


def ident(name: str) -> str:
    """A double-quoted SQL identifier: `a"b` -> `"a""b"`. Refuses NUL, which DuckDB cannot hold."""
    if not isinstance(name, str):
        raise TypeError(f"an SQL identifier must be text, got {type(name).__name__}")
    if "\x00" in name:
        raise ValueError("an SQL identifier cannot contain a NUL character")
    return '"' + name.replace('"', '""') + '"'


def literal(value: Any) -> str:
    """A SQL literal for text, numbers, booleans and NULL (prefer parameters where the API allows)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return f"CAST('{value!r}' AS DOUBLE)"
        return repr(value)
    text = str(value)
    if "\x00" in text:
        raise ValueError("an SQL literal cannot contain a NUL character")
    return "'" + text.replace("'", "''") + "'"
