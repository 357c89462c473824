"""The indicator catalogue: one YAML entry per indicator, with its facts, formula and test examples.

Files: `kpis/indicators/u4ssc.yaml` (ITU-T Y.4903 / U4SSC KPIs) and `kpis/indicators/sdg11.yaml`
(UN SDG 11 indicators). An entry's `compute` block is the formula; its `examples` are hand-computed
cases that `tests/test_catalogue_examples.py` checks, so the formula and its test live together.

Formula kinds (`compute.kind`):
- ``ratio``: value = numerator / denominator * scale. Numerator and denominator are arithmetic
  expressions over canonical variables; ``var["data point"]`` selects a data point, and the
  placeholder ``{data_point}`` is replaced by each of the entry's data points in turn.
- ``value``: value = expression (published directly, e.g. life expectancy, annual mean).
- ``population_weighted_mean``: sum(weight_i * variable_i) / sum(weight_i) over areas of
  ``area_type`` (e.g. SDG 11.6.2: PM2.5 weighted by district population).
- ``growth_ratio``: the ratio of two continuous growth rates over the same period (SDG 11.3.1
  LCRPGR): (ln(N_t / N_t0) / y) / (ln(D_t / D_t0) / y) * scale, N = numerator, D = denominator,
  y = t - t0. The base year t0 is the earliest year from t - ``years`` to t - ``min_years``
  (default: exactly t - ``years``) where every input exists. Example inputs of another year are
  written ``name@YEAR`` (the example's own year is 2000).

``caveat`` (any kind) is a short deviation from the official method, reported as the
``status_reason`` of every computed row so that it travels with the value.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Framework = Literal["u4ssc", "sdg11"]
FRAMEWORK_FILES: dict[Framework, str] = {"u4ssc": "u4ssc.yaml", "sdg11": "sdg11.yaml"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Compute(_Strict):
    kind: Literal["ratio", "value", "population_weighted_mean", "growth_ratio"]
    formula_version: Annotated[str, Field(pattern=r"^\d+(\.\d+)*$")] = "1"
    numerator: str | None = None
    denominator: str | None = None
    scale: float = 1.0
    expression: str | None = None
    variable: str | None = None
    weight: str | None = None
    area_type: str = "district"
    years: Annotated[int, Field(ge=1)] | None = Field(default=None, description="growth_ratio: period length n.")
    min_years: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="growth_ratio: shortest accepted period when t - years has no data.")
    note: str | None = Field(default=None, description="Why this formula, where it deviates from the source.")
    caveat: str | None = Field(default=None, description="Shown as status_reason of computed rows.")

    @model_validator(mode="after")
    def _fields_for_kind(self) -> Compute:
        need = {
            "ratio": ("numerator", "denominator"),
            "value": ("expression",),
            "population_weighted_mean": ("variable", "weight"),
            "growth_ratio": ("numerator", "denominator", "years"),
        }[self.kind]
        missing = [name for name in need if getattr(self, name) is None]
        if missing:
            raise ValueError(f"compute kind {self.kind!r} needs {missing}")
        if self.min_years is not None and (self.years is None or self.min_years > self.years):
            raise ValueError("min_years needs years and must not exceed it")
        return self

    @property
    def base_years(self) -> tuple[int, int]:
        """growth_ratio: (longest, shortest) accepted period in years."""
        assert self.years is not None
        return self.years, self.min_years or self.years


class Example(_Strict):
    """A hand-computed case. Keys of `inputs` are variable refs (``name`` or ``name[data point]``) of
    the example's year 2000, or ``ref@YEAR`` for another year (growth_ratio); for area-based kinds,
    `area_inputs` maps area id -> {variable ref: value}."""

    description: str = ""
    inputs: dict[str, float] = Field(default_factory=dict)
    area_inputs: dict[str, dict[str, float]] = Field(default_factory=dict)
    data_point: str | None = None
    expected: float | None = Field(description="Expected value; null when the KPI must come out missing.")
    tolerance: float = 1e-9


class Indicator(_Strict):
    id: str
    framework: Framework
    name: str
    unit: str
    definition: str = ""
    formula_text: str = Field(default="", description="The formula as the methodology states it.")
    dimension: str | None = None
    subdimension: str | None = None
    category: str | None = None
    type: Literal["core", "advanced"] | None = None
    sdg_targets: list[str] = Field(default_factory=list)
    data_points: list[str] = Field(default_factory=list)
    source: str = Field(default="", description="Where the facts and formula were read.")
    confidence: str = ""
    compute: Compute | None = None
    examples: list[Example] = Field(default_factory=list)

    @model_validator(mode="after")
    def _u4ssc_fields(self) -> Indicator:
        if self.framework == "u4ssc":
            missing = [f for f in ("dimension", "subdimension", "category", "type") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"U4SSC indicator {self.id} needs {missing}")
        if self.compute is not None and not self.examples:
            raise ValueError(f"indicator {self.id} has a formula but no hand-computed example")
        return self


class CatalogueError(ValueError):
    pass


@cache
def load_catalogue() -> tuple[Indicator, ...]:
    """All indicators of both frameworks, in catalogue order. Validated once per process."""
    indicators: list[Indicator] = []
    for framework, filename in FRAMEWORK_FILES.items():
        text = resources.files("kpis").joinpath("indicators", filename).read_text(encoding="utf-8")
        entries = yaml.safe_load(text) or []
        for index, entry in enumerate(entries):
            try:
                indicators.append(Indicator.model_validate({"framework": framework, **entry}))
            except ValidationError as exc:
                first = exc.errors()[0]
                loc = ".".join(str(p) for p in first["loc"])
                raise CatalogueError(
                    f"kpis/indicators/{filename} entry {index} ({entry.get('id')}) at {loc}: {first['msg']}"
                ) from None
    ids = [i.id for i in indicators]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise CatalogueError(f"duplicate indicator ids in catalogue: {sorted(duplicates)}")
    return tuple(indicators)


def indicators_by_id() -> dict[str, Indicator]:
    return {indicator.id: indicator for indicator in load_catalogue()}
