"""Benchmark: quality checks on a large hourly readings table vs the KPI computation on it.

    python -m benchmarks.quality --rows 10000000 [--gx-rows 1000000] [--out benchmarks/results/quality.json]

Builds a synthetic `core_readings` table (stations x 5 pollutants x every hour of 2022-2024, in a
real warehouse with the migrations applied, loaded from a Parquet snapshot as the loader does),
then times, each phase in its own process so that its peak RSS is its own:

- kpi: `warehouse.derive.station_annual_means`, the KPI computation on that table (annual means
  per station and pollutant with hour coverage; its output feeds EN:EN:AQ:1C and SDG 11.6.2);
- checks: the `core_readings` suite exactly as the pipeline runs it (from the loader's group
  aggregates, which generate builds as the loader does and times as `aggregates_seconds`, plus the
  zone-map-pruned value rules; GX validating the failing counts), excluding the one-off ~2 s GX
  import (reported apart);
- checks_scan: the suite's fallback when the aggregates do not cover the table (one grouped DuckDB
  scan), also run with DuckDB's memory_limit at 128 MB to show that the scan streams;
- gx_pandas: the baseline, GX expectations run natively on a pandas copy of a sample of the table
  (`--gx-rows`), then extrapolated linearly to the full table (GX's per-row work is linear; the
  extrapolation is stated as such in the output).

Writes the numbers to --out (merged by row count) and prints them as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CITY = "bench-city"
YEARS = (2022, 2023, 2024)
HOURS = 26_304  # 2022-2024 (2024 is a leap year)
POLLUTANTS = ("PM2.5", "PM10", "NO2", "SO2", "O3")
BOUNDED_MEMORY = "128MB"  # DuckDB memory_limit for a second checks run: proves the scan streams
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "quality.json"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return times, result


# ---- phases (each runs in a child process) -------------------------------------------------


def phase_generate(db: Path, rows: int) -> dict[str, Any]:
    from warehouse.db import connect
    from warehouse.load import rebuild_readings_groups

    stations = max(1, math.ceil(rows / (HOURS * len(POLLUTANTS))))
    parquet = db.with_suffix(".parquet")
    con = connect(db)
    try:
        started = time.perf_counter()
        # Deterministic values from a hash; ~0.1 % of hours missing per series so coverage is realistic.
        con.execute(f"""COPY (
            SELECT 'S' || lpad(CAST(s AS VARCHAR), 4, '0') AS station,
                   TIMESTAMPTZ '2022-01-01 00:00:00+00' + to_hours(h) AS observed_at,
                   {list(POLLUTANTS)}[p + 1] AS pollutant,
                   5 + (hash(s, h, p) % 4000) / 100.0 AS value
            FROM range({stations}) a(s), range({HOURS}) b(h), range({len(POLLUTANTS)}) c(p)
            WHERE hash(s, h, p) % 1000 <> 0
            LIMIT {rows}) TO '{parquet}' (FORMAT parquet, COMPRESSION zstd)""")
        con.execute("BEGIN TRANSACTION")
        con.execute(f"""INSERT INTO core_readings SELECT '{CITY}', station, observed_at, 'air_concentration_ugm3',
                        pollutant, value, 'readings', 'snapshot' FROM read_parquet('{parquet}')""")
        con.execute(f"""INSERT INTO core_points SELECT '{CITY}', 'station', station, NULL, 10.0, 51.0, NULL,
                        'stations', 'snapshot', 'generated', NULL FROM (SELECT DISTINCT station_id AS station
                        FROM core_readings)""")
        seconds = time.perf_counter() - started
        # What the loader does in the same transaction: the group aggregates (annual-mean sums, hour
        # bitmaps, the checks' counts), one scan of the new rows.
        started = time.perf_counter()
        rebuild_readings_groups(con, CITY)
        aggregates = time.perf_counter() - started
        con.execute("COMMIT")
        loaded = con.execute("SELECT count(*) FROM core_readings").fetchall()[0][0]
    finally:
        con.close()
    return {"rows": int(loaded), "stations": stations, "generate_seconds": round(seconds, 2),
            "aggregates_seconds": round(aggregates, 2),
            "parquet_bytes": parquet.stat().st_size, "duckdb_bytes": db.stat().st_size}


def phase_kpi(db: Path, repeats: int) -> dict[str, Any]:
    import duckdb

    from warehouse.derive import station_annual_means

    rss_imports = peak_rss_mb()
    con = duckdb.connect(str(db), read_only=True)
    try:
        times, (valid, rejected) = timed(lambda: station_annual_means(con, CITY), repeats)
    finally:
        con.close()
    return {"seconds": times, "station_years": len(valid) + len(rejected), "peak_rss_mb": round(peak_rss_mb(), 1),
            "rss_after_imports_mb": round(rss_imports, 1)}


def phase_checks(db: Path, repeats: int, memory_limit: str | None = None, scan: bool = False) -> dict[str, Any]:
    """The readings suite as the pipeline runs it (from the loader's aggregates), or with `scan` the
    fallback: one grouped scan of the table (aggregates deleted in a transaction that is rolled back)."""
    import duckdb

    from quality import SuiteContext
    from quality.gx import _batch_definition, validate
    from quality.measure import measure_suite
    from quality.readings import readings_suite

    started = time.perf_counter()
    _batch_definition()  # the GX import and context: a one-off cost per process, reported apart
    gx_import = time.perf_counter() - started
    ctx = SuiteContext(CITY, "DE", YEARS)
    suite = readings_suite()
    rss_imports = peak_rss_mb()
    # With a memory limit, DuckDB must stream: the peak RSS then shows the checks need no table-sized memory.
    con = duckdb.connect(str(db), read_only=not scan, config={"memory_limit": memory_limit} if memory_limit else {})
    measure_times, validate_times, results = [], [], []
    if scan:
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM core_readings_groups")
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            measurements = measure_suite(con, ctx, suite)
            measure_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            results = validate(measurements, "benchmark")
            validate_times.append(time.perf_counter() - started)
    finally:
        if scan:
            con.execute("ROLLBACK")
        con.close()
    return {"path": "scan" if scan else "aggregates",
            "seconds": [m + v for m, v in zip(measure_times, validate_times, strict=True)],
            "measure_seconds": measure_times, "gx_validate_seconds": validate_times,
            "gx_import_seconds": round(gx_import, 2), "checks": len(results),
            "statuses": {r.check.name: r.status for r in results}, "peak_rss_mb": round(peak_rss_mb(), 1),
            "rss_after_imports_mb": round(rss_imports, 1), "duckdb_memory_limit": memory_limit}


def phase_gx_pandas(db: Path, sample_rows: int) -> dict[str, Any]:
    """GX's own execution on a pandas copy: what the pipeline would do without the DuckDB route."""
    import duckdb
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from quality import metadata as md

    context = gx.get_context(mode="ephemeral")
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = context.data_sources.add_pandas("bench").add_dataframe_asset("readings") \
        .add_batch_definition_whole_dataframe("all")
    con = duckdb.connect(str(db), read_only=True)
    try:
        rss_before = peak_rss_mb()
        started = time.perf_counter()
        frame = con.execute(f"SELECT * FROM core_readings LIMIT {int(sample_rows)}").df()
        stations = [r[0] for r in con.execute("SELECT point_id FROM core_points").fetchall()]
        load_seconds = time.perf_counter() - started
    finally:
        con.close()
    suite = gx.ExpectationSuite(name="readings_on_pandas", expectations=[
        *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in
          ("city_id", "station_id", "observed_at", "variable", "value", "source_id", "snapshot_id")),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["station_id", "variable", "data_point", "observed_at"]),
        gxe.ExpectColumnValuesToBeInSet(column="variable", value_set=sorted(md.canonical_units())),
        gxe.ExpectColumnValuesToBeInSet(column="data_point", value_set=list(POLLUTANTS)),
        gxe.ExpectColumnValuesToBeBetween(column="value", min_value=0),
        gxe.ExpectColumnValuesToBeInSet(column="station_id", value_set=stations),
    ])
    started = time.perf_counter()
    report = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
    validate_seconds = time.perf_counter() - started
    return {"sample_rows": len(frame), "load_seconds": round(load_seconds, 3),
            "validate_seconds": round(validate_seconds, 3), "success": bool(report.success),
            "expectations": len(report.results), "peak_rss_mb": round(peak_rss_mb(), 1),
            "rss_for_sample_mb": round(peak_rss_mb() - rss_before, 1)}


