"""Compute indicator values from canonical observations.

Every catalogue indicator yields one row per city, reporting year and data point, whatever
happens: `computed` with the value and the working (numerator, denominator, inputs with their
source records, formula and version), `missing` naming exactly which variables are absent,
or `failed_check` naming the failing input or the zero denominator. Nothing is dropped.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from kpis.catalogue import Compute, Indicator, load_catalogue
from kpis.expressions import VariableRef, evaluate, references

KPI_COLUMNS: dict[str, Any] = {
    "city_id": pl.String, "year": pl.Int32, "indicator_id": pl.String, "framework": pl.String,
    "data_point": pl.String, "value": pl.Float64, "unit": pl.String, "status": pl.String,
    "status_reason": pl.String, "numerator": pl.Float64, "denominator": pl.Float64,
    "missing_inputs": pl.List(pl.String), "inputs": pl.String, "formula": pl.String,
    "formula_version": pl.String, "confidence": pl.String, "method_variant": pl.String, "caveats": pl.String,
}
AS_PUBLISHED = "as published"
OBSERVATION_KEY = ("city_id", "year", "variable", "data_point", "area_type", "area_id")
EXAMPLE_YEAR = 2000


@dataclass(frozen=True)
class Observation:
    variable: str
    data_point: str | None
    area_type: str
    area_id: str
    value: float
    unit: str
    source_id: str
    snapshot_id: str | None
    source_record: str
    failed_check: str | None = None
    year: int | None = None  # set only where a formula may read another year (growth_ratio, lookback_years)
    derivation: str | None = None  # '<name>@<version>' of a derived input (method_variant); not in provenance

    def provenance(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "variable": self.variable, "data_point": self.data_point, "year": self.year, "area_type": self.area_type,
            "area_id": self.area_id, "value": self.value, "unit": self.unit, "source_id": self.source_id,
            "snapshot_id": self.snapshot_id, "source_record": self.source_record,
        }
        return {k: v for k, v in record.items() if v is not None}


@dataclass
class CityYearInputs:
    """Observations of one city and year, indexed for formula evaluation."""

    city_id: str
    year: int
    city: dict[VariableRef, Observation] = field(default_factory=dict)
    areas: dict[str, dict[str, dict[VariableRef, Observation]]] = field(default_factory=dict)
    # Every year of the same city (this one included), for formulas over a period (growth_ratio).
    history: dict[int, CityYearInputs] = field(default_factory=dict, repr=False, compare=False)
    # Why a derivation withheld a variable it could have computed (core_withheld): named in missing rows.
    withheld: dict[VariableRef, str] = field(default_factory=dict)

    def add(self, obs: Observation) -> None:
        ref = VariableRef(obs.variable, obs.data_point)
        if obs.area_type == "city":
            self.city[ref] = obs
        else:
            self.areas.setdefault(obs.area_type, {}).setdefault(obs.area_id, {})[ref] = obs


@dataclass
class Result:
    status: str
    value: float | None = None
    numerator: float | None = None
    denominator: float | None = None
    reason: str | None = None
    missing: list[str] = field(default_factory=list)
    inputs: list[Observation] = field(default_factory=list)


def index_observations(observations: pl.DataFrame) -> dict[tuple[str, int], CityYearInputs]:
    """Group observation rows by (city, year). Expects the warehouse `observations` columns."""
    grouped: dict[tuple[str, int], CityYearInputs] = {}
    height = observations.height

    def column(name: str) -> list[Any]:
        return observations.get_column(name).to_list() if name in observations.columns else [None] * height

    # Column lists zipped, not iter_rows(named=True): a dict per row was most of the indexing's cost.
    for city_id, year, variable, data_point, area_type, area_id, value, unit, source_id, snapshot_id, \
            source_record, failed_check, derivation in zip(*map(column, (
                "city_id", "year", "variable", "data_point", "area_type", "area_id", "value", "unit", "source_id",
                "snapshot_id", "source_record", "failed_check", "derivation")), strict=True):
        key = (city_id, int(year))
        bucket = grouped.get(key)
        if bucket is None:
            bucket = grouped[key] = CityYearInputs(city_id=city_id, year=key[1])
        bucket.add(Observation(
            variable=variable, data_point=data_point, area_type=area_type, area_id=area_id, value=float(value),
            unit=unit, source_id=source_id, snapshot_id=snapshot_id, source_record=source_record,
            failed_check=failed_check, derivation=derivation,
        ))
    return grouped


def _substitute(text: str | None, data_point: str | None) -> str | None:
    if text is None or data_point is None:
        return text
    return text.replace("{data_point}", data_point)


def formula_string(compute: Compute, data_point: str | None = None) -> str:
    if compute.kind == "ratio":
        num, den = _substitute(compute.numerator, data_point), _substitute(compute.denominator, data_point)
        scale = "" if compute.scale == 1 else f" * {compute.scale:g}"
        return f"({num}) / ({den}){scale}{_lookback_text(compute)}"
    if compute.kind == "value":
        return f"{_substitute(compute.expression, data_point)}{_lookback_text(compute)}"
    if compute.kind == "growth_ratio":
        num, den = _substitute(compute.numerator, data_point), _substitute(compute.denominator, data_point)
        longest, shortest = compute.base_years
        base = (f"t0 = t - {longest}" if longest == shortest
                else f"t0 = earliest year from t - {longest} to t - {shortest} with every input")
        scale = "" if compute.scale == 1 else f" * {compute.scale:g}"
        return f"(ln({num}[t] / {num}[t0]) / y) / (ln({den}[t] / {den}[t0]) / y){scale}; {base}; y = t - t0"
    variable = _substitute(compute.variable, data_point)
    return f"sum({compute.weight} * {variable}) / sum({compute.weight}) over {compute.area_type} areas"


def _gather(refs: Sequence[VariableRef], available: Mapping[VariableRef, Observation]) -> tuple[
        dict[VariableRef, Observation], list[str]]:
    found = {ref: available[ref] for ref in refs if ref in available}
    missing = [str(ref) for ref in refs if ref not in available]
    return found, missing


def _lookback_text(compute: Compute) -> str:
    if not compute.lookback_years:
        return ""
    return (f"; inputs of the latest year from t - {compute.lookback_years} to t with all of them "
            "(one common year)")


@dataclass
class _Gathered:
    found: dict[VariableRef, Observation]
    missing: list[str]
    reason: str | None = None  # set when the inputs come from an earlier year


def _gather_inputs(refs: Sequence[VariableRef], compute: Compute, data: CityYearInputs) -> _Gathered:
    """Inputs of the reporting year, or with `lookback_years` of the latest earlier year holding all of them.

    Looked-back inputs come from one common year (never the numerator of one election over the
    denominator of another), and their provenance carries that year."""
    found, missing = _gather(refs, data.city)
    if not compute.lookback_years:
        return _Gathered(found, missing)
    if not missing:
        return _Gathered({ref: replace(obs, year=data.year) for ref, obs in found.items()}, [])
    first = data.year - compute.lookback_years
    for year in range(data.year - 1, first - 1, -1):
        bucket = data.history.get(year)
        if bucket is not None and all(ref in bucket.city for ref in refs):
            return _Gathered({ref: replace(bucket.city[ref], year=year) for ref in refs}, [],
                             reason=f"inputs of {year}, the latest year with all of them "
                                    f"(looked back from {data.year} to {first})")
    return _Gathered({ref: replace(obs, year=data.year) for ref, obs in found.items()}, missing,
                     reason=f"no year from {first} to {data.year} has all of them")


def _withheld_reasons(data: CityYearInputs, refs: Iterable[VariableRef]) -> str:
    """"; withheld: <reason>" for each missing input a derivation withheld (the rule and the figures)."""
    reasons = list(dict.fromkeys(data.withheld[ref] for ref in refs if ref in data.withheld))
    return "; withheld: " + "; ".join(reasons) if reasons else ""


def _missing_result(gathered: _Gathered, data: CityYearInputs, refs: Sequence[VariableRef]) -> Result:
    reason = "missing input(s): " + ", ".join(gathered.missing)
    if gathered.reason:
        reason += f" ({gathered.reason})"
    reason += _withheld_reasons(data, [ref for ref in refs if str(ref) in gathered.missing])
    return Result("missing", reason=reason, missing=gathered.missing, inputs=list(gathered.found.values()))


def _failed_inputs(inputs: Iterable[Observation]) -> str | None:
    failures = [f"{obs.variable} ({obs.failed_check})" for obs in inputs if obs.failed_check]
    return "input failed a blocking check: " + "; ".join(failures) if failures else None


def _inputs_year(gathered: _Gathered, data: CityYearInputs) -> int:
    """The year the inputs belong to (an earlier one when looked back): days_in_year is that year's."""
    years = {obs.year for obs in gathered.found.values() if obs.year is not None}
    return years.pop() if len(years) == 1 else data.year


