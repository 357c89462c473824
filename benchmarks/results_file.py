"""One way to write a benchmark's result: `<stem>.json` (the figures) and `<stem>.md` (the table)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_result(out_dir: Path, stem: str, result: dict[str, Any], table: str) -> None:
    """Write the result's JSON and Markdown beside each other and print the Markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (out_dir / f"{stem}.md").write_text(table, encoding="utf-8")
    print(table)
