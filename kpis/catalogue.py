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

``lookback_years`` (ratio and value kinds): when an input is absent in the reporting year, every
input is taken from the latest earlier year, at most ``lookback_years`` back, in which all of them
exist (one common year, so that e.g. voters and eligible voters come from the same election). The
inputs' provenance carries the year used and the ``status_reason`` says it.

``caveat`` (any kind) is a short deviation from the official method, reported as the
``status_reason`` of every computed row so that it travels with the value.

Per-data-point formulas: ``compute`` is the formula of every data point (``{data_point}`` template);
``data_point_compute`` maps a data point to its own ``Compute`` where one formula cannot serve all
of them (U4SSC Open Data: the number of published datasets beside their percentage).
`Indicator.compute_for` gives the formula of one data point.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Framework = Literal["u4ssc", "sdg11"]
# Which way is better, from the indicator's meaning (docs/indicators.md#direction): `target_band` = a value
# near a reference point is best (e.g. a female:male pay ratio of 1); `neutral` = a context figure.
Direction = Literal["higher_is_better", "lower_is_better", "target_band", "neutral"]
DIRECTION_WORDS: dict[Direction, str] = {
    "higher_is_better": "higher is better", "lower_is_better": "lower is better",
    "target_band": "nearer the reference point is better", "neutral": "context figure: no better or worse"}
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
    lookback_years: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="ratio/value: take all inputs from the latest year at most this many years "
                                  "before the reporting year when they are absent in it (e.g. the last election).")
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
        if self.lookback_years is not None and self.kind not in ("ratio", "value"):
            raise ValueError(f"lookback_years applies to kinds ratio and value, not {self.kind!r}")
        return self

    @property
    def base_years(self) -> tuple[int, int]:
        """growth_ratio: (longest, shortest) accepted period in years."""
        assert self.years is not None
        return self.years, self.min_years or self.years


class Example(_Strict):
    """A hand-computed case. Keys of `inputs` are variable refs (``name`` or ``name[data point]``) of
    the example's year 2000, or ``ref@YEAR`` for another year (growth_ratio, lookback_years); for
    area-based kinds, `area_inputs` maps area id -> {variable ref: value}. An edge case that must not
    compute has ``expected: null`` and, unless it comes out missing, ``status: failed_check``."""

    description: str = ""
    inputs: dict[str, float] = Field(default_factory=dict)
    area_inputs: dict[str, dict[str, float]] = Field(default_factory=dict)
    data_point: str | None = None
    year: int | None = Field(default=None, ge=1900, le=2100, description=(
        "Reporting year of the inputs (default 2000, a leap year); matters to calendar names (days_in_year)."))
    expected: float | None = Field(description="Expected value; null when the KPI must not be computed.")
    status: Literal["computed", "missing", "failed_check"] | None = Field(
        default=None, description="Expected status; default computed when `expected` is a number, else missing.")
    tolerance: float = 1e-9

    @model_validator(mode="after")
    def _status_matches_value(self) -> Example:
        if (self.expected is None) == (self.expected_status == "computed"):
            raise ValueError(f"example {self.description!r}: status {self.expected_status} "
                             f"{'needs' if self.expected is None else 'cannot have'} an expected value")
        return self

    @property
    def expected_status(self) -> str:
        if self.status is not None:
            return self.status
        return "missing" if self.expected is None else "computed"


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
    direction: Direction = Field(description=(
        "Which way is better (required): higher_is_better, lower_is_better, target_band (a value near a "
        "reference point is best; direction_note says which), neutral (a context figure)."))
    direction_note: str = Field(default="", description="Why, where the direction is a judgement.")
    data_point_directions: dict[str, Direction] = Field(
        default_factory=dict, description="Data point -> its own direction, where they differ (mode shares).")
    compute: Compute | None = None
    data_point_compute: dict[str, Compute] = Field(
        default_factory=dict, description="Data point -> its own formula, overriding `compute` for it.")
    examples: list[Example] = Field(default_factory=list)

    @model_validator(mode="after")
    def _u4ssc_fields(self) -> Indicator:
        if self.framework == "u4ssc":
            missing = [f for f in ("dimension", "subdimension", "category", "type") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"U4SSC indicator {self.id} needs {missing}")
        unknown_points = sorted(set(self.data_point_directions) - set(self.data_points))
        if unknown_points:
            raise ValueError(f"indicator {self.id}: data_point_directions for unknown data point(s) {unknown_points}")
        if "target_band" in (self.direction, *self.data_point_directions.values()) and not self.direction_note:
            raise ValueError(f"indicator {self.id}: a target_band direction needs a direction_note naming the band")
        if self.compute is not None and not self.examples:
            raise ValueError(f"indicator {self.id} has a formula but no hand-computed example")
        if self.data_point_compute:
            # `compute` stays the formula of record (has_formula, quality metadata read it), so an
            # override never stands alone.
            if self.compute is None:
                raise ValueError(f"indicator {self.id}: data_point_compute needs a default compute")
            unknown = sorted(set(self.data_point_compute) - set(self.data_points))
            if unknown:
                raise ValueError(f"indicator {self.id}: data_point_compute for unknown data point(s) {unknown}")
            untested = sorted(dp for dp in self.data_point_compute
                              if not any(e.data_point == dp for e in self.examples))
            if untested:
                raise ValueError(f"indicator {self.id}: no hand-computed example for data point(s) {untested}")
        return self

    def compute_for(self, data_point: str | None) -> Compute | None:
        """The formula of one data point: its own entry in data_point_compute, else `compute`."""
        if data_point is not None and data_point in self.data_point_compute:
            return self.data_point_compute[data_point]
        return self.compute

    def direction_for(self, data_point: str | None) -> Direction:
        """Which way is better for one data point: its own entry in data_point_directions, else `direction`."""
        if data_point is not None and data_point in self.data_point_directions:
            return self.data_point_directions[data_point]
        return self.direction

    def computes(self) -> list[tuple[str | None, Compute]]:
        """(data point, formula) for every data point (None for an indicator without data points)."""
        points: list[str | None] = list(self.data_points) if self.data_points else [None]
        return [(dp, c) for dp in points if (c := self.compute_for(dp)) is not None]


class CatalogueError(ValueError):
    pass


@cache
def load_catalogue() -> tuple[Indicator, ...]:
    """All indicators of both frameworks, in catalogue order. Validated once per process."""
    indicators: list[Indicator] = []
    for framework, filename in FRAMEWORK_FILES.items():
        text = resources.files("kpis").joinpath("indicators", filename).read_text(encoding="utf-8")
        # libyaml's safe loader when present: the same documents, about 10x faster (every process parses this).
        entries = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or []
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
