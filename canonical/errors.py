"""Errors a user can act on. Each names the file and, where known, the row and field."""

from __future__ import annotations

import re
from pathlib import Path

# Longest message text a SourceDataError shows: file content quoted in a message (a header line, a
# cell) is an excerpt, never the file (a mistaken `location: /proc/self/environ` once printed the
# whole environment, tokens included, as "the header").
MESSAGE_LIMIT = 600
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def excerpt(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """`text` on one line with control characters escaped (NUL as \\x00), cut to `limit` characters."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text.replace("\r\n", "\n"))
    text = text.replace("\n", "\\n").replace("\t", "\\t")
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit:,} more characters)"


class CitykpiError(Exception):
    """Base class for errors shown to the user as one clear message (no traceback)."""


class ConfigError(CitykpiError):
    """A city configuration file is invalid."""

    def __init__(self, path: Path | str, key_path: str, message: str) -> None:
        self.path = str(path)
        self.key_path = key_path
        self.message = message
        where = f" at {key_path}" if key_path else ""
        super().__init__(f"{self.path}{where}: {message}")


class SourceDataError(CitykpiError):
    """A source file holds data citykpi cannot use (bad value, missing column, unreadable file)."""

    def __init__(
        self,
        path: Path | str,
        message: str,
        *,
        row: int | None = None,
        field: str | None = None,
        source_id: str | None = None,
        row_label: str | None = None,
    ) -> None:
        self.path = str(path)
        self.row = row
        self.row_label = row_label  # how the row is shown, e.g. "27 (page 2 record 7)" for API pages
        self.field = field
        self.source_id = source_id
        self.message = message = excerpt(message)
        parts = [self.path]
        if row_label is not None:
            parts.append(f"row {row_label}")
        elif row is not None:
            parts.append(f"row {row}")
        if field is not None:
            parts.append(f"field {field!r}")
        prefix = f"source {source_id!r}: " if source_id else ""
        super().__init__(f"{prefix}{', '.join(parts)}: {message}")


# What a parser says when a JSON or YAML document nests deeper than Python's recursion limit.
TOO_DEEP = "nested deeper than citykpi reads (about 1,000 levels of arrays/objects); refusing the document"


class FetchError(CitykpiError):
    """A source could not be fetched."""
