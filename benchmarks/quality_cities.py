"""The checks stage for many cities: per city (one GX validation per city and stage, as before
issue #18) against one batched validation per stage for all cities of the run.

    python -m benchmarks.quality_cities --counts 1,20 --scale 0.1

Generates the largest count of distinct demo cities (`citykpi demo --cities N`), loads them and
computes their KPIs once, then times the quality checks (stage core + stage kpis) for the first N
cities, both ways, each repeated; GX's import and first validation are paid before timing
(`quality.run.warm_up`). Prints a JSON object; wall seconds on a shared machine, so read
the ratios (batched / per city), not the absolute figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def _prepare(home_dir: Path, count: int, scale: float) -> tuple[Any, list[Any]]:
    from pipelines import steps
    from pipelines.cities import demo_cities_folder, load_configs
    from warehouse.home import Home

    home = Home.resolve(str(home_dir))
    home.ensure()
    configs = load_configs([str(demo_cities_folder(home, count, scale))])
    for loaded in configs:
        steps.load_city(home, loaded, steps.fetch_city(home, loaded))
        steps.check_city(home, loaded, "setup", "core")
        steps.compute_city(home, loaded, "setup")
    return home, configs


def _timed(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(counts: Sequence[int], scale: float, repeats: int) -> dict[str, Any]:
    from pipelines import steps
    from quality import run as quality_run

    quality_run.warm_up()
    out: dict[str, Any] = {"scale": scale, "repeats": repeats, "counts": {}}
    with tempfile.TemporaryDirectory() as tmp:
        home, configs = _prepare(Path(tmp), max(counts), scale)

        for count in counts:
            cities = configs[:count]

            def per_city(cities: list[Any] = cities) -> None:
                for stage in ("core", "kpis"):
                    for loaded in cities:
                        steps.check_city(home, loaded, "bench-per-city", stage)

            entry = {"per_city_s": _timed(per_city, repeats)}

            def all_at_once(cities: list[Any] = cities) -> None:
                for stage in ("core", "kpis"):
                    steps.check_cities(home, cities, "bench-batched", stage)

            entry["batched_s"] = _timed(all_at_once, repeats)
            entry["batched_over_per_city"] = entry["batched_s"] / entry["per_city_s"]
            out["counts"][str(count)] = entry
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1,20", help="city counts, comma-separated")
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    counts = sorted({int(c) for c in args.counts.split(",")})
    print(json.dumps(run(counts, args.scale, args.repeats), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
