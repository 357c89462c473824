"""The message of failed fetches stays readable however many sources failed."""

from __future__ import annotations

from pipelines.steps import FetchFailedError


def test_a_few_failures_are_named_on_one_line() -> None:
    error = FetchFailedError({"a/air": "timed out", "b/stats": "HTTP 404"})
    assert str(error) == "failed sources: a/air: timed out; b/stats: HTTP 404"


def test_many_failures_show_the_first_ones_and_count_the_rest() -> None:
    failures = {f"city-{i:04d}/src-{j}": f"source 'src-{j}' has no snapshot yet" for i in range(100) for j in range(9)}
    message = str(FetchFailedError(failures))
    assert message.startswith("900 sources of 100 cities failed to fetch; the first 10: "
                              "city-0000/src-0: source 'src-0' has no snapshot yet; ")
    assert message.count("has no snapshot yet") == FetchFailedError.SHOWN
    assert message.endswith("; and 890 more")
    assert FetchFailedError(failures).failures == failures  # every failure kept for callers
