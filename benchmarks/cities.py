"""Many-city benchmark: `citykpi run <folder>` over 1, 10, 100 (, 1000) distinct demo cities, in one invocation.

    python -m benchmarks.cities --cities 1000 --scale 0.1          # counts 1, 10, 100, 1000
    python -m benchmarks.cities --counts 1,10,100 --scale 0.1      # the quick run

Generates the largest count of distinct demo cities once (`citykpi demo --cities N`: demo-city-0001..,
seed+i-1 each, so values differ), then for each count runs `citykpi run <folder of the first N cities>`
in a child process with a fresh home and measures:

- wall: around the child (interpreter start and imports included, about 2-3 s of it);
- cpu: the child's user+sys seconds (rusage). The machine is shared, so cpu is the steadier figure;
  the load average before and after each run is recorded beside it;
- peak RSS: the child's ru_maxrss from os.wait4 (this parent imports only the standard library, so the
  RSS a forked child inherits from it is small);
- release size (the release folder) and warehouse size;
- per-city marginal cost between consecutive counts (wall and cpu);
- after the largest count: one city's statistics source replaced by the same file of another seed, then
  `citykpi run <folder>` again: the time to the next release.

The HTML report once failed at 64 cities (Altair's MaxRowsError; since bounded, tests/test_publish_report_many.py).
With `--report catch` (the default) the child still catches a report failure, writes the release without
the report and the results say so per count (a long benchmark is not lost to one page); `--report run`
lets it fail the run.

Writes cities-sf<scale>-counts-<counts>.json and .md (e.g. cities-sf0.1-counts-1-10-100.md) into --out-dir
(default benchmarks/results), so that a quick run never overwrites the results of a run with other counts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
DEFAULT_SEED = 1000  # city i uses seed 1000+i-1
CHANGED_SOURCE_FILE = "statistik_stadt.csv"  # the source replaced in one city before the change run
GOALS = {"wall_s_1000_cities": 600.0, "marginal_s_per_city": 0.3, "peak_rss_mb": 4096.0, "changed_city_s": 30.0}


# ---- child side: one `citykpi run`, with the report caught when asked ----------------------------


def _child_run(home: str, folder: str, catch_report: bool, result_path: str) -> int:
    outcome: dict[str, Any] = {"report": "written"}
    if catch_report:
        import publish.report_html as report_html

        original = report_html.write_report_html

        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return original(*args, **kwargs)
            except Exception as exc:  # the benchmark measures the rest of the release; the results say so
                message = " ".join(str(exc).split())[:120]
                outcome["report"] = f"failed, release written without it: {type(exc).__name__}: {message}"
                return []

        report_html.write_report_html = guarded  # type: ignore[assignment]
    from pipelines.cli import main

    code = main(["--home", home, "run", folder])
    Path(result_path).write_text(json.dumps(outcome), encoding="utf-8")
    return code


# ---- parent side ---------------------------------------------------------------------------------


def _run_child(args: list[str], log: Path) -> dict[str, Any]:
    """Run a child process; wall, cpu and peak RSS of that child alone (os.wait4)."""
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "exit_code": proc.returncode,
            "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}


def _tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _size_mb(path: Path) -> float:
    if path.is_file():
        return round(path.stat().st_size / 1e6, 2)
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6, 2)


def _latest_release(home: Path) -> Path | None:
    link = home / "releases" / "latest"
    return link.resolve() if link.is_symlink() else None


def _city_set(cities: Path, count: int, folder: Path) -> Path:
    """A folder holding the first `count` cities (symlinks), which `citykpi run <folder>` reads."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(1, count + 1):
        name = f"demo-city-{index:04d}"
        link = folder / name
        if not link.exists():
            link.symlink_to(cities / name, target_is_directory=True)
    return folder


def _citykpi_run(home: Path, folder: Path, catch_report: bool, log: Path) -> dict[str, Any]:
    outcome_path = log.with_suffix(".outcome.json")
    measured = _run_child(["-m", "benchmarks.cities", "--child-run", str(folder), "--home", str(home),
                           "--child-result", str(outcome_path), *(["--report", "catch"] if catch_report else
                                                                   ["--report", "run"])], log)
    if measured["exit_code"] != 0:
        raise RuntimeError(f"citykpi run failed (exit {measured['exit_code']}), log {log}:\n{_tail(log)}")
    measured.update(json.loads(outcome_path.read_text(encoding="utf-8")))
    release = _latest_release(home)
    measured["release_id"] = release.name if release else None
    measured["release_mb"] = _size_mb(release) if release else None
    measured["warehouse_mb"] = _size_mb(home / "warehouse.duckdb")
    return measured


