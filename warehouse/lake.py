"""The shared warehouse ("lake"): Apache Iceberg tables in a SQL catalog, for many machines.

The embedded default stays one DuckDB file per home (warehouse/db.py). Past one machine, each worker
runs the normal stages for its cities in its own home, then commits the cities' rows from its local
DuckDB warehouse into shared Iceberg tables (pyiceberg; the catalog in PostgreSQL or any database
SQLAlchemy reaches, the data files on S3-compatible object storage or a local folder). A publisher reads
them back into a fresh local DuckDB warehouse and writes the normal release (pipelines/lake_run.py).

- **Tables** (`LAKE_TABLES`): the local tables a release is made from, each with the DuckDB table's
  schema (derived from the migrations, so a new migration's column reaches the lake by schema
  evolution, `union_by_name`) and one more column, `lake_version`. Every table is partitioned by
  city_id: a city's commit writes one data file per table, and replacing its rows for a run of
  consecutive years drops whole files by their year statistics, without reading them.
- **A commit** replaces a city's rows for the given years in every table: one Iceberg `overwrite` per
  table with the filter `city_id = c AND year IN (...)` (`city_id = c` for tables without a year),
  all cities of a batch in one overwrite per table. Iceberg has no multi-table transaction, so the
  ledger table `lake_cities` says what is complete: a city's row is set to `writing` before its tables
  are written and to `committed` (with its version and the row count of each table) after. A reader
  (`read_cities`) checks every table's rows against the ledger and refuses a city that is not complete.
- **Optimistic concurrency**: a lost compare-and-swap in the catalog (`CommitFailedException`) or a
  concurrent overwrite of the same filter (`ValidationException`) is retried after re-reading the
  table, with exponential back-off and jitter (`RETRY_ATTEMPTS`). pyiceberg's own retry is switched off
  (table property `commit.retry.num-retries` 0) so every retry is counted here (`CommitReport`).
- **Idempotent**: a city's `lake_version` is a SHA-256 of its rows without the run-specific columns
  (`VOLATILE_COLUMNS`: run ids, timestamps, local paths) and history-dependent text (`narrative`: a
  check's sample). A city whose ledger row is `committed` with
  the same version is not written again: recommitting the same rows makes no new snapshot, and two
  workers that computed the same city leave one version of its rows (the overwrite replaces, never adds).
- **Secrets**: the catalog password and the object store's keys come from the environment
  (`LakeSettings.from_env`), are passed to the catalog in memory only, and are cut out of every error
  message this module raises (`redact`).

No Dagster here (pipelines/ wires it); SQL names only through canonical.sqltext.ident.
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import duckdb

from canonical.errors import CitykpiError
from canonical.sqltext import ident

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

ENV_CATALOG_URI = "CITYKPI_LAKE_CATALOG_URI"            # SQLAlchemy URL, e.g. postgresql+psycopg2://citykpi@db/lake
ENV_CATALOG_PASSWORD = "CITYKPI_LAKE_CATALOG_PASSWORD"  # kept out of the URL (and out of every message)
ENV_WAREHOUSE = "CITYKPI_LAKE_WAREHOUSE"                # s3://bucket/prefix, or a local folder
ENV_NAMESPACE = "CITYKPI_LAKE_NAMESPACE"                # default "citykpi"
ENV_S3_ENDPOINT = "CITYKPI_LAKE_S3_ENDPOINT"            # S3-compatible stores (MinIO, Ceph, ...); empty: AWS
ENV_WORKER = "CITYKPI_LAKE_WORKER"                      # a name for this worker in snapshot summaries
DEFAULT_NAMESPACE = "citykpi"
CATALOG_NAME = "citykpi"

LEDGER = "lake_cities"
VERSION_COLUMN = "lake_version"
# Columns that differ between two runs of the same inputs (which run, when, where on the local disk,
# how a file was fetched): left out of a city's version, so equal rows give equal versions.
VOLATILE_COLUMNS = frozenset({"run_id", "computed_at", "loaded_at", "fetched_at", "evaluated_at", "derived_at",
                              "path", "request"})
RETRY_ATTEMPTS = 30
RETRY_FIRST_WAIT_S = 0.05
RETRY_MAX_WAIT_S = 4.0


@dataclass(frozen=True)
class LakeTable:
    """One local warehouse table in the lake: `by_year` tables are replaced per city and year, the
    others per city. `rows_sql` is the SELECT of a city's rows (one `?`: the city id); None: all of them."""

    name: str
    by_year: bool
    rows_sql: str | None = None
    # Text that depends on a home's history, not on the city's data (left out of the version like the
    # volatile columns): two workers with equal rows and verdicts get equal versions.
    narrative: tuple[str, ...] = ()


