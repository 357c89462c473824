"""Per-partition metadata stops past PER_PARTITION_METADATA_MAX partitions (Dagster checks each call
against the run's whole range: partitions squared), and says so in the run's own metadata."""

from __future__ import annotations

from typing import Any

from pipelines.city_assets import PER_PARTITION_METADATA_MAX, _partition_metadata


class _Context:
    """A partitioned execution over a range of keys (a deployment backfill)."""

    has_partition_key = False

    def __init__(self, keys: list[str], *, partitioned: bool = True) -> None:
        self.partition_keys = keys
        self.has_partition_key_range = partitioned
        self.calls: list[str] = []

    def add_asset_metadata(self, metadata: dict[str, Any], partition_key: str) -> None:
        self.calls.append(partition_key)


def _keys(n_cities: int) -> list[str]:
    return [f"city-{c:04d}|{y}" for c in range(n_cities) for y in (2023, 2024)]


def test_each_partition_gets_its_own_city_facts_in_a_small_run() -> None:
    context = _Context(_keys(3))
    facts = {f"city-{c:04d}": {"years": [2023, 2024]} for c in range(3)}
    assert _partition_metadata(context, "computed", facts) == {}  # type: ignore[arg-type]
    assert context.calls == context.partition_keys


def test_a_national_run_attaches_none_and_says_why() -> None:
    n_cities = PER_PARTITION_METADATA_MAX // 2 + 1
    context = _Context(_keys(n_cities))
    facts = {f"city-{c:04d}": {"years": [2023, 2024]} for c in range(n_cities)}
    extra = _partition_metadata(context, "scored", facts)  # type: ignore[arg-type]
    assert context.calls == []
    assert "not attached" in extra["scored_per_partition"] and f"{len(context.partition_keys):,}" in \
        extra["scored_per_partition"]


def test_an_unpartitioned_run_attaches_none() -> None:
    """`citykpi run`'s assets are not partitioned: nothing to attach to, and nothing to say."""
    context = _Context(_keys(3), partitioned=False)
    facts = {f"city-{c:04d}": {"years": [2023, 2024]} for c in range(3)}
    assert _partition_metadata(context, "computed", facts) == {}  # type: ignore[arg-type]
    assert context.calls == []