def _change_one_city(cities: Path, seed: int, scale: float, workdir: Path) -> str:
    """Replace city 0001's statistics file with the same file of another seed: one source, new values."""
    other = workdir / "changed-source"
    if not (other / "city.yaml").is_file():
        subprocess.run([sys.executable, "-m", "pipelines.cli", "--home", str(workdir / "scratch-home"), "demo",
                        "--scale", f"{scale:g}", "--seed", str(seed + 10**6), "--out", str(other)],
                       cwd=ROOT, check=True, capture_output=True)
    target = cities / "demo-city-0001" / CHANGED_SOURCE_FILE
    shutil.copyfile(other / CHANGED_SOURCE_FILE, target)
    return f"demo-city-0001/{CHANGED_SOURCE_FILE} replaced by the seed-{seed + 10**6} file"


def _marginals(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for a, b in itertools.pairwise(runs):
        added = b["cities"] - a["cities"]
        out.append({"from": a["cities"], "to": b["cities"],
                    "wall_s_per_city": round((b["wall_s"] - a["wall_s"]) / added, 3),
                    "cpu_s_per_city": round((b["cpu_s"] - a["cpu_s"]) / added, 3)})
    return out


def _machine() -> dict[str, Any]:
    model, mem_kb = "", 0
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
        mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))
    except (OSError, StopIteration):
        pass
    return {"cpu_count": os.cpu_count(), "cpu_model": model, "memory_gb": round(mem_kb / 1024 / 1024, 1),
            "python": sys.version.split()[0]}


def _goals(runs: list[dict[str, Any]], marginals: list[dict[str, Any]], change: dict[str, Any] | None
           ) -> dict[str, Any]:
    """Each goal against what was measured; nothing is extrapolated into a pass."""
    thousand = next((r for r in runs if r["cities"] >= 1000), None)
    last = marginals[-1] if marginals else None
    return {
        "wall_s_1000_cities": {"goal": GOALS["wall_s_1000_cities"],
                               "measured": thousand["wall_s"] if thousand else None,
                               "met": thousand["wall_s"] <= GOALS["wall_s_1000_cities"] if thousand else None},
        "marginal_s_per_city": {"goal": GOALS["marginal_s_per_city"],
                                "measured": last["wall_s_per_city"] if last else None,
                                "between": f"{last['from']}->{last['to']} cities" if last else None,
                                "met": last["wall_s_per_city"] <= GOALS["marginal_s_per_city"] if last else None},
        "peak_rss_mb": {"goal": GOALS["peak_rss_mb"], "measured": max(r["peak_rss_mb"] for r in runs),
                        "met": max(r["peak_rss_mb"] for r in runs) <= GOALS["peak_rss_mb"]},
        "changed_city_s": {"goal": GOALS["changed_city_s"], "measured": change["wall_s"] if change else None,
                           "at_cities": change["cities"] if change else None,
                           "met": change["wall_s"] <= GOALS["changed_city_s"] if change else None},
    }