def _evaluate_ratio(compute: Compute, data_point: str | None, data: CityYearInputs) -> Result:
    num_text = _substitute(compute.numerator, data_point)
    den_text = _substitute(compute.denominator, data_point)
    assert num_text is not None and den_text is not None
    refs = references(num_text) + [r for r in references(den_text) if r not in references(num_text)]
    gathered = _gather_inputs(refs, compute, data)
    if gathered.missing:
        return _missing_result(gathered, data, refs)
    values = {ref: obs.value for ref, obs in gathered.found.items()}
    year = _inputs_year(gathered, data)
    numerator, denominator = evaluate(num_text, values, year=year), evaluate(den_text, values, year=year)
    inputs = list(gathered.found.values())
    failed = _failed_inputs(inputs)
    if failed:
        return Result("failed_check", reason=failed, numerator=numerator, denominator=denominator, inputs=inputs)
    if denominator == 0:
        return Result("failed_check", reason=f"denominator {den_text} is 0", numerator=numerator,
                      denominator=denominator, inputs=inputs)
    return Result("computed", value=numerator / denominator * compute.scale, numerator=numerator,
                  denominator=denominator, inputs=inputs, reason=gathered.reason)


def _evaluate_value(compute: Compute, data_point: str | None, data: CityYearInputs) -> Result:
    text = _substitute(compute.expression, data_point)
    assert text is not None
    gathered = _gather_inputs(references(text), compute, data)
    if gathered.missing:
        return _missing_result(gathered, data, references(text))
    inputs = list(gathered.found.values())
    value = evaluate(text, {ref: obs.value for ref, obs in gathered.found.items()}, year=_inputs_year(gathered, data))
    failed = _failed_inputs(inputs)
    if failed:
        return Result("failed_check", reason=failed, inputs=inputs)
    return Result("computed", value=value, inputs=inputs, reason=gathered.reason)


