"""Pack the citykpi starter dashboard into a zip that Superset imports (Dashboards > Import dashboard).

    python dashboards/superset/make_zip.py --database ~/.local/share/citykpi/releases/latest/citykpi.duckdb

writes `citykpi-superset-dashboard.zip` with the database URI pointing at that file (as the Superset
server sees it: inside a container, give the path there). Standard library only: it runs with any
Python 3.9+, no citykpi install needed. See docs/sql-interface.md#a-starter-dashboard-superset.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path, PurePosixPath

EXPORT = Path(__file__).resolve().parent / "citykpi"
DATABASE_FILE = "databases/citykpi_release.yaml"
URI_KEY = "sqlalchemy_uri: "
DEFAULT_OUTPUT = "citykpi-superset-dashboard.zip"


def database_uri(path: str) -> str:
    """duckdb-engine's URI for an absolute path: duckdb:/// + /abs/path (four slashes on POSIX)."""
    if not PurePosixPath(path).is_absolute():
        raise ValueError(f"the database path must be absolute (as the Superset server sees it), got {path!r}")
    if any(ch in path for ch in "\n\r'\"#"):
        raise ValueError(f"the database path holds a character YAML or a URI would misread: {path!r}")
    return f"duckdb:///{path}"


def with_uri(text: str, uri: str) -> str:
    """The database YAML with its one `sqlalchemy_uri:` line replaced."""
    lines = text.splitlines(keepends=True)
    hits = [n for n, line in enumerate(lines) if line.startswith(URI_KEY)]
    if len(hits) != 1:
        raise ValueError(f"{DATABASE_FILE}: expected one {URI_KEY.strip()} line, found {len(hits)}")
    lines[hits[0]] = f"{URI_KEY}{uri}\n"
    return "".join(lines)


def make_zip(output: Path, database: str | None = None) -> list[str]:
    """Write the import zip (every file under one root folder, as Superset exports it); returns its entries."""
    files = sorted(p for p in EXPORT.rglob("*.yaml") if p.is_file())
    names = []
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            relative = path.relative_to(EXPORT).as_posix()
            text = path.read_text(encoding="utf-8")
            if relative == DATABASE_FILE and database is not None:
                text = with_uri(text, database_uri(database))
            name = f"{EXPORT.name}/{relative}"
            archive.writestr(name, text)
            names.append(name)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="absolute path of the release's citykpi.duckdb as the Superset server "
                                           "sees it (default: keep the path in the YAML)")
    parser.add_argument("-o", "--output", type=Path, default=Path(DEFAULT_OUTPUT), help=f"default: {DEFAULT_OUTPUT}")
    args = parser.parse_args(argv)
    try:
        names = make_zip(args.output, args.database)
    except ValueError as exc:
        print(f"make_zip: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output} ({len(names)} files): import it in Superset under Dashboards > Import dashboard")
    return 0


if __name__ == "__main__":
    sys.exit(main())