# What publish reads (pipelines/steps.publish -> publish/releases.py): the values, the benchmarking
# tables, the district polygons (report maps), the snapshots and load reports (manifest), the quality
# results (manifest, Data Docs); and the observations the values were computed from.
LAKE_TABLES: tuple[LakeTable, ...] = (
    LakeTable("observations", by_year=True),
    LakeTable("kpi_values", by_year=True),
    LakeTable("kpi_scores", by_year=True),
    LakeTable("kpi_rollups", by_year=True),
    LakeTable("kpi_progress", by_year=False),
    LakeTable("core_areas", by_year=False),
    LakeTable("core_source_state", by_year=False),
    # Only the snapshots the warehouse reflects (the landing zone keeps the history).
    LakeTable("source_snapshots", by_year=False, rows_sql="""
        SELECT n.* FROM source_snapshots n JOIN core_source_state s USING (snapshot_id) WHERE s.city_id = ?"""),
    LakeTable("core_derive_state", by_year=False),
    # The newest result of every check (what a release's quality summary reads with latest_quality).
    # A check's sample and GX text may name the previous run's figures (sources.rows_present: the
    # previous row counts), so a home that ran twice words an equal verdict differently.
    LakeTable("quality_results", by_year=False, rows_sql="""
        SELECT * FROM quality_results WHERE city_id = ?
        QUALIFY row_number() OVER (PARTITION BY city_id, table_name, check_name
                                   ORDER BY evaluated_at DESC, run_id DESC) = 1""",
              narrative=("sample", "expectation")),
)
TABLE_NAMES = tuple(t.name for t in LAKE_TABLES)


class LakeError(CitykpiError):
    """The lake cannot be reached or holds what a step cannot use (the message names what to do)."""


# ---- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LakeSettings:
    """Where the lake is. Secrets live only in memory and never in `repr`, messages or files."""

    catalog_uri: str
    warehouse: str
    namespace: str = DEFAULT_NAMESPACE
    catalog_password: str | None = field(default=None, repr=False)
    s3_endpoint: str | None = None
    s3_region: str | None = None
    s3_access_key: str | None = field(default=None, repr=False)
    s3_secret_key: str | None = field(default=None, repr=False)
    s3_session_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LakeSettings:
        env = os.environ if env is None else env
        missing = [name for name in (ENV_CATALOG_URI, ENV_WAREHOUSE) if not env.get(name)]
        if missing:
            raise LakeError(f"the shared warehouse is not configured: set {' and '.join(missing)} "
                            "(docs/deployment.md, 'Past one machine')")
        return cls(catalog_uri=env[ENV_CATALOG_URI], warehouse=env[ENV_WAREHOUSE],
                   namespace=env.get(ENV_NAMESPACE) or DEFAULT_NAMESPACE,
                   catalog_password=env.get(ENV_CATALOG_PASSWORD) or None,
                   s3_endpoint=env.get(ENV_S3_ENDPOINT) or None,
                   s3_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
                   s3_access_key=env.get("AWS_ACCESS_KEY_ID") or None,
                   s3_secret_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
                   s3_session_token=env.get("AWS_SESSION_TOKEN") or None)

    def __repr__(self) -> str:  # the URL may hold a password: never the dataclass's own repr
        return f"LakeSettings({self.describe()})"

    def secrets(self) -> list[str]:
        """Every secret these settings hold (also a password written into the catalog URI)."""
        found = [self.catalog_password, self.s3_access_key, self.s3_secret_key, self.s3_session_token,
                 _url_password(self.catalog_uri)]
        return [s for s in found if s]

    def describe(self) -> str:
        """Where the lake is, for messages: the catalog URL without its password, the warehouse, the namespace."""
        return f"catalog {_hide_password(self.catalog_uri)}, data {self.warehouse}, namespace {self.namespace}"

    def catalog_properties(self) -> dict[str, str]:
        uri = self.catalog_uri
        if self.catalog_password:
            from sqlalchemy.engine import make_url

            uri = make_url(uri).set(password=self.catalog_password).render_as_string(hide_password=False)
        props = {"uri": uri, "warehouse": self.warehouse}
        s3 = {"s3.endpoint": self.s3_endpoint, "s3.region": self.s3_region or ("us-east-1" if self.s3_endpoint
                                                                               else None),
              "s3.access-key-id": self.s3_access_key, "s3.secret-access-key": self.s3_secret_key,
              "s3.session-token": self.s3_session_token}
        props.update({k: v for k, v in s3.items() if v})
        if self.s3_endpoint:
            props["s3.force-virtual-addressing"] = "false"   # path-style requests: MinIO, Ceph, moto
        return props


