"""Data quality checks (issue #5): suites per table, measured in DuckDB, judged by Great Expectations.

- `suites.py`, `readings.py`, `plausibility.py`: what is checked, one place per table, generated
  from the migrations, `canonical/variables.yaml` and the indicator catalogue (`metadata.py`).
- `measure.py` / `readings.py`: failing counts and samples, one scan per table.
- `gx.py`: every count asserted by a GX expectation (imported lazily: GX takes ~2 s to import).
- `store.py`, `consequences.py`: `quality_results`, the `failed_check` marks, manifest summaries.
- `run.py`: one stage (`core` after a load, `kpis` after the KPI computation) for one city.

See docs/quality.md for the design and the benchmark.
"""

from quality.model import CheckResult, QualitySettings, SuiteContext

__all__ = ["CheckResult", "QualitySettings", "SuiteContext"]
