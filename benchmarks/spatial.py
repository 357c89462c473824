"""Benchmark: SDG 11.2.1 coverage on a 100,000-cell population grid with 10,000 stops.

    python -m benchmarks.spatial [--cells 100000] [--stops 10000] [--no-buffer-union]

Times the vectorised path (`kpis.spatial.sdg_transit_access`: STRtree nearest-within queries)
against two naive baselines on the same inputs, in the same run, and checks they agree:
- brute force: a numpy distance matrix in chunks of cells (exact, O(cells x stops));
- buffer-union: shapely buffers around the stops, unioned, then a point-in-polygon test per cell
  (the desktop-GIS recipe; buffers are polygons inscribed in the circles, so a few cells right at
  500 m / 1 km can differ: reported, not failed).
Also times spreading district populations over the same number of 100 m cells
(`kpis.spatial.spread_uniformly`). Prints a summary and writes benchmarks/results/spatial.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import shapely

from kpis.spatial import (
    HIGH_CAPACITY_M,
    LOW_CAPACITY_M,
    MIN_WEEKDAY_DEPARTURES,
    covered_share,
    sdg_transit_access,
    spread_uniformly,
)
from kpis.spatial.grid import PopulationPoints

RESULTS = Path(__file__).resolve().parent / "results" / "spatial.json"
CELL_M = 100.0
T = TypeVar("T")
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def synthetic_city(n_cells: int, n_stops: int, seed: int) -> dict[str, Any]:
    """A 8:5 rectangle of 100 m cells with a dense centre; stops clustered around it."""
    rng = np.random.default_rng(seed)
    cols = round(math.sqrt(n_cells * 8 / 5))
    rows = math.ceil(n_cells / cols)
    index = np.arange(n_cells)
    xy = np.column_stack([(index % cols + 0.5) * CELL_M, (index // cols + 0.5) * CELL_M])
    centre = np.array([cols, rows]) * CELL_M / 2
    r_km = np.hypot(*(xy - centre).T) / 1000
    population = np.rint(150 * np.exp(-((r_km / 8) ** 2)) * rng.lognormal(0, 0.5, n_cells))
    clustered = int(0.85 * n_stops)  # dense centre, sparse edges: about 80 % of the cells end up covered
    stops = np.vstack([rng.normal(centre, 3500, (clustered, 2)),
                       rng.uniform([0, 0], [cols * CELL_M, rows * CELL_M], (n_stops - clustered, 2))])
    route_type = rng.choice([3, 0, 2], size=n_stops, p=[0.80, 0.12, 0.08])
    capacity = np.where(route_type == 2, "high", "low").astype(object)
    departures = np.rint(rng.lognormal(math.log(90), 0.6, n_stops)).astype(np.int64)
    return {"xy": xy, "population": population, "stops": stops, "capacity": capacity,
            "departures": departures, "cols": cols, "rows": rows}


def fast(city: dict[str, Any]) -> BoolArray:
    return sdg_transit_access(city["xy"], city["stops"], list(city["capacity"]), city["departures"])


def _frequent(city: dict[str, Any], capacity: str) -> FloatArray:
    keep = (city["departures"] >= MIN_WEEKDAY_DEPARTURES) & (city["capacity"] == capacity)
    stops: FloatArray = city["stops"][keep]
    return stops


def brute_force(city: dict[str, Any], chunk: int = 2000) -> BoolArray:
    xy = city["xy"]
    out = np.zeros(len(xy), dtype=bool)
    for stops, reach in ((_frequent(city, "low"), LOW_CAPACITY_M), (_frequent(city, "high"), HIGH_CAPACITY_M)):
        for start in range(0, len(xy), chunk):
            block = xy[start:start + chunk]
            d2 = ((block[:, None, :] - stops[None, :, :]) ** 2).sum(axis=2)
            out[start:start + chunk] |= (d2 <= reach * reach).any(axis=1)
    return out


def buffer_union(city: dict[str, Any]) -> BoolArray:
    low = shapely.buffer(shapely.points(_frequent(city, "low")), LOW_CAPACITY_M, quad_segs=16)
    high = shapely.buffer(shapely.points(_frequent(city, "high")), HIGH_CAPACITY_M, quad_segs=16)
    area = shapely.union_all(np.concatenate([low, high]))
    shapely.prepare(area)
    return np.asarray(shapely.contains_xy(area, city["xy"][:, 0], city["xy"][:, 1]), dtype=bool)


def spread_districts(city: dict[str, Any], n_districts: int = 40) -> PopulationPoints:
    """Districts as vertical-by-horizontal strips over the same extent: as many 100 m cells as the grid."""
    nx = max(1, round(math.sqrt(n_districts * 8 / 5)))
    ny = max(1, n_districts // nx)
    xs = np.linspace(0, city["cols"] * CELL_M, nx + 1)
    ys = np.linspace(0, city["rows"] * CELL_M, ny + 1)
    boxes = [shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for i in range(nx) for j in range(ny)]
    return spread_uniformly(boxes, CELL_M)


def timed(function: Callable[[], T], repeat: int = 1) -> tuple[T, float]:
    """Result and the median wall time of `repeat` runs."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    assert result is not None
    return result, statistics.median(times)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--stops", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the fast path (median reported)")
    parser.add_argument("--no-buffer-union", action="store_true", help="skip the slowest baseline")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    city = synthetic_city(args.cells, args.stops, args.seed)
    covered, fast_s = timed(lambda: fast(city), args.repeat)
    share = float((city["population"] * covered).sum() / city["population"].sum())
    baselines: dict[str, dict[str, Any]] = {}
    exact, brute_s = timed(lambda: brute_force(city))
    baselines["brute_force_numpy"] = {"seconds": round(brute_s, 4), "ratio_to_fast": round(brute_s / fast_s, 1),
                                      "identical": bool((exact == covered).all())}
    if not args.no_buffer_union:
        gis, gis_s = timed(lambda: buffer_union(city))
        baselines["buffer_union_contains"] = {"seconds": round(gis_s, 4), "ratio_to_fast": round(gis_s / fast_s, 1),
                                              "cells_differing": int((gis != covered).sum())}
    points, spread_s = timed(lambda: spread_districts(city))
    spread_share = covered_share(points, np.ones(len(points), dtype=bool))
    result = {
        "benchmark": "SDG 11.2.1 coverage (500 m low-capacity / 1 km high-capacity, frequency filter)",
        "cells": len(city["xy"]), "stops": len(city["stops"]),
        "frequent_stops": int((city["departures"] >= MIN_WEEKDAY_DEPARTURES).sum()),
        "covered_population_share": round(share, 6),
        "fast_seconds": round(fast_s, 4), "fast_repeat": args.repeat, "baselines": baselines,
        "spread_districts": {"districts": int(points.n_areas), "cell_parts": len(points),
                             "seconds": round(spread_s, 4), "weights_sum_to_one": bool(np.allclose(spread_share, 1))},
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "shapely": shapely.__version__, "geos": shapely.geos_version_string,
                        "machine": platform.machine(), "cpus": os.cpu_count()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"SDG 11.2.1 on {result['cells']:,} cells x {result['stops']:,} stops "
          f"({result['frequent_stops']:,} frequent): {100 * share:.2f} % of the population covered")
    print(f"  fast (STRtree nearest-within): {fast_s:8.3f} s")
    for name, info in baselines.items():
        check = (f"identical: {info['identical']}" if "identical" in info
                 else f"{info['cells_differing']} cells differ (polygonal buffers)")
        print(f"  {name:30s} {info['seconds']:8.3f} s  = {info['ratio_to_fast']:,.1f} x fast  ({check})")
    print(f"  spread {points.n_areas} districts over {len(points):,} cell parts: {spread_s:.3f} s")
    print(f"  written to {args.out}")
    if not baselines["brute_force_numpy"]["identical"]:
        print("ERROR: the fast path disagrees with the brute-force distance matrix", file=sys.stderr)
        raise SystemExit(1)
    return result


if __name__ == "__main__":
    main()