def _evaluate_weighted_mean(compute: Compute, data_point: str | None, data: CityYearInputs) -> Result:
    variable = VariableRef.parse(_substitute(compute.variable, data_point) or "")
    weight = VariableRef.parse(compute.weight or "")
    areas = data.areas.get(compute.area_type, {})
    with_weight = {aid: obs for aid, obs in areas.items() if weight in obs}
    complete = {aid: obs for aid, obs in with_weight.items() if variable in obs}
    if not complete:
        missing = [f"{ref} per {compute.area_type}" for ref in (variable, weight)
                   if not any(ref in obs for obs in areas.values())]
        missing = missing or [f"{variable} and {weight} for the same {compute.area_type}"]
        return Result("missing", reason="missing input(s): " + ", ".join(missing)
                      + _withheld_reasons(data, [variable, weight]), missing=missing)
    inputs = [o for obs in complete.values() for o in (obs[weight], obs[variable])]
    total_weight = sum(obs[weight].value for obs in complete.values())
    weighted = sum(obs[weight].value * obs[variable].value for obs in complete.values())
    failed = _failed_inputs(inputs)
    if failed:
        return Result("failed_check", reason=failed, numerator=weighted, denominator=total_weight, inputs=inputs)
    if total_weight == 0:
        return Result("failed_check", reason=f"total {weight} is 0", inputs=inputs)
    all_weight = sum(obs[weight].value for obs in with_weight.values())
    reason = None
    if len(complete) < len(with_weight):
        uncovered = sorted(set(with_weight) - set(complete))
        reason = (f"covers {100 * total_weight / all_weight:.1f}% of {weight}; no {variable} for "
                  f"{compute.area_type}(s) {', '.join(uncovered)}")
    return Result("computed", value=weighted / total_weight, numerator=weighted, denominator=total_weight,
                  inputs=inputs, reason=reason)


