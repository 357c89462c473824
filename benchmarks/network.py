"""Benchmark: walking-distance access on a 1 M-node street graph, 100,000 population points, 5,000 stops.

    python -m benchmarks.network [--side 1000] [--points 100000] [--stops 5000]

A `side` x `side` street grid (100 m blocks, 10 % of the segments left out, lengths 0-10 % longer
than the straight segment, as streets bend) stands for a large metropolitan street graph (Los
Angeles' walkable OSM graph is of this order). Times, in one run on the same inputs:

- build: the sparse matrix and the KD-tree (`kpis.spatial.network.StreetNetwork.from_edges`);
- network: SDG 11.2.1 (500 m low-capacity / 1 km high-capacity, frequency filter) and EC:I:T:2A
  (500 m, any stop) along the streets: snapping, two multi-source Dijkstra runs with a limit;
- baseline: the same two measures as straight lines (`within_distance`, STRtree), the fallback.

Reports wall times and the ratio network / straight line, and checks the invariant that makes the
two comparable: a point covered along the streets is covered as the crow flies (a walk is never
shorter than the straight line), so the check fails the run if any point breaks it. Goal (issue
#15): the network variant in <= 30 s on 2 cores. Writes benchmarks/results/network.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import scipy

from kpis.spatial import U4SSC_STOP_M, sdg_transit_access, within_distance
from kpis.spatial.network import StreetNetwork

RESULTS = Path(__file__).resolve().parent / "results" / "network.json"
BLOCK_M = 100.0
GOAL_S = 30.0
T = TypeVar("T")
FloatArray = npt.NDArray[np.float64]


def street_grid(side: int, seed: int) -> tuple[FloatArray, npt.NDArray[np.int64], npt.NDArray[np.int64], FloatArray]:
    rng = np.random.default_rng(seed)
    index = np.arange(side * side).reshape(side, side)
    xy = np.column_stack([(index % side).ravel() * BLOCK_M, (index // side).ravel() * BLOCK_M]).astype(np.float64)
    u = np.concatenate([index[:, :-1].ravel(), index[:-1, :].ravel()])
    v = np.concatenate([index[:, 1:].ravel(), index[1:, :].ravel()])
    keep = rng.random(u.size) >= 0.10
    u, v = u[keep], v[keep]
    length = BLOCK_M * rng.uniform(1.0, 1.1, u.size)
    return xy, u.astype(np.int64), v.astype(np.int64), length


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--side", type=int, default=1000, help="nodes per side of the street grid (1000: 1 M nodes)")
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--stops", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed + 1)
    extent = (args.side - 1) * BLOCK_M
    (xy, u, v, length), grid_s = timed(lambda: street_grid(args.side, args.seed))
    points = rng.uniform(0, extent, size=(args.points, 2))
    stops = rng.uniform(0, extent, size=(args.stops, 2))
    capacity = np.where(rng.random(args.stops) < 0.1, "high", "low").tolist()
    departures = rng.integers(20, 200, args.stops)

    network, build_s = timed(lambda: StreetNetwork.from_edges(xy, u, v, length))

    def walking() -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        sdg = sdg_transit_access(points, stops, capacity, departures, within=network.within)
        return sdg, network.within(points, stops, U4SSC_STOP_M)

    def straight() -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        sdg = sdg_transit_access(points, stops, capacity, departures)
        return sdg, within_distance(points, stops, U4SSC_STOP_M)

    (net_sdg, net_500), network_s = timed(walking)
    (line_sdg, line_500), straight_s = timed(straight)
    violations = int((net_sdg & ~line_sdg).sum() + (net_500 & ~line_500).sum())
    total_s = build_s + network_s
    result = {
        "benchmark": "walking-distance access (SDG 11.2.1 + EC:I:T:2A) on a street grid",
        "nodes": network.n_nodes, "edges": int(u.size), "points": args.points, "stops": args.stops,
        "grid_generation_seconds": round(grid_s, 3),
        "build_seconds": round(build_s, 3), "network_seconds": round(network_s, 3),
        "network_total_seconds": round(total_s, 3), "straight_line_seconds": round(straight_s, 3),
        "ratio_network_to_straight_line": round(total_s / straight_s, 1),
        "goal_seconds": GOAL_S, "goal_met": total_s <= GOAL_S,
        "covered_share": {"sdg_11_2_1_network": round(float(net_sdg.mean()), 4),
                          "sdg_11_2_1_straight_line": round(float(line_sdg.mean()), 4),
                          "ec_i_t_2a_network": round(float(net_500.mean()), 4),
                          "ec_i_t_2a_straight_line": round(float(line_500.mean()), 4)},
        "network_covered_but_not_straight_line": violations,
        "environment": {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
                        "machine": platform.machine(), "cpus": os.cpu_count()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{result['nodes']:,} nodes, {result['edges']:,} edges, {args.points:,} points, {args.stops:,} stops")
    print(f"  build (CSR + KD-tree): {build_s:7.2f} s")
    print(f"  network (11.2.1 + 2A): {network_s:7.2f} s   total {total_s:.2f} s (goal <= {GOAL_S:g} s)")
    print(f"  straight line:         {straight_s:7.2f} s   ratio network/straight {total_s / straight_s:.1f}")
    print(f"  11.2.1 covered: network {net_sdg.mean():.3f}, straight line {line_sdg.mean():.3f}")
    print(f"  written to {args.out}")
    if violations:
        raise SystemExit(f"ERROR: {violations} points covered along the streets but not as the crow flies")
    return result


if __name__ == "__main__":
    main()
