"""City configs' YAML data kept between runs, so a run over many cities does not parse every config again.

Parsing the YAML is most of reading a city config (PyYAML builds its objects in Python even with
libyaml): a run over 1,000 cities spent about 10 s reading their configs. `<home>/cache/configs/` keeps
the data of each config as JSON under the SHA-256 of the file's bytes; equal bytes give equal data, so
the config is validated exactly as before (`sources/config.py:config_problems`). Only plain data is kept
(mappings with text keys, lists, text, numbers, booleans, null); a config whose YAML gives anything else
(a date, an integer key) is parsed every time. A missing, unreadable or damaged entry means parsing.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

PLAIN = (str, int, float, bool, type(None))


def _entry(folder: Path, data: bytes) -> Path:
    return folder / f"{hashlib.sha256(data).hexdigest()}.json"


def kept(folder: Path, data: bytes) -> dict[str, Any] | None:
    """The YAML data kept for a config file with these bytes, or None."""
    try:
        raw = json.loads(_entry(folder, data).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def keep(folder: Path, data: bytes, raw: Any) -> None:
    """Keep the YAML data of a config file with these bytes, when it is plain (a failure only costs a parse)."""
    if not _plain(raw):
        return
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".config-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(raw, handle, ensure_ascii=False)
        os.replace(tmp, _entry(folder, data))
    except (OSError, ValueError):
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _plain(value: Any) -> bool:
    """Whether JSON gives back exactly this value (iteratively: config data can be deep)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if not all(type(k) is str for k in item):
                return False
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif type(item) not in PLAIN:
            return False
    return True