def _base_year(refs: Sequence[VariableRef], compute: Compute, data: CityYearInputs) -> tuple[int | None, list[str]]:
    """(earliest accepted base year with every input, or None and the inputs to name as missing)."""
    longest, shortest = compute.base_years
    candidates = range(data.year - longest, data.year - shortest + 1)
    for year in candidates:
        bucket = data.history.get(year)
        if bucket is not None and all(ref in bucket.city for ref in refs):
            return year, []
    span = str(candidates[0]) if len(candidates) == 1 else f"{candidates[0]}-{candidates[-1]}"
    absent = [ref for ref in refs if not any(ref in data.history[y].city for y in candidates if y in data.history)]
    if absent:
        return None, [f"{ref} in {span}" for ref in absent]
    return None, [f"{', '.join(map(str, refs))} in one common year of {span}"]


def _evaluate_growth_ratio(compute: Compute, data_point: str | None, data: CityYearInputs) -> Result:
    num_text = _substitute(compute.numerator, data_point)
    den_text = _substitute(compute.denominator, data_point)
    assert num_text is not None and den_text is not None
    refs = references(num_text) + [r for r in references(den_text) if r not in references(num_text)]
    current, missing = _gather(refs, data.city)
    if missing:
        named = [f"{m} in {data.year}" for m in missing]
        return Result("missing", reason="missing input(s): " + ", ".join(named), missing=named,
                      inputs=[replace(o, year=data.year) for o in current.values()])
    base, missing = _base_year(refs, compute, data)
    if base is None:
        return Result("missing", reason="no base year: missing input(s) " + ", ".join(missing), missing=missing,
                      inputs=[replace(o, year=data.year) for o in current.values()])
    before = {ref: data.history[base].city[ref] for ref in refs}
    inputs = ([replace(o, year=data.year) for o in current.values()]
              + [replace(o, year=base) for o in before.values()])
    now_values = {ref: o.value for ref, o in current.items()}
    base_values = {ref: o.value for ref, o in before.items()}
    levels = {(text, year): evaluate(text, values, year=year) for text in (num_text, den_text)
              for year, values in ((data.year, now_values), (base, base_values))}
    failed = _failed_inputs(inputs)
    if failed:
        return Result("failed_check", reason=failed, inputs=inputs)
    bad = [f"{text} in {year} is {value:g}" for (text, year), value in levels.items() if not value > 0]
    if bad:
        return Result("failed_check", reason="growth rate needs positive values: " + "; ".join(bad), inputs=inputs)
    years = data.year - base
    rate_num = math.log(levels[num_text, data.year] / levels[num_text, base]) / years
    rate_den = math.log(levels[den_text, data.year] / levels[den_text, base]) / years
    if rate_den == 0:
        return Result("failed_check", numerator=rate_num, denominator=rate_den, inputs=inputs,
                      reason=f"growth rate of {den_text} is 0 (same value in {base} and {data.year}): "
                             "the ratio is undefined")
    return Result("computed", value=rate_num / rate_den * compute.scale, numerator=rate_num, denominator=rate_den,
                  inputs=inputs, reason=f"base year {base} ({years} years)")


_EVALUATORS = {"ratio": _evaluate_ratio, "value": _evaluate_value,
               "population_weighted_mean": _evaluate_weighted_mean, "growth_ratio": _evaluate_growth_ratio}


def evaluate_indicator(indicator: Indicator, data_point: str | None, data: CityYearInputs) -> Result:
    compute = indicator.compute_for(data_point)
    if compute is None:
        return Result("missing", reason="no formula implemented in citykpi yet (catalogue entry only)")
    result = _EVALUATORS[compute.kind](compute, data_point, data)
    if result.value is not None and not math.isfinite(result.value):
        return Result("failed_check", reason=f"value is not finite ({result.value})", inputs=result.inputs)
    caveat = compute.caveat
    if caveat and result.status == "computed":
        result.reason = f"{result.reason}; {caveat}" if result.reason else caveat
    return result


def _data_points(indicator: Indicator) -> list[str | None]:
    return list(indicator.data_points) if indicator.data_points else [None]


