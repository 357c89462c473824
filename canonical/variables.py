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


# The population groups that access and equity indicators break down by: data point -> the variable
# holding that group's population (kpis/spatial/derive.py derives per group; kpis/coverage.py reads it).
POPULATION_GROUPS = {"total": "population", "female": "population_female", "male": "population_male",
                     "age 0-14": "population_age_0_14", "age 15-64": "population_age_15_64",
                     "age 65+": "population_age_65_plus"}
