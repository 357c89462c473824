"""The `citykpi` command line. Heavy libraries are imported inside commands so `--help` is instant."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from warehouse.home import Home

EXIT_USER_ERROR = 2
EXIT_INTERNAL = 1


def _scale(text: str) -> float:
    """A demo scale factor: a positive, finite number (argparse reports anything else as a usage error)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


class _VersionAction(argparse.Action):
    """`citykpi --version`: the package version and the code version (git commit) releases record.
    Computed only when asked, so `--help` stays instant."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(version_text())
        parser.exit()


def version_text() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from publish.releases import code_version

    try:
        package = version("citykpi")
    except PackageNotFoundError:
        package = "unknown"
    return f"citykpi {package} (code {code_version()})"


def _count(text: str) -> int:
    """A number of demo cities: a whole number from 1 up."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="citykpi",
        description="Open city data -> U4SSC smart sustainable city KPIs and UN SDG 11 indicators, "
                    "with provenance, quality checks and versioned releases.")
    parser.add_argument("--home", help="directory for all state (default: $CITYKPI_HOME or ~/.local/share/citykpi)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and Dagster logs")
    parser.add_argument("--version", action=_VersionAction,
                        help="print the package version and the code version (git commit) releases record")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="fetch, load, compute and publish a release (no CONFIG: the demo city)")
    run.add_argument("configs", nargs="*", metavar="CONFIG", help="city config YAML file(s) or folder(s)")
    run.add_argument("--offline", action="store_true", help="reuse the last snapshots; touch no source")
    run.add_argument("--scale", type=_scale, default=1.0, help="demo city scale factor (no CONFIG only)")
    run.add_argument("--seed", type=int, help="demo random seed; city i of --cities uses seed+i-1 (no CONFIG only)")
    run.add_argument("--cities", type=_count, help="run N distinct demo cities demo-city-0001.. (no CONFIG only)")
    run.add_argument("--strict", action="store_true",
                     help="publish nothing (exit 2) when a blocking quality check fails")
    run.add_argument("--every-city", action="store_true", dest="every_city",
                     help="print each city's progress lines even over many cities (default: past 10 cities, "
                          "one line per stage and each notice once with its cities)")
    run.add_argument("--force", action="store_true",
                     help="write a new release even when nothing changed since the latest one (same inputs, "
                          "code, config and data)")

    validate = sub.add_parser("validate", help="dry run: check a config and read, map and load every source into "
                                               "a scratch warehouse; every problem in one pass")
    validate.add_argument("configs", nargs="+", metavar="CONFIG")
    validate.add_argument("--fetch", action="store_true", help="fetch API sources first (else: their newest snapshot)")
    validate.add_argument("--config-only", action="store_true", help="check keys, variables, units and files only")

    coverage = sub.add_parser("coverage", help="which indicators a config computes (a dry run), and what each lacks")
    coverage.add_argument("config", metavar="CONFIG")
    coverage.add_argument("--fetch", action="store_true", help="fetch API sources first (else: their newest snapshot)")
    coverage.add_argument("--status", choices=["computed", "missing", "not_applicable"],
                          help="list only indicators with this status")

    schema = sub.add_parser("schema", help="print the city config JSON Schema")
    schema.add_argument("--output", "-o", help="write to this file instead of stdout")

    sub.add_parser("sources", help="list the supported source kinds and formats")
    sub.add_parser("variables", help="list the canonical variables sources map to")
    indicators = sub.add_parser("indicators", help="list the indicator catalogue")
    indicators.add_argument("--framework", choices=["u4ssc", "sdg11"])
    releases = sub.add_parser("releases", help="list, show and compare published releases (default: list)")
    releases_sub = releases.add_subparsers(dest="releases_command", metavar="ACTION")
    releases_sub.add_parser("list", help="releases, oldest first: date, cities, years, rows; the latest marked")
    show = releases_sub.add_parser("show", help="a release's id, cities, years, row counts and files by role")
    show.add_argument("release", metavar="ID", help="a release id, or 'latest'")
    diff = releases_sub.add_parser("diff", help="what changed from release A to release B (as in CHANGES.md)")
    diff.add_argument("old", metavar="A", help="a release id, or 'latest'")
    diff.add_argument("new", metavar="B", help="a release id, or 'latest'")
    publish = sub.add_parser("publish", help="send a release to a consumer (an NGSI-LD context broker)")
    publish.add_argument("--ngsi-ld", dest="ngsi_ld", metavar="URL", required=True,
                         help="broker base URL; its KeyPerformanceIndicator entities are upserted in batches")
    publish.add_argument("--release", default="latest", metavar="ID", help="release id (default: latest)")
    publish.add_argument("--tenant", help="NGSILD-Tenant header for multi-tenant brokers")
    targets = sub.add_parser("targets", help="show the targets in force for a city and where each came from")
    targets.add_argument("configs", nargs="*", metavar="CONFIG", help="city config(s); none: the default table")

    _lake_parser(sub)

    demo = sub.add_parser("demo", help="generate the demo city's raw files and config")
    demo.add_argument("--scale", type=_scale, default=1.0)
    demo.add_argument("--seed", type=int, help="random seed (default: the fixed demo seed); city i uses seed+i-1")
    demo.add_argument("--cities", type=_count,
                      help="write N distinct demo cities as <folder>/demo-city-0001/city.yaml, ... "
                           "(a folder `citykpi run` accepts) and print the folder")
    demo.add_argument("--out", help="folder to write into (default: <home>/demo/...)")
    return parser


