"""Every source example in docs/connectors.md and docs/city-config.md is a valid config, and every kind has one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from sources.config import load_city_config
from sources.kinds import KINDS

DOCS = Path(__file__).resolve().parents[2] / "docs"
CITY = {"id": "docs-city", "name": "Docs City", "country": "DE", "reporting_years": [2020]}


def _sources(doc: str) -> list[list[dict[str, Any]]]:
    text = (DOCS / doc).read_text(encoding="utf-8")
    blocks = []
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        data = yaml.safe_load(block)
        if isinstance(data, dict) and isinstance(data.get("sources"), list):
            data = data["sources"]
        if isinstance(data, list) and data and isinstance(data[0], dict) and "kind" in data[0]:
            blocks.append(data)
    return blocks


def test_every_documented_source_validates_and_every_kind_is_documented(tmp_path: Path) -> None:
    kinds: dict[str, set[str]] = {}
    for doc in ("connectors.md", "city-config.md"):
        for index, sources in enumerate(_sources(doc)):
            path = tmp_path / f"{doc}-{index}.yaml"
            path.write_text(yaml.safe_dump({"config_version": 1, "city": CITY, "sources": sources}), encoding="utf-8")
            loaded = load_city_config(path, check_files=False)
            kinds.setdefault(doc, set()).update(s.kind for s in loaded.config.sources)
    assert kinds["city-config.md"] == set(KINDS)
    assert kinds["connectors.md"] >= set(KINDS) - {"file"}
