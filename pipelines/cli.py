"""The `citykpi` command line. Heavy libraries are imported inside commands so `--help` is instant."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="citykpi",
        description="Open city data -> U4SSC smart sustainable city KPIs and UN SDG 11 indicators, "
                    "with provenance, quality checks and versioned releases.")
    parser.add_argument("--home", help="directory for all state (default: $CITYKPI_HOME or ~/.local/share/citykpi)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and Dagster logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="fetch, load, compute and publish a release (no CONFIG: the demo city)")
    run.add_argument("configs", nargs="*", metavar="CONFIG", help="city config YAML file(s) or folder(s)")
    run.add_argument("--offline", action="store_true", help="reuse the last snapshots; touch no source")
    run.add_argument("--scale", type=_scale, default=1.0, help="demo city scale factor (no CONFIG only)")

    validate = sub.add_parser("validate", help="check a city config (keys, variables, units, files)")
    validate.add_argument("configs", nargs="+", metavar="CONFIG")

    schema = sub.add_parser("schema", help="print the city config JSON Schema")
    schema.add_argument("--output", "-o", help="write to this file instead of stdout")

    sub.add_parser("sources", help="list the supported source kinds and formats")
    sub.add_parser("variables", help="list the canonical variables sources map to")
    indicators = sub.add_parser("indicators", help="list the indicator catalogue")
    indicators.add_argument("--framework", choices=["u4ssc", "sdg11"])
    sub.add_parser("releases", help="list published releases")

    demo = sub.add_parser("demo", help="generate the demo city's raw files and config")
    demo.add_argument("--scale", type=_scale, default=1.0)
    demo.add_argument("--out", help="folder to write into (default: <home>/demo/...)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from sources.errors import CitykpiError

    try:
        return int(COMMANDS[args.command](args) or 0)
    except CitykpiError as exc:
        if args.debug:
            raise
        print(f"citykpi: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("citykpi: interrupted; nothing half-written was kept", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"citykpi: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


def _home(args: argparse.Namespace) -> Any:
    from warehouse.home import Home

    return Home.resolve(args.home)


def _load_configs(specs: Sequence[str], *, check_files: bool = True) -> list[Any]:
    from pipelines.cities import config_paths
    from sources.config import load_city_config
    from sources.errors import ConfigError

    loaded: list[Any] = []
    for spec in specs:
        paths = config_paths(spec)
        if not paths:
            raise ConfigError(spec, "", "no city config files (*.yaml, *.yml) in this folder")
        loaded += [load_city_config(path, check_files=check_files) for path in paths]
    seen: dict[str, Any] = {}
    for config in loaded:
        if config.city_id in seen:
            raise ConfigError(config.path, "city.id", f"city {config.city_id!r} is already configured in "
                                                      f"{seen[config.city_id].path}; give each city one config")
        seen[config.city_id] = config
    return loaded


def cmd_run(args: argparse.Namespace) -> int:
    from pipelines.cities import demo_config_path
    from pipelines.dagster_run import materialize_all
    from pipelines.summary import print_summary
    from sources.config import load_city_config
    from warehouse.db import writer_lock

    home = _home(args).ensure()
    started = time.monotonic()
    with writer_lock(home.root):
        home.clean_tmp()
        if args.configs:
            # Offline runs read only the landing zone: the source files need not exist any more.
            configs = _load_configs(args.configs, check_files=not args.offline)
        else:
            print(f"citykpi: demo city (scale {args.scale:g}) in {home.demo}", file=sys.stderr)
            configs = [load_city_config(demo_config_path(home, args.scale))]
        print(f"citykpi: running {', '.join(c.city_id for c in configs)} -> {home.root}", file=sys.stderr)
        release = materialize_all(home, configs, offline=args.offline, debug=args.debug)
    print_summary(home, release, time.monotonic() - started)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    for loaded in _load_configs(args.configs):
        sources = len(loaded.config.sources)
        print(f"{loaded.path}: OK (city {loaded.city_id}, {sources} source{'s' if sources != 1 else ''})")
    return 0


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
    from warehouse.variables import VARIABLES

    for variable in VARIABLES.values():
        print(f"{variable.name:<34} {variable.unit:<13} {variable.description}")
    return 0


def cmd_indicators(args: argparse.Namespace) -> int:
    from kpis.catalogue import load_catalogue

    for indicator in load_catalogue():
        if args.framework and indicator.framework != args.framework:
            continue
        formula = "formula" if indicator.compute else "no formula yet"
        points = f" [{', '.join(indicator.data_points)}]" if indicator.data_points else ""
        print(f"{indicator.id:<16} {indicator.name[:52]:<52} {indicator.unit[:22]:<22} {formula}{points}")
    return 0


def cmd_releases(args: argparse.Namespace) -> int:
    from warehouse.releases import list_releases

    home = _home(args)
    for release_id in list_releases(home):
        print(home.releases / release_id)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from sources.demo.generator import ensure_demo_city, generate_demo_city

    if args.out:
        path = generate_demo_city(Path(args.out), scale=args.scale)
    else:
        path = ensure_demo_city(_home(args).ensure().root, scale=args.scale)
    print(path)
    return 0


COMMANDS = {"run": cmd_run, "validate": cmd_validate, "schema": cmd_schema, "sources": cmd_sources,
            "variables": cmd_variables, "indicators": cmd_indicators, "releases": cmd_releases, "demo": cmd_demo}


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