def _url_password(uri: str) -> str | None:
    try:
        from sqlalchemy.engine import make_url

        return make_url(uri).password
    except Exception:
        return None


def _hide_password(uri: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(uri).render_as_string(hide_password=True)
    except Exception:
        return "<catalog URL>"


def redact(text: str, secrets: Sequence[str]) -> str:
    """`text` with every secret replaced by ***."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return text


# ---- the catalog and its tables ------------------------------------------------------------------


@dataclass
class Lake:
    """An open catalog and the settings it came from."""

    settings: LakeSettings
    catalog: Catalog = field(repr=False)   # its properties hold the secrets
    worker: str = ""

    def identifier(self, table: str) -> tuple[str, str]:
        return (self.settings.namespace, table)

    def table(self, name: str) -> Table:
        from pyiceberg.exceptions import NoSuchTableError

        try:
            return self.catalog.load_table(self.identifier(name))
        except NoSuchTableError:
            raise LakeError(f"the lake has no table {name!r} in {self.settings.describe()}; run "
                            "`citykpi lake init` (or any worker) first") from None

    @contextmanager
    def guarded(self, doing: str) -> Iterator[None]:
        """Errors from the catalog or the object store as one LakeError without secrets."""
        try:
            yield
        except CitykpiError as exc:
            raise type(exc)(redact(str(exc), self.settings.secrets())) from None
        except Exception as exc:
            message = redact(" ".join(str(exc).split()), self.settings.secrets())
            raise LakeError(f"{doing} failed ({self.settings.describe()}): {type(exc).__name__}: "
                            f"{message[:600]}") from None


def default_worker() -> str:
    return os.environ.get(ENV_WORKER) or f"{socket.gethostname()}-{os.getpid()}"


def open_lake(settings: LakeSettings | None = None, *, worker: str | None = None) -> Lake:
    """Connect to the catalog (creating its own tables on first use; racing workers retry)."""
    settings = settings or LakeSettings.from_env()
    from pyiceberg.catalog.sql import SqlCatalog

    secrets = settings.secrets()
    last: Exception | None = None
    for attempt in range(5):
        try:
            catalog = SqlCatalog(CATALOG_NAME, **settings.catalog_properties())
            return Lake(settings, catalog, worker or default_worker())
        except Exception as exc:  # two workers creating the catalog tables at once: one wins, retry
            last = exc
            time.sleep(0.2 * (attempt + 1))
    message = redact(" ".join(str(last).split()), secrets)
    raise LakeError(f"cannot open the lake catalog ({settings.describe()}): {type(last).__name__}: "
                    f"{message[:600]}") from None


def schema_warehouse() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with every migration applied: the schemas of the lake's tables."""
    from warehouse.db import migrate

    con = duckdb.connect()
    migrate(con)
    return con


def table_arrow_schema(con: duckdb.DuckDBPyConnection, table: str) -> pa.Schema:
    """The DuckDB table's Arrow schema, plus the lake's version column."""
    import pyarrow as pa

    schema = con.sql(f"SELECT * FROM {ident(table)} LIMIT 0").to_arrow_table().schema
    return schema.append(pa.field(VERSION_COLUMN, pa.string()))


def ledger_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([("city_id", pa.string()), ("state", pa.string()), (VERSION_COLUMN, pa.string()),
                      ("years", pa.list_(pa.int32())), ("table_rows", pa.string()), ("worker", pa.string()),
                      ("committed_at", pa.timestamp("us", tz="UTC"))])


def ensure_tables(lake: Lake, con: duckdb.DuckDBPyConnection | None = None) -> dict[str, str]:
    """Create the namespace and every lake table that is missing, and add the columns a newer
    migration gave the local table (schema evolution). Returns {table: created / evolved / current}."""
    from pyiceberg.exceptions import NamespaceAlreadyExistsError

    own = con is None
    con = con or schema_warehouse()
    outcome = {}
    try:
        with lake.guarded("preparing the lake's tables"):
            with suppress(NamespaceAlreadyExistsError):
                lake.catalog.create_namespace_if_not_exists(lake.settings.namespace)
            for spec in LAKE_TABLES:
                outcome[spec.name] = _ensure_table(lake, spec.name, table_arrow_schema(con, spec.name), ("city_id",))
            outcome[LEDGER] = _ensure_table(lake, LEDGER, ledger_schema(), ("city_id",))
    finally:
        if own:
            con.close()
    return outcome


def _ensure_table(lake: Lake, name: str, schema: pa.Schema, partition_by: Sequence[str]) -> str:
    from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError

    for _ in range(5):
        try:
            table = lake.catalog.load_table(lake.identifier(name))
        except NoSuchTableError:
            try:
                lake.catalog.create_table(lake.identifier(name), schema=_iceberg_schema(schema),
                                          partition_spec=_partition_spec(schema, partition_by),
                                          properties={"commit.retry.num-retries": "0",
                                                      "write.parquet.compression-codec": "zstd"})
                return "created"
            except TableAlreadyExistsError:
                continue
            except Exception as exc:  # a racing worker's insert into the catalog won (unique key)
                if "already exists" in str(exc).lower() or "unique" in str(exc).lower():
                    continue
                raise
        have = {f.name for f in table.schema().fields}
        if {f.name for f in schema} - have:
            with table.update_schema() as update:
                update.union_by_name(schema)
            return "evolved"
        return "current"
    raise LakeError(f"could not create or load the lake table {name!r}")


def _iceberg_schema(schema: pa.Schema) -> Any:
    from pyiceberg.io.pyarrow import _ConvertToIcebergWithoutIDs, visit_pyarrow
    from pyiceberg.schema import assign_fresh_schema_ids

    return assign_fresh_schema_ids(visit_pyarrow(schema, _ConvertToIcebergWithoutIDs()))


def _partition_spec(schema: pa.Schema, columns: Sequence[str]) -> Any:
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import IdentityTransform

    iceberg = _iceberg_schema(schema)
    fields = [PartitionField(source_id=iceberg.find_field(c).field_id, field_id=1000 + i,
                             transform=IdentityTransform(), name=c) for i, c in enumerate(columns)]
    return PartitionSpec(*fields)


# ---- what a worker commits -----------------------------------------------------------------------


@dataclass
class CityExtract:
    """A city's rows from a local warehouse, ready to commit."""

    city_id: str
    years: list[int]
    version: str
    rows: dict[str, pa.Table]     # table -> rows (with the version column)

    @property
    def table_rows(self) -> dict[str, int]:
        return {name: rows.num_rows for name, rows in self.rows.items()}


def _select_city(name: str, rows_sql: str | None, by_year: bool) -> str:
    """The SELECT of a city's rows of a lake table (parameters: the city id, then for a year-keyed
    table the list of years)."""
    if rows_sql is None:
        rows_sql = f"SELECT * FROM {ident(name)} WHERE city_id = ?"
    return f"SELECT * FROM ({rows_sql}) WHERE list_contains(?, year)" if by_year else f"{rows_sql}"


def local_years(con: duckdb.DuckDBPyConnection, city_id: str) -> list[int]:
    """Every year the city has rows for in the local year-keyed tables."""
    found: set[int] = set()
    for spec in LAKE_TABLES:
        if spec.by_year:
            found |= {int(r[0]) for r in con.execute(
                f"SELECT DISTINCT year FROM {ident(spec.name)} WHERE city_id = ?", [city_id]).fetchall()}
    return sorted(found)


def extract_city(con: duckdb.DuckDBPyConnection, city_id: str, years: Sequence[int] | None = None) -> CityExtract:
    """The city's rows of every lake table from a local warehouse (`years`: of the year-keyed tables;
    None: every year it has), with its version: SHA-256 over each table's rows without the volatile
    columns, in a canonical order."""
    import hashlib

    import pyarrow as pa

    years = sorted(years) if years is not None else local_years(con, city_id)
    digest = hashlib.sha256(json.dumps({"city": city_id, "years": years}).encode())
    extracted: dict[str, pa.Table] = {}
    for spec in LAKE_TABLES:
        select_sql = _select_city(spec.name, spec.rows_sql, spec.by_year)
        extra: list[Any] = [list(years)] if spec.by_year else []
        rows = con.sql(select_sql, params=[city_id, *extra])
        stable = [c for c in rows.columns if c not in VOLATILE_COLUMNS and c not in spec.narrative]
        listed = ", ".join(ident(c) for c in stable)
        # One text line per row (DuckDB's text form of a struct: round-trip doubles), sorted, hashed.
        (table_digest, count), = con.sql(
            f"""SELECT sha256(coalesce(string_agg(line, chr(10) ORDER BY line), '')), count(*)
                FROM (SELECT CAST(ROW({listed}) AS VARCHAR) AS line FROM ({select_sql}))""",
            params=[city_id, *extra]).fetchall()
        digest.update(f"{spec.name}:{count}:{table_digest}\n".encode())
        extracted[spec.name] = con.sql(select_sql, params=[city_id, *extra]).to_arrow_table()
    version = digest.hexdigest()
    for name, rows in extracted.items():
        extracted[name] = rows.append_column(VERSION_COLUMN, pa.array([version] * rows.num_rows, pa.string()))
    return CityExtract(city_id, years, version, extracted)


# ---- committing -----------------------------------------------------------------------------------


@dataclass
class CommitReport:
    """What a commit did: per table its seconds, retries and rows; the cities written and skipped."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)          # already committed with the same version
    tables: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def retries(self) -> int:
        return int(sum(t.get("retries", 0) for t in self.tables.values()))

    @property
    def commits(self) -> int:
        return len(self.tables)

    def as_dict(self) -> dict[str, Any]:
        return {"written": self.written, "skipped": self.skipped, "commits": self.commits,
                "retries": self.retries, "seconds": round(self.seconds, 3), "tables": self.tables}


def _expressions() -> Any:
    """pyiceberg's row filter expressions (typed loosely: their pydantic signatures confuse mypy)."""
    import pyiceberg.expressions

    return pyiceberg.expressions


def _cities_filter(cities: Sequence[str] | None) -> Any:
    e = _expressions()
    return e.AlwaysTrue() if cities is None else e.In("city_id", list(cities))


def _years_filter(years: Sequence[int]) -> Any:
    """`year BETWEEN first AND last` when the years are consecutive (a file whose year statistics lie in
    the range is then dropped whole, without reading it), else `year IN (...)`."""
    e = _expressions()
    first, last = min(years), max(years)
    if last - first + 1 == len(set(years)):
        return e.And(e.GreaterThanOrEqual("year", first), e.LessThanOrEqual("year", last))
    return e.In("year", sorted(years))


def _city_filter(extracts: Sequence[CityExtract], by_year: bool) -> Any:
    """`city_id = c AND year IN (...)` for each city (OR-ed), or `city_id IN (...)` without years."""
    e = _expressions()
    if not by_year:
        return _cities_filter([x.city_id for x in extracts])
    parts = [e.And(e.EqualTo("city_id", x.city_id), _years_filter(x.years)) for x in extracts if x.years]
    if not parts:
        return e.AlwaysFalse()
    result = parts[0]
    for part in parts[1:]:
        result = e.Or(result, part)
    return result


def _with_retries(lake: Lake, name: str, write: Callable[[Table], None], stats: dict[str, float]) -> None:
    """Run `write` on the freshly read table until it commits: a lost compare-and-swap or a
    concurrent overwrite of the same rows is retried after re-reading the table."""
    from pyiceberg.exceptions import CommitFailedException, ValidationException

    started = time.monotonic()
    retries = 0
    table = lake.table(name)
    for attempt in range(RETRY_ATTEMPTS):
        try:
            write(table)
            break
        except (CommitFailedException, ValidationException):
            if attempt == RETRY_ATTEMPTS - 1:
                raise LakeError(f"lake table {name!r}: the commit lost to concurrent writers {RETRY_ATTEMPTS} "
                                "times; run the worker again") from None
            retries += 1
            wait = min(RETRY_MAX_WAIT_S, RETRY_FIRST_WAIT_S * 2 ** attempt)
            time.sleep(wait * random.uniform(0.5, 1.0))
            table = table.refresh()   # the re-read: the next overwrite starts from the current snapshot
    stats["seconds"] = round(time.monotonic() - started, 3)
    stats["retries"] = retries


def _summary(lake: Lake, extracts: Sequence[CityExtract], what: str) -> dict[str, str]:
    return {"citykpi.worker": lake.worker, "citykpi.operation": what,
            "citykpi.cities": ",".join(e.city_id for e in extracts)[:2000]}


def _ledger_rows(lake: Lake, extracts: Sequence[CityExtract], state: str) -> pa.Table:
    import pyarrow as pa

    now = datetime.now(UTC)
    return pa.Table.from_pylist(
        [{"city_id": e.city_id, "state": state, VERSION_COLUMN: e.version, "years": e.years,
          "table_rows": json.dumps(e.table_rows, sort_keys=True), "worker": lake.worker, "committed_at": now}
         for e in extracts], schema=ledger_schema())


def read_ledger(lake: Lake, cities: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """{city: its ledger row} (state, version, years, table_rows, worker, committed_at)."""
    with lake.guarded("reading the lake's ledger"):
        scan = lake.table(LEDGER).scan(row_filter=_cities_filter(cities))
        rows = scan.to_arrow().to_pylist()
    out = {}
    for row in rows:
        row["table_rows"] = json.loads(row["table_rows"] or "{}")
        out[row["city_id"]] = row
    return out


def _overwrite(lake: Lake, name: str, rows: pa.Table, row_filter: Any, summary: dict[str, str],
               stats: dict[str, float]) -> None:
    """One Iceberg commit: the table's rows matching `row_filter` replaced by `rows` (retried)."""

    def write(table: Table) -> None:
        with warnings.catch_warnings():  # "Delete operation did not match any records": a first commit
            warnings.simplefilter("ignore", UserWarning)
            table.overwrite(rows.cast(_target_schema(table, rows.schema)), overwrite_filter=row_filter,
                            snapshot_properties=summary)

    _with_retries(lake, name, write, stats)


def commit_extracts(lake: Lake, extracts: Sequence[CityExtract], *, force: bool = False,
                    progress: Callable[[str], None] | None = None) -> CommitReport:
    """Commit the cities' rows: skip the ones whose committed version is this one (unless `force`),
    mark the rest `writing` in the ledger, overwrite each table's rows of those cities and years, mark
    them `committed`. One Iceberg commit per table for all the cities."""
    import pyarrow as pa

    report = CommitReport()
    started = time.monotonic()
    with lake.guarded("committing to the lake"):
        ledger = read_ledger(lake, [e.city_id for e in extracts])
        todo = []
        for extract in extracts:
            row = ledger.get(extract.city_id)
            if not force and row and row["state"] == "committed" and row[VERSION_COLUMN] == extract.version:
                report.skipped.append(extract.city_id)
            else:
                todo.append(extract)
        report.written = [e.city_id for e in todo]
        if todo:
            # (table, label, by_year): the ledger marks the cities `writing` first and `committed` last.
            stages = [(LEDGER, "writing", False), *((t.name, t.name, t.by_year) for t in LAKE_TABLES),
                      (LEDGER, "committed", False)]
            for name, label, by_year in stages:
                if name == LEDGER:
                    rows = _ledger_rows(lake, todo, label)
                else:
                    rows = pa.concat_tables([e.rows[name] for e in todo])
                stats: dict[str, float] = {"rows": rows.num_rows}
                _overwrite(lake, name, rows, _city_filter(todo, by_year), _summary(lake, todo, label), stats)
                key = f"{LEDGER}:{label}" if name == LEDGER else name
                report.tables[key] = stats
                if progress:
                    progress(f"committed {key}: {len(todo)} cities, {int(stats['rows'])} rows, "
                             f"{stats['seconds']:.2f} s, {int(stats['retries'])} retries")
    report.seconds = time.monotonic() - started
    return report


def _target_schema(table: Table, provided: pa.Schema) -> pa.Schema:
    """The provided columns with the lake table's Arrow types (time zone spelled as the table has it)."""
    import pyarrow as pa

    target = table.schema().as_arrow()
    fields = []
    for f in provided:
        index = target.get_field_index(f.name)
        fields.append(pa.field(f.name, target.field(index).type, nullable=True) if index >= 0 else f)
    return pa.schema(fields)


def commit_cities(lake: Lake, con: duckdb.DuckDBPyConnection, cities: Sequence[str],
                  years: Mapping[str, Sequence[int]] | None = None, *, force: bool = False,
                  progress: Callable[[str], None] | None = None) -> CommitReport:
    """Commit these cities' rows from a local warehouse (`years`: per city; default every year it has)."""
    extracts = [extract_city(con, city, (years or {}).get(city)) for city in cities]
    return commit_extracts(lake, extracts, force=force, progress=progress)


# ---- reading ------------------------------------------------------------------------------------


def read_table(lake: Lake, name: str, cities: Sequence[str] | None = None) -> pa.Table:
    """A lake table's rows (of these cities), as Arrow."""
    with lake.guarded(f"reading lake table {name}"):
        return lake.table(name).scan(row_filter=_cities_filter(cities)).to_arrow()


def verify_cities(ledger: Mapping[str, Mapping[str, Any]], tables: Mapping[str, pa.Table],
                  cities: Sequence[str]) -> list[str]:
    """Problems with these cities' rows against the ledger: not committed, or a table whose rows are not
    exactly the committed version (a worker killed while it wrote, or two writers of different rows)."""
    import pyarrow.compute as pc

    problems = []
    for city in cities:
        row = ledger.get(city)
        if row is None:
            problems.append(f"{city}: not in the lake (no worker committed it)")
            continue
        if row["state"] != "committed":
            problems.append(f"{city}: its commit by {row['worker']} did not finish (still writing, or the "
                            "worker stopped); run a worker for it again")
            continue
        years = set(row["years"] or [])
        for spec in LAKE_TABLES:
            rows = tables[spec.name]
            mine = rows.filter(pc.equal(rows["city_id"], city))
            if spec.by_year:
                mine = mine.filter(pc.is_in(mine["year"], value_set=_int_array(years)))
            versions = mine[VERSION_COLUMN].to_pylist()
            expected = int(row["table_rows"].get(spec.name, 0))
            if any(v != row[VERSION_COLUMN] for v in versions) or len(versions) != expected:
                problems.append(f"{city}: lake table {spec.name} holds {len(versions)} rows, "
                                f"{sum(v == row[VERSION_COLUMN] for v in versions)} of the committed version "
                                f"(expected {expected}); run a worker for it again")
    return problems


def _int_array(values: Any) -> Any:
    import pyarrow as pa

    return pa.array(sorted(values), pa.int32())


def read_cities(lake: Lake, cities: Sequence[str]) -> dict[str, pa.Table]:
    """Every lake table's rows of these cities, checked against the ledger (LakeError naming each city
    that is not completely committed)."""
    ledger = read_ledger(lake, cities)
    tables = {spec.name: read_table(lake, spec.name, cities) for spec in LAKE_TABLES}
    problems = verify_cities(ledger, tables, cities)
    if problems:
        raise LakeError("the lake is not complete for these cities: " + "; ".join(problems))
    return tables


def restore_into(con: duckdb.DuckDBPyConnection, tables: Mapping[str, pa.Table]) -> dict[str, int]:
    """Insert the lake's rows into a (fresh, migrated) local warehouse, by column name; {table: rows}."""
    counts = {}
    for name, rows in tables.items():
        data = rows.drop_columns([VERSION_COLUMN]) if VERSION_COLUMN in rows.column_names else rows
        view = f"lake_rows_{name}"
        con.register(view, data)
        try:
            con.execute(f"INSERT INTO {ident(name)} BY NAME SELECT * FROM {ident(view)}")
        finally:
            con.unregister(view)
        counts[name] = data.num_rows
    return counts


def lake_status(lake: Lake) -> list[dict[str, Any]]:
    """The ledger, one row per city (for `citykpi lake status`)."""
    return sorted(read_ledger(lake).values(), key=lambda r: r["city_id"])


def table_snapshots(lake: Lake, name: str) -> list[dict[str, Any]]:
    """A lake table's snapshots, oldest first: id, time, operation and the citykpi summary fields."""
    with lake.guarded(f"reading lake table {name}"):
        table = lake.table(name)
        out = []
        for snapshot in table.snapshots():
            summary = snapshot.summary
            extra = dict(summary.additional_properties) if summary is not None else {}
            out.append({"snapshot_id": snapshot.snapshot_id, "timestamp_ms": snapshot.timestamp_ms,
                        "operation": str(summary.operation.value) if summary is not None else None, **extra})
        return out