def run_benchmark(counts: list[int], scale: float, seed: int, workdir: Path, *, catch_report: bool = True,
                  change_at: int | None = None, keep: bool = False,
                  on_progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Every count in turn; the one-changed-city run right after the run of `change_at` cities (None: no
    change run). `on_progress` gets the results so far after each run (a long run keeps what it measured)."""
    cities = workdir / "cities"
    largest = max(counts)
    log = workdir / "generate.log"
    print(f"generating {largest} demo cities at scale {scale:g} ...", file=sys.stderr, flush=True)
    generated = _run_child(["-m", "pipelines.cli", "--home", str(workdir / "scratch-home"), "demo", "--cities",
                            str(largest), "--scale", f"{scale:g}", "--seed", str(seed), "--out", str(cities)], log)
    if generated["exit_code"] != 0:
        raise RuntimeError(f"generating the cities failed:\n{_tail(log)}")
    result: dict[str, Any] = {
        "benchmark": "cities", "scale": scale, "seed": seed, "counts": sorted(counts),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": _machine(),
        "report": "caught: a failing HTML report is left out of the release and named per run" if catch_report
        else "run: a failing report fails the run",
        "generate": {"cities": largest, **generated}, "runs": [], "marginal": [], "change": None,
        "complete": False}
    runs: list[dict[str, Any]] = result["runs"]

    def progress() -> None:
        result["marginal"] = _marginals(runs)
        result["goals"] = _goals(runs, result["marginal"], result["change"])
        if on_progress is not None:
            on_progress(result)

    for count in sorted(counts):
        print(f"citykpi run: {count} cities ...", file=sys.stderr, flush=True)
        home = workdir / f"home-{count}"
        measured = _citykpi_run(home, _city_set(cities, count, workdir / f"set-{count}"), catch_report,
                                workdir / f"run-{count}.log")
        runs.append({"cities": count, **measured})
        print(f"  {json.dumps(runs[-1])}", file=sys.stderr, flush=True)
        progress()
        if count == change_at:
            what = _change_one_city(cities, seed, scale, workdir)
            print(f"change run at {count} cities: {what} ...", file=sys.stderr, flush=True)
            measured = _citykpi_run(home, workdir / f"set-{count}", catch_report, workdir / "run-changed.log")
            if measured["release_id"] == runs[-1]["release_id"]:
                raise RuntimeError("the change run did not reach a new release")
            result["change"] = {"cities": count, "change": what, **measured}
            print(f"  {json.dumps(result['change'])}", file=sys.stderr, flush=True)
            progress()
        if not keep and count != largest:  # the largest count's home (and its release) stays, to look at
            shutil.rmtree(home, ignore_errors=True)
    result["complete"] = True
    progress()
    return result


def _markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [f"# Many-city benchmark, scale {result['scale']:g}", "",
             *([] if result["complete"] else ["**Incomplete: the run was stopped; the figures below are what it "
                                              "measured before.**", ""]),
             f"{result['date']}; {m['cpu_count']} × {m['cpu_model']}, {m['memory_gb']} GB, Python {m['python']}. "
             "The machine is shared: the load average (1 min) before and after each run is given; cpu "
             "(the child's user+sys seconds) is the steadier figure under load.", "",
             f"Cities generated in {result['generate']['wall_s']} s ({result['generate']['cities']} cities, "
             f"seed {result['seed']}+i-1). Report: {result['report']}.", "",
             "| cities | wall s | cpu s | peak RSS MB | release MB | warehouse MB | load before/after | report |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        lines.append(f"| {r['cities']} | {r['wall_s']} | {r['cpu_s']} | {r['peak_rss_mb']} | {r['release_mb']} | "
                     f"{r['warehouse_mb']} | {r['load_before']}/{r['load_after']} | {r['report']} |")
    lines += ["", "| added cities | wall s per city | cpu s per city |", "|---|---|---|"]
    lines += [f"| {x['from']} → {x['to']} | {x['wall_s_per_city']} | {x['cpu_s_per_city']} |"
              for x in result["marginal"]]
    if result["change"]:
        c = result["change"]
        lines += ["", f"One city changed ({c['change']}), then `citykpi run` over all {c['cities']} cities: "
                      f"new release in {c['wall_s']} s wall, {c['cpu_s']} s cpu (load {c['load_before']}/"
                      f"{c['load_after']})."]
    lines += ["", "| goal | target | measured | met |", "|---|---|---|---|"]
    for name, g in result["goals"].items():
        met = "not measured" if g["met"] is None else ("yes" if g["met"] else "**no**")
        lines.append(f"| {name} | {g['goal']} | {g['measured']} | {met} |")
    return "\n".join(lines) + "\n"


def _counts(args: argparse.Namespace) -> list[int]:
    if args.counts:
        counts = sorted({int(c) for c in args.counts.split(",") if c.strip()})
    else:
        counts = sorted({c for c in (1, 10, 100) if c < args.cities} | {args.cities})
    if not counts or counts[0] < 1:
        raise SystemExit("counts must be whole numbers from 1 up")
    return counts


def result_stem(scale: float, counts: list[int]) -> str:
    """The results' file name without suffix: the scale and the counts, one file pair per kind of run."""
    return f"cities-sf{scale:g}-counts-{'-'.join(str(c) for c in sorted(counts))}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cities", description=__doc__.split("\n")[0])
    parser.add_argument("--cities", type=int, default=100, help="largest count (default 100); also runs 1, 10, 100")
    parser.add_argument("--counts", help="comma-separated counts instead, e.g. 1,10,100")
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--report", choices=["catch", "run"], default="catch")
    parser.add_argument("--change-at", type=int,
                        help="run the one-changed-city measurement after this count (default: the largest)")
    parser.add_argument("--no-change", action="store_true", help="skip the one-changed-city run")
    parser.add_argument("--out-dir", default=str(DEFAULT_OUT))
    parser.add_argument("--workdir", help="keep generated cities and homes here (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep every count's home (default: the largest only)")
    parser.add_argument("--child-run", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--child-result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_run:
        return _child_run(args.home, args.child_run, args.report == "catch", args.child_result)

    counts = _counts(args)
    temporary = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="citykpi-bench-cities-"))
    workdir.mkdir(parents=True, exist_ok=True)
    change_at = None if args.no_change else (args.change_at or max(counts))
    if change_at is not None and change_at not in counts:
        raise SystemExit(f"--change-at {change_at} is not one of the counts {counts}")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = result_stem(args.scale, counts)

    def write(result: dict[str, Any]) -> None:
        (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        (out / f"{stem}.md").write_text(_markdown(result), encoding="utf-8")

    try:
        result = run_benchmark(counts, args.scale, args.seed, workdir, catch_report=args.report == "catch",
                               change_at=change_at, keep=args.keep, on_progress=write)
    finally:
        if temporary:
            shutil.rmtree(workdir, ignore_errors=True)
    print(_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