PHASES = {"generate", "kpi", "checks", "gx_pandas"}


def _child(phase: str, db: Path, **options: Any) -> dict[str, Any]:
    argv = [sys.executable, "-m", "benchmarks.quality", "--phase", phase, "--db", str(db)]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parent.parent)
    if proc.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_benchmark(rows: int, gx_rows: int, repeats: int, workdir: Path) -> dict[str, Any]:
    db = workdir / "bench.duckdb"
    table = _child("generate", db, rows=rows)
    kpi = _child("kpi", db, repeats=repeats)
    checks = _child("checks", db, repeats=repeats)
    scanned = _child("checks", db, repeats=repeats, scan=1)
    bounded = _child("checks", db, repeats=1, memory_limit=BOUNDED_MEMORY, scan=1)
    baseline = _child("gx_pandas", db, gx_rows=min(gx_rows, table["rows"]))
    kpi_s, checks_s = statistics.median(kpi["seconds"]), statistics.median(checks["seconds"])
    scale = table["rows"] / baseline["sample_rows"]
    gx_full = (baseline["load_seconds"] + baseline["validate_seconds"]) * scale
    import duckdb

    return {
        "rows": table["rows"], "stations": table["stations"], "table": table,
        "kpi": {**kpi, "median_seconds": round(kpi_s, 3)},
        "checks": {**checks, "median_seconds": round(checks_s, 3)},
        "checks_scan": {**scanned, "median_seconds": round(statistics.median(scanned["seconds"]), 3)},
        "checks_with_duckdb_memory_limit": bounded,
        "gx_pandas": {**baseline, "extrapolated_seconds": round(gx_full, 1),
                      "extrapolated_rss_mb": round(baseline["rss_for_sample_mb"] * scale, 0),
                      "note": f"measured on {baseline['sample_rows']:,} rows, extrapolated linearly x{scale:.1f}"},
        "ratios": {"checks_to_kpi": round(checks_s / kpi_s, 3),
                   "checks_scan_to_kpi": round(statistics.median(scanned["seconds"]) / kpi_s, 3),
                   "aggregates_to_kpi": round(table["aggregates_seconds"] / kpi_s, 3),
                   "gx_pandas_to_duckdb_checks": round(gx_full / checks_s, 1),
                   "gx_pandas_to_kpi": round(gx_full / kpi_s, 2)},
        "goal": {"checks_to_kpi_at_most": 0.25, "met": checks_s / kpi_s <= 0.25},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "duckdb": duckdb.__version__,
                    "platform": platform.platform()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--gx-rows", type=int, default=1_000_000, help="rows of the GX-on-pandas sample")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--workdir", type=Path, help="where the table is built (default: a temporary folder)")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--memory-limit", help=argparse.SUPPRESS)
    parser.add_argument("--scan", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        phases: dict[str, Callable[[], dict[str, Any]]] = {
            "generate": lambda: phase_generate(args.db, args.rows), "kpi": lambda: phase_kpi(args.db, args.repeats),
            "checks": lambda: phase_checks(args.db, args.repeats, args.memory_limit, bool(args.scan)),
            "gx_pandas": lambda: phase_gx_pandas(args.db, args.gx_rows)}
        result = phases[args.phase]()
        print(json.dumps(result))
        return 0
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        result = run_benchmark(args.rows, args.gx_rows, args.repeats, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
    existing.setdefault("runs", {})[str(args.rows)] = result
    args.out.write_text(json.dumps(existing, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