def _lake_parser(sub: Any) -> None:
    """`citykpi lake ...`: the shared warehouse for several machines (pipelines/lake_run.py)."""
    lake = sub.add_parser("lake", help="the shared warehouse for several machines: workers commit cities to "
                                       "Iceberg tables, a publisher releases from them (docs/deployment.md)")
    actions = lake.add_subparsers(dest="lake_command", metavar="ACTION", required=True)
    actions.add_parser("init", help="create the lake's namespace and tables (once; workers also do it)")
    work = actions.add_parser("work", help="run these cities in this home (every stage but the release), then "
                                           "commit them to the lake")
    work.add_argument("configs", nargs="+", metavar="CONFIG", help="city config YAML file(s) or folder(s)")
    work.add_argument("--shard", metavar="I/N", help="only every N-th city (sorted by id) from the I-th (0-based)")
    work.add_argument("--offline", action="store_true", help="reuse the last snapshots; touch no source")
    work.add_argument("--strict", action="store_true", help="commit nothing when a blocking quality check fails")
    work.add_argument("--force", action="store_true", help="commit even cities the lake holds unchanged")
    work.add_argument("--json", action="store_true", help="print the commit report as JSON")
    work.add_argument("--raw", metavar="URI", help="the shared landing zone (s3://bucket/raw; default "
                                                   "$CITYKPI_LAKE_RAW): pull the cities' snapshots first, push after")
    commit = actions.add_parser("commit", help="commit cities from this home's warehouse to the lake")
    commit.add_argument("cities", nargs="+", metavar="CITY", help="city ids")
    commit.add_argument("--force", action="store_true", help="commit even cities the lake holds unchanged")
    commit.add_argument("--years", metavar="Y,Y", help="only these years of the year-keyed tables (default: every "
                                                       "year the city has); the lake keeps its other years")
    commit.add_argument("--json", action="store_true", help="print the commit report as JSON")
    publish = actions.add_parser("publish", help="read these cities from the lake into a fresh local warehouse "
                                                 "and write the normal release")
    publish.add_argument("configs", nargs="+", metavar="CONFIG", help="city config YAML file(s) or folder(s)")
    publish.add_argument("--to", metavar="URI", help="also copy the release to object storage (s3://bucket/prefix)")
    publish.add_argument("--force", action="store_true",
                         help="write a new release even when nothing changed since the latest one")
    actions.add_parser("status", help="the cities in the lake: state, version, years, worker, time")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from canonical.errors import CitykpiError

    received = _on_signals()
    try:
        code = int(COMMANDS[args.command](args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
        return code
    except BrokenPipeError:
        # `citykpi variables | head`: the reader has all it wanted; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except CitykpiError as exc:
        if args.debug:
            raise
        print(f"citykpi: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BaseException as exc:  # the one place every escape becomes one line
        if _interrupted(exc):
            signum = received() or signal.SIGINT
            print(f"citykpi: interrupted ({signal.Signals(signum).name}); stopped cleanly: the lock is released "
                  "and nothing half-written was kept", file=sys.stderr)
            return 128 + int(signum)
        if not isinstance(exc, Exception) or args.debug:
            raise
        return _report(exc)


def _on_signals() -> Callable[[], int | None]:
    """SIGTERM stops a command like Ctrl-C (KeyboardInterrupt, so every `with` block unwinds: the
    writer lock, staging folders, open transactions). Dagster installs its own handlers while a
    run executes (raising DagsterExecutionInterruptedError, also handled by main), so which signal
    came is read from the wakeup pipe, where Python writes every signal's number whoever handles
    it. Returns a function giving the last signal received (None if none)."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, stop)
    except ValueError:  # not the main thread (a test calling main in a thread): leave signals alone
        return lambda: None

    def last() -> int | None:
        with contextlib.suppress(OSError):
            data = os.read(read_end, 512)
            return data[-1] if data else None
        return None

    return last


def _interrupted(exc: BaseException) -> bool:
    return isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "DagsterExecutionInterruptedError"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _report(exc: Exception) -> int:
    """One line for an exception that is not a CitykpiError: where it happened (the Dagster step,
    which names the city and source) and what it was. Input too big or too deep to read is the
    input's fault (exit 2); anything else is a bug in citykpi (exit 1)."""
    step = getattr(exc, "step_key", None)
    inner: BaseException = getattr(exc, "user_exception", None) or exc
    from canonical.errors import CitykpiError

    where = f" in step {step}" if step else ""
    if isinstance(inner, CitykpiError):
        print(f"citykpi: error: {_one_line(inner)}", file=sys.stderr)
        return EXIT_USER_ERROR
    if isinstance(inner, RecursionError):
        print(f"citykpi: error{where}: an input is nested too deeply to read ({_one_line(inner)})", file=sys.stderr)
        return EXIT_USER_ERROR
    if isinstance(inner, MemoryError):
        print(f"citykpi: error{where}: out of memory reading an input (a file too large for this machine?)",
              file=sys.stderr)
        return EXIT_USER_ERROR
    # A batched stage handles many cities: its note names the one it was working on.
    notes = "".join(f" ({note})" for note in getattr(inner, "__notes__", []))
    print(f"citykpi: internal error{where}: {type(inner).__name__}: {_one_line(inner)}{notes} (rerun with --debug "
          "for the traceback)", file=sys.stderr)
    return EXIT_INTERNAL


def _home(args: argparse.Namespace) -> Any:
    from warehouse.home import Home

    return Home.resolve(args.home)


def _load_configs(specs: Sequence[str], *, check_files: bool = True, home: Home | None = None) -> list[Any]:
    """The configs of `specs`; with `home`, their YAML data kept there between runs (`Home.parsed_configs`)."""
    from pipelines.cities import load_configs

    return load_configs(specs, check_files=check_files, parsed=home.parsed_configs if home is not None else None)


def cmd_run(args: argparse.Namespace) -> int:
    from canonical.workers import collector_paused, settle_heap
    from pipelines.cities import demo_cities_folder, demo_config_path
    from pipelines.dagster_run import materialize_all
    from pipelines.summary import city_list, print_summary
    from publish.releases import latest_release_id
    from sources.config import load_city_config
    from warehouse.db import writer_lock

    if args.configs and (args.cities or args.seed is not None):
        print("citykpi: error: --cities and --seed make demo cities; give them without CONFIG", file=sys.stderr)
        return EXIT_USER_ERROR
    home = _home(args).ensure()
    started = time.monotonic()
    with writer_lock(home.root):
        home.clean_tmp()
        if args.configs:
            # Offline runs read only the landing zone: the source files need not exist any more.
            with collector_paused():  # until settle_heap below
                configs = _load_configs(args.configs, check_files=not args.offline, home=home)
        elif args.cities:
            print(f"citykpi: {args.cities} demo cities (scale {args.scale:g}) in {home.demo}", file=sys.stderr)
            folder = demo_cities_folder(home, args.cities, args.scale, args.seed)
            with collector_paused():
                configs = _load_configs([str(folder)])
        else:
            print(f"citykpi: demo city (scale {args.scale:g}) in {home.demo}", file=sys.stderr)
            configs = [load_city_config(demo_config_path(home, args.scale, args.seed))]
        print(f"citykpi: running {city_list([c.city_id for c in configs])} -> {home.root}", file=sys.stderr)
        before = latest_release_id(home)
        settle_heap()  # the configs and the libraries imported so far (Dagster's) live to the end of the run
        release = materialize_all(home, configs, offline=args.offline, debug=args.debug, strict=args.strict,
                                  skip_unchanged=not args.force, every_city=args.every_city)
    print_summary(home, release, time.monotonic() - started, unchanged=release.release_id == before)
    return 0


MAX_PROBLEMS_SHOWN = 20


def cmd_validate(args: argparse.Namespace) -> int:
    from canonical.errors import CitykpiError, ConfigError
    from kpis.benchmarking.targets import load_targets
    from pipelines.cities import config_paths
    from pipelines.dry_run import dry_run, format_dry_run
    from sources.config import config_problems

    home = _home(args)
    failed = False
    seen: dict[str, Path] = {}
    for path in [p for spec in args.configs for p in config_paths(spec)]:
        loaded, problems = config_problems(path)
        if loaded is not None and loaded.city_id in seen:
            problems.append(ConfigError(loaded.path, "city.id", f"city {loaded.city_id!r} is already configured in "
                                        f"{seen[loaded.city_id]}; give each city one config"))
        elif loaded is not None:
            seen[loaded.city_id] = loaded.path
        messages = [str(p) for p in problems]
        details = ""
        if loaded is not None:
            own = loaded.targets_path
            try:  # the city's target table beside the config stops a run the same way
                if own.exists():
                    details = f", targets {own.name}: {load_targets(own).height} in force"
            except CitykpiError as exc:
                messages.append(str(exc))
            if not problems and not args.config_only:
                dry = dry_run(loaded, home, fetch=args.fetch)
                messages += dry.problems
                details += "\n" + format_dry_run(dry)
        failed |= bool(messages)
        if messages:
            # Problems are errors (stderr, one line each, as every command reports them); the dry run's
            # account of what each source feeds is the command's output (stdout).
            for message in messages[:MAX_PROBLEMS_SHOWN]:
                print(f"citykpi: error: {message}", file=sys.stderr)
            if len(messages) > MAX_PROBLEMS_SHOWN:  # a hostile or broken file must not flood the terminal
                print(f"citykpi: error: ... and {len(messages) - MAX_PROBLEMS_SHOWN} more problem(s) in {path}",
                      file=sys.stderr)
            print(f"{path}: {len(messages)} problem{'s' if len(messages) != 1 else ''}")
            if details.strip():
                print(details.lstrip(", "))
        else:
            assert loaded is not None
            sources = len(loaded.config.sources)
            summary, _, dry_text = details.partition("\n")
            print(f"{path}: OK (city {loaded.city_id}, {sources} source{'s' if sources != 1 else ''}{summary})")
            if dry_text:
                print(dry_text)
    return EXIT_USER_ERROR if failed else 0


def cmd_coverage(args: argparse.Namespace) -> int:
    from pipelines.dry_run import dry_run, format_coverage

    (loaded,) = _load_configs([args.config])
    dry = dry_run(loaded, _home(args), fetch=args.fetch)
    print(format_coverage(dry, only=args.status))
    return EXIT_USER_ERROR if dry.problems else 0


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from sources.config import config_json_schema

    text = json.dumps(config_json_schema(), indent=2, sort_keys=True) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_sources(args: argparse.Namespace) -> int:
    from typing import get_args

    from sources.config import SourceFormat, SourceTarget
    from sources.kinds import KINDS

    print("Source kinds (how data is fetched):")
    for name, module in sorted(KINDS.items()):
        print(f"  {name:<14} {module.DESCRIPTION}")
    print(f"Formats: {', '.join(get_args(SourceFormat))}")
    print(f"Targets: {', '.join(get_args(SourceTarget))}")
    return 0


def cmd_variables(args: argparse.Namespace) -> int:
    from canonical.variables import VARIABLES
    from pipelines.texttable import cut

    for variable in VARIABLES.values():
        print(f"{cut(variable.name, 34):<34} {cut(variable.unit, 13):<13} {cut(variable.description, 100)}")
    return 0


def cmd_indicators(args: argparse.Namespace) -> int:
    from kpis.catalogue import load_catalogue
    from pipelines.texttable import cut

    for indicator in load_catalogue():
        if args.framework and indicator.framework != args.framework:
            continue
        formula = "formula" if indicator.compute else "no formula yet"
        points = f" [{', '.join(indicator.data_points)}]" if indicator.data_points else ""
        print(f"{cut(indicator.id, 16):<16} {cut(indicator.name, 52):<52} {cut(indicator.unit, 22):<22} "
              f"{formula}{points}")
    return 0


def cmd_releases(args: argparse.Namespace) -> int:
    from publish.releases import list_releases

    home = _home(args)
    if args.releases_command == "show":
        return _release_show(home, args.release)
    if args.releases_command == "diff":
        return _release_diff(home, args.old, args.new)
    releases = list_releases(home)
    if not releases:
        print(f"citykpi: no releases in {home.releases} yet (`citykpi run` writes one)", file=sys.stderr)
        return 0
    for line in release_table(home, releases):
        print(line)
    return 0


def release_table(home: Any, releases: Sequence[str]) -> list[str]:
    """`releases list`: one aligned row per release from its manifest, the latest marked."""
    from pipelines.texttable import format_table
    from publish.releases import latest_release_id, load_release

    latest = latest_release_id(home)
    rows = []
    for release_id in releases:
        m = load_release(home, release_id).manifest
        years = sorted(int(y) for y in m.get("years", []))
        span = "-" if not years else (str(years[0]) if len(years) == 1 else f"{years[0]}-{years[-1]}")
        if years and len(years) != years[-1] - years[0] + 1:
            span = ", ".join(map(str, years))
        created = str(m.get("created_at") or "").replace("T", " ")[:16]
        rows.append([release_id, created, ", ".join(c["id"] for c in m.get("cities", [])), span,
                     f"{m.get('row_counts', {}).get('kpi_values', 0):,}", "latest" if release_id == latest else ""])
    return format_table(["release", "created (UTC)", "cities", "years", "rows", ""], rows,
                        max_widths=[None, 16, 40, 24, 12, 6], right=[4])


def _release_show(home: Any, ref: str) -> int:
    from publish.releases import latest_release_id, load_release, resolve_release_id

    release = load_release(home, resolve_release_id(home, ref))
    m = release.manifest
    latest = " (latest)" if release.release_id == latest_release_id(home) else ""
    print(f"release   {release.release_id}{latest}\npath      {release.path}\ncreated   {m.get('created_at')}\n"
          f"code      {m.get('code_version')}\nprevious  {m.get('previous_release') or '-'}\n"
          f"cities    {', '.join(c['id'] for c in m.get('cities', []))}\n"
          f"years     {', '.join(map(str, m.get('years', [])))}\nrows      {m['row_counts']['kpi_values']}")
    for count in m["row_counts"]["by_framework_and_status"]:
        print(f"          {count['framework']:<6} {count['status']:<15} {count['rows']:>6}")
    print("files")
    for entry in m.get("files", []):
        print(f"  {entry['role']:<19} {entry['bytes']:>10,}  {entry['path']}")
    return 0


def _release_diff(home: Any, old_ref: str, new_ref: str) -> int:
    import polars as pl

    from kpis.catalogue import load_catalogue
    from publish.changes import diff_frames, render_markdown
    from publish.releases import resolve_release_id

    old_id, new_id = resolve_release_id(home, old_ref), resolve_release_id(home, new_ref)
    old, new = (pl.read_parquet(home.releases / r / "kpi_values.parquet") for r in (old_id, new_id))
    sys.stdout.write(render_markdown(diff_frames(old, new), old_id, new_id, load_catalogue()))
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    import json
    import urllib.error

    from canonical.errors import CitykpiError
    from publish.ngsi_ld import upsert, upsert_url
    from publish.releases import load_release, resolve_release_id

    home = _home(args)
    release = load_release(home, resolve_release_id(home, args.release))
    files = release.files("ngsi_ld")
    if not files:
        raise CitykpiError(f"release {release.release_id} has no NGSI-LD entities (written before citykpi had them)")
    entities = [e for path in files for e in json.loads(path.read_text(encoding="utf-8"))]
    try:
        result = upsert(entities, args.ngsi_ld, tenant=args.tenant)
    except (urllib.error.URLError, OSError) as exc:
        raise CitykpiError(f"cannot reach the context broker at {upsert_url(args.ngsi_ld)}: {exc}") from None
    print(f"release {release.release_id}: {result.sent} KeyPerformanceIndicator entities upserted to "
          f"{upsert_url(args.ngsi_ld)} in {result.batches} batch(es), {len(result.errors)} error(s)")
    for error in result.errors[:20]:
        print(f"  {error}", file=sys.stderr)
    if result.errors:
        raise CitykpiError(f"the broker rejected {len(result.errors)} upsert(s); see above")
    return 0


def cmd_targets(args: argparse.Namespace) -> int:
    from kpis.benchmarking.targets import format_targets, load_targets

    for loaded in _load_configs(args.configs, check_files=False) if args.configs else [None]:
        own = None if loaded is None else loaded.targets_path
        if loaded is None:
            print("Default targets (no city config given):")
        else:
            found = "found" if loaded.targets_path.exists() else "none"
            print(f"Targets for {loaded.city_id} (city table {loaded.targets_path}: {found}):")
        print(format_targets(load_targets(own)))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.cities import demo_cities_folder
    from sources.demo.generator import DEFAULT_SEED, ensure_demo_city, generate_demo_cities, generate_demo_city

    seed = DEFAULT_SEED if args.seed is None else args.seed
    if args.cities and args.out:
        generate_demo_cities(Path(args.out), count=args.cities, scale=args.scale, seed=seed)
        path = Path(args.out)
    elif args.cities:
        path = demo_cities_folder(_home(args).ensure(), args.cities, args.scale, seed)
    elif args.out:
        path = generate_demo_city(Path(args.out), scale=args.scale, seed=seed)
    else:
        path = ensure_demo_city(_home(args).ensure().root, scale=args.scale, seed=seed)
    print(path)
    return 0


def cmd_lake(args: argparse.Namespace) -> int:
    from pipelines.lake_run import lake_command

    return lake_command(args, _home(args), _load_configs)


COMMANDS = {"run": cmd_run, "validate": cmd_validate, "schema": cmd_schema, "sources": cmd_sources,
            "coverage": cmd_coverage, "variables": cmd_variables, "indicators": cmd_indicators,
            "releases": cmd_releases, "demo": cmd_demo,
            "targets": cmd_targets, "publish": cmd_publish, "lake": cmd_lake}


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
