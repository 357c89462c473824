"""The canonical variable vocabulary, loaded from variables.yaml (the one place it is defined)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Literal

import yaml


@dataclass(frozen=True)
class Variable:
    name: str
    unit: str
    aggregation: Literal["sum", "none"]
    description: str


def _load() -> dict[str, Variable]:
    text = resources.files("canonical").joinpath("variables.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    return {
        name: Variable(name=name, unit=spec["unit"], aggregation=spec["aggregation"],
                       description=spec["description"])
        for name, spec in raw.items()
    }


VARIABLES: dict[str, Variable] = _load()
