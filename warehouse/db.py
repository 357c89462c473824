"""Opening the warehouse and applying versioned migrations.

One process opens the warehouse at a time (DuckDB's rule: a read-write connection excludes every
other process). Every stage opens it through `open_warehouse`, which holds `<home>/.lock` (flock)
for exactly as long as the connection is open and waits for another process's stage to finish, so
parallel Dagster runs and multiprocess steps queue at the warehouse instead of failing on DuckDB's
lock. `citykpi run` holds the same lock for its whole run. Every stage writes inside one
transaction, so a killed run leaves the previous state intact.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import duckdb

from canonical.errors import CitykpiError
from canonical.sqltext import ident

MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class WarehouseBusyError(CitykpiError):
    pass


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped in warehouse/migrations, in order."""
    found = []
    for entry in resources.files("warehouse").joinpath("migrations").iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found)


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply pending migrations, each in its own transaction. Returns the versions applied."""
    con.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, sha256 VARCHAR NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now())""")
    applied = {row[0]: row[1] for row in con.execute("SELECT version, sha256 FROM schema_migrations").fetchall()}
    done = []
    for version, name, sql in migrations():
        digest = hashlib.sha256(sql.encode()).hexdigest()
        if version in applied:
            if applied[version] != digest:
                raise CitykpiError(f"migration {version:04d}_{name}.sql changed after it was applied; "
                                   "add a new migration instead of editing an applied one")
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations (version, name, sha256) VALUES (?, ?, ?)",
                        [version, name, digest])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        done.append(version)
    return done


MEMORY_ENV = "CITYKPI_WAREHOUSE_MEMORY"
DEFAULT_MEMORY = "1GB"


def memory_limit() -> str:
    """DuckDB's memory limit for the warehouse ($CITYKPI_WAREHOUSE_MEMORY, default 1GB). DuckDB's own default
    is 80 % of the machine's memory, and it keeps what it read cached up to that limit: a run over 1,000
    cities grew past 14 GB. Past the limit DuckDB spills joins, aggregates and sorts to `<warehouse>.tmp/`."""
    return os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY


# DuckDB checkpoints (writes the WAL's changes into the database file) when a commit leaves a WAL
# larger than this. Its default, 16 MB, is about one city's load: every city's commit then paid a
# checkpoint, and a checkpoint costs about 110 ms plus its data at 1,000 cities (docs/performance.md).
CHECKPOINT_THRESHOLD = "256MB"


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse; writers get pending migrations applied first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A config value, never SQL text; DuckDB refuses a bad one.
    config: dict[str, str | bool | int | float | list[str]] = {"memory_limit": memory_limit()}
    if not read_only:
        config["checkpoint_threshold"] = CHECKPOINT_THRESHOLD
    try:
        if read_only:
            return duckdb.connect(str(path), read_only=True, config=config)
        con = duckdb.connect(str(path), config=config)
    except duckdb.Error as exc:
        if MEMORY_ENV in os.environ and "memory" in str(exc).lower():
            raise CitykpiError(f"${MEMORY_ENV} must be a size DuckDB reads, e.g. 2GB or 512MB, not "
                               f"{os.environ[MEMORY_ENV]!r}") from None
        raise
    migrate(con)
    return con


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


_HELD: dict[Path, int] = {}

LOCK_WAIT_ENV = "CITYKPI_LOCK_WAIT_S"
DEFAULT_LOCK_WAIT_S = 6 * 3600.0


def lock_wait_s() -> float:
    """How long a stage waits for another process's stage ($CITYKPI_LOCK_WAIT_S, default six hours)."""
    return float(os.environ.get(LOCK_WAIT_ENV, DEFAULT_LOCK_WAIT_S))


@contextmanager
def writer_lock(home_root: Path, *, wait_s: float = 0.0) -> Iterator[None]:
    """Exclusive lock for writing to a home: one writer process at a time.

    Re-entrant within a process (the CLI holds it for a whole run while each stage takes it
    again), exclusive across processes (flock). With `wait_s` > 0 a writer waits that long for
    another process to finish before giving up.
    """
    home_root = home_root.resolve()
    if _HELD.get(home_root):
        _HELD[home_root] += 1
        try:
            yield
        finally:
            _HELD[home_root] -= 1
        return
    home_root.mkdir(parents=True, exist_ok=True)
    fd = os.open(home_root / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseBusyError(
                        f"another citykpi run is writing to {home_root}; try again when it ends") from None
                time.sleep(0.05)
        _HELD[home_root] = 1
        try:
            yield
        finally:
            _HELD.pop(home_root, None)
    finally:
        os.close(fd)


@contextmanager
def open_warehouse(home_root: Path, path: Path, *, read_only: bool = False,
                   wait_s: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse, opened under the home's lock (waiting up to `wait_s`, default `lock_wait_s()`),
    closed and unlocked on exit. Re-entrant inside a process that already holds the lock."""
    with writer_lock(home_root, wait_s=lock_wait_s() if wait_s is None else wait_s):
        con = connect(path, read_only=read_only)
        try:
            yield con
        finally:
            con.close()


def one_row(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> tuple[object, ...] | None:
    """First row of a query, reading the result to the end (DuckDB 2 keeps a partly read result open
    and refuses further work on the connection until it is finished)."""
    rows = con.execute(sql, params).fetchall()
    return rows[0] if rows else None


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> object:
    row = one_row(con, sql, params)
    return row[0] if row else None


INSERT_VERBS = {"": "INSERT", "replace": "INSERT OR REPLACE", "ignore": "INSERT OR IGNORE"}


def insert_values(con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str],
                  rows: Sequence[Sequence[object]], *, conflict: str = "") -> None:
    """Every row into `table` (`columns`) as one VALUES list: one statement (`conflict`: "replace" or
    "ignore" for an upsert). Each INSERT statement costs DuckDB a millisecond or more, an upsert about 3-4 ms,
    and a load writes several per city. A key given twice in one call keeps its first row, also with
    "replace" (one statement per row would keep the last): callers pass each key once."""
    if not rows:
        return
    if any(len(row) != len(columns) for row in rows):
        raise ValueError(f"insert_values: rows of {table} must have {len(columns)} values")
    verb = INSERT_VERBS[conflict]
    placeholders = "(" + ", ".join("?" for _ in columns) + ")"
    con.execute(f"{verb} INTO {ident(table)} ({', '.join(ident(c) for c in columns)}) "
                f"VALUES {', '.join(placeholders for _ in rows)}", [value for row in rows for value in row])
