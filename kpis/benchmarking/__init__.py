"""Benchmarking: targets, U4SSC scoring with roll-ups, and progress towards the targets (issue #9).

- `targets`: the default target table (public references, not the official U4SSC benchmarks)
  and a city's own table (its path given by the caller), merged row by row (`load_targets`).
- `scoring`: share of target, points 1-4 by band, roll-ups per category / sub-dimension /
  dimension (`score_release`).
- `progress`: CAGR against the CAGR required by the deadline, UN or Eurostat cut-offs
  (`assess_progress`).
- `store`: the warehouse tables of migration 0003 (`store_scores`, `benchmark_and_store`,
  `release_frames`).
- `snapshot`: the City Snapshot as plain data for the report (`city_snapshot`, `compare_cities`).

See docs/benchmarking.md for the rules, cut-offs and sources.
"""

from kpis.benchmarking.progress import assess_all, assess_progress
from kpis.benchmarking.scoring import score_release
from kpis.benchmarking.snapshot import city_snapshot, compare_cities
from kpis.benchmarking.targets import TargetsError, load_targets

__all__ = ["TargetsError", "assess_all", "assess_progress", "city_snapshot", "compare_cities", "load_targets",
           "score_release"]
