"""The Data Docs merge one check's per-city GX parts as they come (publish/data_docs.py `_Merge`), keeping only
what the page shows. It must give the result the plain merge over the whole list gives (the code before the
streaming merge, kept here as the reference): sums, the first SHOWN_ROWS failing rows and values in city
order, the first failing city's sentence, the first raised exception."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from publish.data_docs import SHOWN_ROWS, _Merge


def _reference(parts: list[dict[str, Any]]) -> Any:
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    cfg = dict(parts[0]["expectation_config"])
    failing = [p for p in parts if not p.get("success")]
    if failing and any(p["expectation_config"].get("description") for p in failing):
        more = len(failing) - 1
        cfg["description"] = failing[0]["expectation_config"].get("description", "") + (
            f" (and {more} more cit{'ies' if more > 1 else 'y'}: see the failing cities below)" if more > 0 else "")
    results = [p.get("result") or {} for p in parts]
    index = [e for r in results for e in r.get("unexpected_index_list") or []][:SHOWN_ROWS]
    values = [v for r in results for v in r.get("unexpected_list") or r.get("partial_unexpected_list") or []][
        :SHOWN_ROWS]
    counts = Counter(tuple(v.values()) if isinstance(v, dict) else v for v in values)
    elements = sum(int(r.get("element_count") or 0) for r in results)
    unexpected = sum(int(r.get("unexpected_count") or 0) for r in results)
    result: dict[str, Any] = {
        "element_count": elements, "unexpected_count": unexpected,
        "unexpected_percent": 100.0 * unexpected / elements if elements else 0.0,
        "missing_count": 0, "missing_percent": 0.0,
        "unexpected_index_column_names": next((r["unexpected_index_column_names"] for r in results
                                               if r.get("unexpected_index_column_names")), None),
        "unexpected_index_list": index, "unexpected_list": values, "partial_unexpected_list": values,
        "partial_unexpected_index_list": index}
    if any(r.get("partial_unexpected_counts") for r in results):
        result["partial_unexpected_counts"] = [{"value": v, "count": n} for v, n in counts.most_common()]
    raised = next((p.get("exception_info") for p in parts
                   if (p.get("exception_info") or {}).get("raised_exception")), None)
    config = ExpectationConfiguration(type=cfg["type"], kwargs=cfg["kwargs"], meta=cfg.get("meta"),
                                      description=cfg.get("description"))
    return ExpectationValidationResult(success=not failing, expectation_config=config, result=result,
                                       exception_info=raised or {})


def _part(city: int, *, failing: int = 0, description: str | None = None, raised: bool = False,
          counts: bool = False, columns: bool = True) -> dict[str, Any]:
    config: dict[str, Any] = {"type": "expect_column_values_to_be_between",
                              "kwargs": {"column": "value", "min_value": 0, "max_value": 10},
                              "meta": {"check": "value_range"}}
    if description is not None:
        config["description"] = description
    rows = [{"city_id": f"c{city}", "year": 2020 + i % 4, "_rowid": city * 1000 + i} for i in range(failing)]
    result: dict[str, Any] = {"element_count": 50 + city + failing, "unexpected_count": failing,
                              "unexpected_index_list": rows,
                              "partial_unexpected_list": [11 + (i % 3) for i in range(failing)]}
    if columns:
        result["unexpected_index_column_names"] = ["city_id", "year"]
    if counts:
        result["partial_unexpected_counts"] = [{"value": 11, "count": failing}]
    part: dict[str, Any] = {"expectation_config": config, "success": failing == 0 and not raised, "result": result}
    if raised:
        part["exception_info"] = {"raised_exception": True, "exception_message": f"boom in c{city}"}
    return part


CASES = {
    "all pass": [_part(i) for i in range(5)],
    "one city fails, with its sentence": [_part(0), _part(1, failing=3, description="Failing in c1: ..."), _part(2)],
    "many fail, past the rows shown": [_part(i, failing=90, description=f"Failing in c{i}") for i in range(4)],
    "failing without sentences, then one with": [_part(0, failing=2), _part(1, failing=1, description="c1 rows")],
    "a raised exception among failures": [_part(0, failing=1), _part(1, raised=True), _part(2, raised=True)],
    "value counts": [_part(0, failing=5, counts=True), _part(1), _part(2, failing=250, counts=True)],
    "index columns only from a later part": [_part(0, columns=False), _part(1, failing=2)],
    "one part": [_part(7, failing=1, description="only c7")],
}


@pytest.mark.parametrize("name", list(CASES))
def test_streaming_merge_equals_the_merge_of_the_whole_list(name: str) -> None:
    parts = CASES[name]
    expected = _reference(parts)
    merge = _Merge()
    for part in parts:  # one pass over the parts, as render_page gives them
        merge.add(part)
    merged = merge.result()
    assert merged.to_json_dict() == expected.to_json_dict()
    assert merged.result == expected.result
    if name == "many fail, past the rows shown":
        assert len(merged.result["unexpected_index_list"]) == SHOWN_ROWS
        assert merged.result["unexpected_count"] == 360 and not merged.success
    if name == "a raised exception among failures":
        assert merged.exception_info["exception_message"] == "boom in c1"
