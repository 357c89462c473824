"""The canonical variable vocabulary, loaded from variables.yaml (the one place it is defined).

A variable may carry a `demo:` member saying how the demo city (Demoville, sources/demo) makes up its
values, so that a KPI over a new variable needs no edit to the generator (issue #17). Exactly one of

- ``per_capita: R``        value = R x the population of the area (city or district)
- ``share: S`` + ``of: V``  value = S x variable V of the area
- ``ramp: V``              value = V

where R, S and V are one number (every demo year) or ``[start, end]`` (a straight line from the first to
the last demo year); optional ``level`` (``city``, default, or ``district``), ``decimals`` (as printed,
default 0) and ``label`` (the code in the demo's statistics file, default the variable name).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Literal, cast

import yaml

Aggregation = Literal["sum", "none"]
DemoMethod = Literal["per_capita", "share", "ramp"]
DemoLevel = Literal["city", "district"]

SOURCE = "canonical/variables.yaml"
_VARIABLE_KEYS = ("unit", "aggregation", "description", "demo")
_DEMO_METHODS: tuple[DemoMethod, ...] = ("per_capita", "share", "ramp")
_DEMO_KEYS = (*_DEMO_METHODS, "of", "level", "decimals", "label")
_MAX_DECIMALS = 6
# The demo's statistics files are ';'-separated Latin-1 text written without quoting.
_LABEL_FORBIDDEN = (";", '"', "\r", "\n")


class VariablesError(ValueError):
    """variables.yaml is invalid; the message names the variable and the key."""


@dataclass(frozen=True)
class DemoSeries:
    """How Demoville generates a variable (the `demo:` member)."""

    method: DemoMethod
    start: float  # the rate, share or value of the first demo year
    end: float  # ... of the last demo year (= start for one number)
    of: str | None  # share: the variable it is a share of
    level: DemoLevel
    decimals: int
    label: str

    @property
    def base(self) -> str | None:
        """The variable the values are scaled from (None for a ramp)."""
        return "population" if self.method == "per_capita" else self.of


@dataclass(frozen=True)
class Variable:
    name: str
    unit: str
    aggregation: Aggregation
    description: str
    demo: DemoSeries | None = None


def variables_error(name: str, key: str, problem: str) -> VariablesError:
    """The error for one key of one variable (the demo generator raises it too)."""
    return VariablesError(f"{SOURCE}: variable {name!r}, key {key!r}: {problem}")


def _number(name: str, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise variables_error(name, key, f"expected a finite number, got {value!r}")
    return float(value)


def _path(name: str, key: str, value: object) -> tuple[float, float]:
    """One number (every year) or [start, end]."""
    if isinstance(value, list):
        if len(value) != 2:
            raise variables_error(name, key, f"expected a number or [start, end], got a list of {len(value)}")
        return _number(name, key, value[0]), _number(name, key, value[1])
    number = _number(name, key, value)
    return number, number


def _text(name: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise variables_error(name, key, f"expected a non-empty text, got {value!r}")
    return value


def _demo(name: str, raw: object) -> DemoSeries:
    if not isinstance(raw, dict):
        raise variables_error(name, "demo", f"expected a mapping such as {{per_capita: 0.01}}, got {raw!r}")
    unknown = sorted(set(raw) - set(_DEMO_KEYS))
    if unknown:
        raise variables_error(name, f"demo.{unknown[0]}", f"unknown key; known: {', '.join(_DEMO_KEYS)}")
    methods = [method for method in _DEMO_METHODS if method in raw]
    if len(methods) != 1:
        raise variables_error(name, "demo", f"needs exactly one of {', '.join(_DEMO_METHODS)}, got "
                                  f"{', '.join(methods) or 'none'}")
    method = methods[0]
    start, end = _path(name, f"demo.{method}", raw[method])
    of = raw.get("of")
    if (method == "share") != (of is not None):
        raise variables_error(name, "demo.of", "names the variable a share is of: required with share, "
                                     "not allowed with per_capita or ramp")
    if of is not None:
        of = _text(name, "demo.of", of)
        if of == name:
            raise variables_error(name, "demo.of", "a variable cannot be a share of itself")
    level = raw.get("level", "city")
    if level not in ("city", "district"):
        raise variables_error(name, "demo.level", f"expected city or district, got {level!r}")
    decimals = raw.get("decimals", 0)
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= _MAX_DECIMALS:
        raise variables_error(name, "demo.decimals",
                              f"expected a whole number from 0 to {_MAX_DECIMALS}, got {decimals!r}")
    label = _text(name, "demo.label", raw.get("label", name))
    bad = [char for char in _LABEL_FORBIDDEN if char in label]
    if bad or not _latin1(label):
        raise variables_error(name, "demo.label", f"{label!r} must be Latin-1 text without ; \" or line breaks "
                                        "(the demo's statistics files are ';'-separated Latin-1)")
    return DemoSeries(method=method, start=start, end=end, of=of, level=cast(DemoLevel, level),
                      decimals=decimals, label=label)


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _variable(name: str, spec: object) -> Variable:
    if not isinstance(spec, dict):
        raise VariablesError(f"{SOURCE}: variable {name!r}: expected a mapping with unit, aggregation and "
                             f"description, got {spec!r}")
    unknown = sorted(set(spec) - set(_VARIABLE_KEYS))
    if unknown:
        raise variables_error(name, unknown[0], f"unknown key; known: {', '.join(_VARIABLE_KEYS)}")
    aggregation = spec.get("aggregation")
    if aggregation not in ("sum", "none"):
        raise variables_error(name, "aggregation", f"expected sum or none, got {aggregation!r}")
    return Variable(name=name, unit=_text(name, "unit", spec.get("unit")),
                    aggregation=cast(Aggregation, aggregation),
                    description=_text(name, "description", spec.get("description")),
                    demo=None if spec.get("demo") is None else _demo(name, spec["demo"]))


def _check_shares(variables: Mapping[str, Variable]) -> None:
    """Every base names a variable, and no chain of bases comes back to a variable already in it."""
    bases: dict[str, str] = {}
    for name, variable in variables.items():
        demo = variable.demo
        if demo is None or demo.base is None:
            continue
        if demo.base not in variables:
            key = "demo.of" if demo.of is not None else f"demo.{demo.method}"
            raise variables_error(name, key, f"{demo.base!r} is not a variable of {SOURCE}")
        bases[name] = demo.base
    for name in bases:
        chain = [name]
        while chain[-1] in bases:
            chain.append(bases[chain[-1]])
            if chain[-1] in chain[:-1]:
                raise variables_error(name, "demo.of", f"declarations scale from each other in a cycle: "
                                                       f"{' -> '.join(chain)}")


def parse_variables(raw: object) -> dict[str, Variable]:
    """variables.yaml's document -> variables by name, validated (VariablesError names what is wrong)."""
    if not isinstance(raw, dict):
        raise VariablesError(f"{SOURCE}: expected a mapping of variable name -> definition")
    variables = {str(name): _variable(str(name), spec) for name, spec in raw.items()}
    _check_shares(variables)
    return variables


def _load() -> dict[str, Variable]:
    text = resources.files("canonical").joinpath("variables.yaml").read_text(encoding="utf-8")
    return parse_variables(yaml.safe_load(text))


VARIABLES: dict[str, Variable] = _load()


# The population groups that access and equity indicators break down by: data point -> the variable
# holding that group's population (kpis/spatial/derive.py derives per group; kpis/coverage.py reads it).
POPULATION_GROUPS = {"total": "population", "female": "population_female", "male": "population_male",
                     "age 0-14": "population_age_0_14", "age 15-64": "population_age_15_64",
                     "age 65+": "population_age_65_plus"}