def compute_kpi_values(
    observations: pl.DataFrame,
    reporting_years: Mapping[str, Sequence[int]],
    indicators: Sequence[Indicator] | None = None,
    withheld: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per (city, reporting year, indicator, data point). `reporting_years` maps city id -> years.
    `withheld`: rows of core_withheld (city_id, year, variable, data_point, reason); a missing row whose
    input was withheld by a derivation names that reason."""
    indicators = indicators if indicators is not None else load_catalogue()
    grouped = index_observations(observations)
    for row in (withheld.iter_rows(named=True) if withheld is not None else ()):
        key = (row["city_id"], int(row["year"]))
        bucket = grouped.setdefault(key, CityYearInputs(city_id=key[0], year=key[1]))
        ref = VariableRef(row["variable"], row["data_point"])
        bucket.withheld[ref] = "; ".join(filter(None, (bucket.withheld.get(ref), row["reason"])))
    history: dict[str, dict[int, CityYearInputs]] = {}
    for (city_id, year), bucket in grouped.items():
        history.setdefault(city_id, {})[year] = bucket
        bucket.history = history[city_id]
    rows: list[dict[str, Any]] = []
    for city_id, years in reporting_years.items():
        for year in years:
            data = grouped.get((city_id, year)) or CityYearInputs(city_id=city_id, year=year,
                                                                  history=history.get(city_id, {}))
            for indicator in indicators:
                for data_point in _data_points(indicator):
                    result = evaluate_indicator(indicator, data_point, data)
                    rows.append(_row(indicator, data_point, data, result))
    return pl.DataFrame(rows, schema=KPI_COLUMNS, orient="row") if rows else pl.DataFrame(schema=KPI_COLUMNS)


def _row(indicator: Indicator, data_point: str | None, data: CityYearInputs, result: Result) -> dict[str, Any]:
    compute = indicator.compute_for(data_point)
    inputs = sorted((obs.provenance() for obs in result.inputs),
                    key=lambda p: (p["variable"], p.get("data_point") or "", p["area_id"], p.get("year", 0)))
    return {
        "city_id": data.city_id, "year": data.year, "indicator_id": indicator.id,
        "framework": indicator.framework, "data_point": data_point,
        "value": result.value, "unit": indicator.unit, "status": result.status,
        "status_reason": result.reason, "numerator": result.numerator, "denominator": result.denominator,
        "missing_inputs": result.missing,
        "inputs": json.dumps(inputs, sort_keys=True, ensure_ascii=False),
        "formula": formula_string(compute, data_point) if compute else None,
        "formula_version": compute.formula_version if compute else None,
        "confidence": confidence_of(indicator),
        "method_variant": method_variant(result.inputs),
        "caveats": compute.caveat if compute else None,
    }


def confidence_of(indicator: Indicator) -> str | None:
    """The catalogue's confidence word (formula_read, page_partly_read, name_unit_read, metadata_read,
    corroborated, from_knowledge, inferred): how much of the official method was read."""
    match = re.match(r"[a-z_]+", indicator.confidence.strip())
    return match.group(0) if match else None


def method_variant(inputs: Iterable[Observation]) -> str | None:
    """How the inputs were made: their derivations ('city_annual_mean@2; polygon_area@2'), plus
    'as published' when some came from a source as it is; None without inputs."""
    inputs = list(inputs)
    if not inputs:
        return None
    names = sorted({obs.derivation for obs in inputs if obs.derivation})
    if any(obs.derivation is None for obs in inputs):
        names.append(AS_PUBLISHED)
    return "; ".join(names)


def inputs_from_example(indicator: Indicator, inputs: Mapping[str, float],
                        area_inputs: Mapping[str, Mapping[str, float]], year: int | None = None) -> CityYearInputs:
    """Build evaluation inputs from a catalogue example (used by the catalogue's own tests).

    The example's year is `year`, by default 2000 (a leap year); an input key ``name@1995`` is a value
    of another year."""
    area_type = indicator.compute.area_type if indicator.compute else "district"
    this_year = EXAMPLE_YEAR if year is None else year
    data = CityYearInputs(city_id="example", year=this_year)
    data.history[this_year] = data
    for key, value in inputs.items():
        name, at, year_text = key.rpartition("@")
        dated = bool(at) and year_text.isdigit()
        year, ref = (int(year_text), VariableRef.parse(name)) if dated else (this_year, VariableRef.parse(key))
        bucket = data.history.setdefault(year, CityYearInputs(city_id="example", year=year, history=data.history))
        bucket.add(Observation(ref.variable, ref.data_point, "city", "example", value, "", "example", None,
                               f"example input {key}"))
    for area_id, values in area_inputs.items():
        for key, value in values.items():
            ref = VariableRef.parse(key)
            data.add(Observation(ref.variable, ref.data_point, area_type, area_id, value, "", "example", None,
                                 f"example input {area_id}/{key}"))
    return data
