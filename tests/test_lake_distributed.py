"""Issue #16: past one machine. Workers in separate homes share only an Iceberg catalog (a real
PostgreSQL) and an object store (moto's S3 server on loopback); the lake they fill equals a
single-machine `citykpi run` of the same cities, and the release published from it equals that run's.

One test (the servers and the single-machine run are the expensive part, so every proof shares them):

1. 16 small demo cities (3 reporting years, observations from 2019); one `citykpi run` of all of them
   in its own home, at the same time as four `citykpi lake work` processes with their own homes, four
   cities each. w4 is SIGKILLed as soon as the catalog shows it committed its observations (the
   catalog's row for the table polled, no fixed sleep).
2. Nothing w4 committed is lost (the lake's observations of its cities are its rows), the ledger says
   its commit did not finish and a reader refuses those cities; the same command run again completes.
3. Two processes committing the same city-years at the same time (`lake commit --force` of city 13
   from the single machine's home and from w4's, each its own run) leave exactly one version of its
   rows.
4. Every lake table equals the single-machine warehouse row for row (without run ids, timestamps and
   local paths); recommitting unchanged cities makes no new snapshot.
5. `citykpi lake publish` in a fresh home writes a release whose data files equal the single-machine
   release's (same content hash, same bytes per data file), copied to the object store (manifest
   last, `latest` after it).
6. The object store's keys appear in no output, no file of the homes, no metadata or manifest file of
   the lake and no row of the catalog.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from conftest import RUN_TIMEOUT, citykpi_command, subprocess_env
from services import postgres_binaries, postgres_server, s3_server

pytestmark = pytest.mark.slow

CITY_COUNT = 16
SCALE = 0.1
WORKERS = {"w1": [1, 2, 3, 4], "w2": [5, 6, 7, 8], "w3": [9, 10, 11, 12], "w4": [13, 14, 15, 16]}
KILLED = "w4"   # SIGKILLed after its first data commit, then run again
SHARED = 13     # the city two processes commit at the same time
# A check's sample and GX text describe history (sources.rows_present names the previous run's row counts,
# so a worker that ran twice words it differently): quality results are compared by their verdicts.
VERDICT_COLUMNS = {"quality_results": ["city_id", "table_name", "check_name", "severity", "status",
                                       "failing_count", "evaluated_count"]}
DATA_ROLES = {"kpi_values_parquet", "kpi_values_csv", "datapackage", "sdmx_csv", "open_sdg", "ngsi_ld",
              "u4ssc_workbook", "scores", "rollups", "progress"}


GNU_TIME = Path("/usr/bin/time")


def city(n: int) -> str:
    return f"demo-city-{n:04d}"


def _missing() -> str | None:
    if postgres_binaries() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not installed"
    for module, extra in (("pyiceberg", "pyiceberg[sql-postgres,pyarrow]"), ("psycopg2", "psycopg2-binary"),
                          ("moto", "moto[server]"), ("boto3", "moto[server]")):
        if importlib.util.find_spec(module) is None:
            return f"{module} not installed (pip install -e '.[dev]' or {extra!r})"
    return None


class Proc:
    """A citykpi subprocess writing its output to files."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.out, self.err = logs / f"{name}.out", logs / f"{name}.err"
        with self.out.open("w") as out, self.err.open("w") as err:
            # GNU time, where there is one, records each process's cpu seconds (printed at the end).
            timer = ["/usr/bin/time", "-f", "%U %S %e", "-o", str(logs / f"{name}.time")] if GNU_TIME.exists() else []
            # Its own process group: a kill reaches citykpi, not only the timer around it.
            self.popen = subprocess.Popen([*timer, *citykpi_command(), *args], stdout=out, stderr=err, env=env,
                                          text=True, start_new_session=True)

    def kill(self) -> None:
        """SIGKILL, no clean-up: the process and its timer (its process group)."""
        os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=60)

    def wait(self) -> str:
        self.popen.wait(timeout=RUN_TIMEOUT)
        assert self.popen.returncode == 0, f"{self.name} -> {self.popen.returncode}\n{self.output()}"
        return self.out.read_text()

    def output(self) -> str:
        return f"--- stdout ---\n{self.out.read_text()}\n--- stderr ---\n{self.err.read_text()[-4000:]}"


def comparable(con: duckdb.DuckDBPyConnection, rows: Any, name: str, columns: list[str] | None) -> str:
    """A view of `rows` (Arrow) without the lake version and the volatile columns (or only `columns`)."""
    from warehouse.lake import VERSION_COLUMN, VOLATILE_COLUMNS

    keep = columns or [c for c in rows.column_names if c not in VOLATILE_COLUMNS and c != VERSION_COLUMN]
    con.register(name, rows.select(keep))
    return name


def assert_same_rows(left: Any, right: Any, what: str, columns: list[str] | None = None) -> None:
    con = duckdb.connect()
    a, b = comparable(con, left, "a", columns), comparable(con, right, "b", columns)
    only_a = con.sql(f"SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}").fetchall()
    only_b = con.sql(f"SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a}").fetchall()
    assert (left.num_rows, len(only_a), len(only_b)) == (right.num_rows, 0, 0), \
        (f"{what}: {left.num_rows} vs {right.num_rows} rows; only in the first: {str(only_a[:2])[:1500]}; "
         f"only in the second: {str(only_b[:2])[:1500]}")


def snapshot_counts(lake: Any) -> dict[str, int]:
    from warehouse.lake import LEDGER, TABLE_NAMES, table_snapshots

    return {name: len(table_snapshots(lake, name)) for name in (*TABLE_NAMES, LEDGER)}


def compare_with_single(lake: Any, single_home: Path, cities: list[str]) -> None:
    """Every lake table's rows of these cities equal the single-machine warehouse's."""
    from warehouse.lake import extract_city, read_cities

    lake_tables = read_cities(lake, cities)
    with duckdb.connect(str(single_home / "warehouse.duckdb"), read_only=True) as con:
        extracts = [extract_city(con, c) for c in cities]
    for name, rows in lake_tables.items():
        assert rows.num_rows > 0, name
        assert_same_rows(rows, pa.concat_tables([e.rows[name] for e in extracts]),
                         f"lake table {name} vs the single-machine warehouse ({len(cities)} cities)",
                         VERDICT_COLUMNS.get(name))


def test_workers_fill_a_shared_lake_equal_to_one_machine(tmp_path: Path) -> None:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from warehouse.lake import LakeError, LakeSettings, extract_city, open_lake, read_cities, read_ledger, read_table
    from warehouse.lake import table_snapshots as snapshots_of

    started = time.monotonic()
    logs = tmp_path / "logs"
    logs.mkdir()
    cities_dir = tmp_path / "cities"
    gen = Proc("demo", ["--home", str(tmp_path / "gen"), "demo", "--cities", str(CITY_COUNT), "--scale", str(SCALE),
                        "--out", str(cities_dir)], subprocess_env(tmp_path / "gen"), logs)

    with postgres_server() as pg, s3_server("lake", "releases") as s3:
        lake_env = {"CITYKPI_LAKE_CATALOG_URI": pg.sqlalchemy_url(), "CITYKPI_LAKE_WAREHOUSE": "s3://lake/warehouse",
                    **s3.env()}
        settings = LakeSettings.from_env(lake_env)
        lake = open_lake(settings, worker="test")

        def env(home: Path, worker: str = "") -> dict[str, str]:
            return subprocess_env(home, **lake_env, CITYKPI_LAKE_WORKER=worker or home.name)

        gen.wait()
        # 1. One machine (it needs no lake: started first) ...
        single_home = tmp_path / "single"
        single = Proc("single", ["--home", str(single_home), "run", str(cities_dir)], env(single_home), logs)
        timings: dict[str, float] = {"setup": time.monotonic() - started}

        def config_args(numbers: list[int]) -> list[str]:
            return [str(cities_dir / city(n) / "city.yaml") for n in numbers]

        # ... and four workers at the same time; w4 is killed after its first data commit.
        homes = {name: tmp_path / name for name in WORKERS}
        work_args = {name: ["--home", str(homes[name]), "lake", "work", *config_args(numbers), "--json"]
                     for name, numbers in WORKERS.items()}
        workers = {name: Proc(name, work_args[name], env(homes[name]), logs) for name in WORKERS}
        # `lake init` races the workers, which create the tables too: whoever comes first, all succeed.
        init = Proc("init", ["lake", "init"], env(tmp_path / "init"), logs)
        victim = workers.pop(KILLED)
        victim_cities = [city(n) for n in WORKERS[KILLED]]

        # Poll the catalog: its row for the observations table names the table's current metadata; each
        # time that changes, look at the new snapshots for one committed by the victim.
        import sqlalchemy

        engine = sqlalchemy.create_engine(pg.sqlalchemy_url())
        seen = None
        while True:
            assert victim.popen.poll() is None, f"{KILLED} ended before the kill\n{victim.output()}"
            with engine.connect() as db:
                current = db.execute(sqlalchemy.text(
                    "SELECT metadata_location FROM iceberg_tables WHERE table_namespace = :ns AND table_name = :t"),
                    {"ns": settings.namespace, "t": "observations"}).scalar()
            if current != seen:
                seen = current
                if any(s.get("citykpi.worker") == KILLED for s in snapshots_of(lake, "observations")):
                    break
            time.sleep(0.05)
        victim.kill()
        engine.dispose()
        timings["victim_killed"] = time.monotonic() - started

        # 2. Nothing it committed is lost; the ledger and the reader know its commit is incomplete.
        ledger = read_ledger(lake, victim_cities)
        assert {ledger[c]["state"] for c in victim_cities} == {"writing"}, \
            f"{KILLED} finished its commit before the kill reached it\n{victim.output()}"
        with duckdb.connect(str(homes[KILLED] / "warehouse.duckdb"), read_only=True) as con:
            local = [extract_city(con, c) for c in victim_cities]
        lake_obs = read_table(lake, "observations", victim_cities)
        assert set(lake_obs["lake_version"].to_pylist()) == {e.version for e in local}
        assert_same_rows(lake_obs, pa.concat_tables([e.rows["observations"] for e in local]),
                         f"observations of {KILLED}'s cities after the kill")
        with pytest.raises(LakeError, match="did not finish"):
            read_cities(lake, victim_cities)
        rerun = Proc(f"{KILLED}-rerun", work_args[KILLED], env(homes[KILLED]), logs)

        init.wait()
        outputs = {name: json.loads(p.wait().strip().splitlines()[-1]) for name, p in workers.items()}
        outputs[f"{KILLED}-rerun"] = json.loads(rerun.wait().strip().splitlines()[-1])
        assert {r["state"] for r in read_ledger(lake, victim_cities).values()} == {"committed"}
        single.wait()
        timings["workers_and_single"] = time.monotonic() - started

        # 3. Two workers commit the same city-years at once (the single machine's home and w4's, each
        # with its own run of the city): one version of its rows remains.
        shared = city(SHARED)
        twin_homes = {"single": single_home, KILLED: homes[KILLED]}
        versions = set()
        for home in twin_homes.values():   # equal rows and verdicts, other runs (w4's home ran twice)
            with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
                versions.add(extract_city(con, shared).version)
        assert len(versions) == 1
        twins = [Proc(f"twin-{name}", ["--home", str(home), "lake", "commit", shared, "--force", "--json"],
                      env(home, f"twin-{name}"), logs) for name, home in twin_homes.items()]

        # 4 (while the twins commit): the lake equals the single-machine warehouse, table by table, row
        # for row, for every other city (the shared one below, once the twins are done).
        all_cities = [city(n) for n in range(1, CITY_COUNT + 1)]
        compare_with_single(lake, single_home, [c for c in all_cities if c != shared])

        twin_reports = [json.loads(p.wait().strip().splitlines()[-1]) for p in twins]
        assert all(r["written"] == [shared] for r in twin_reports)
        ledger = read_ledger(lake, [shared])[shared]
        assert ledger["state"] == "committed" and {ledger["lake_version"]} == versions
        tables = read_cities(lake, [shared])   # every table: exactly the committed version's rows
        for name, rows in tables.items():
            assert set(rows["lake_version"].to_pylist()) <= {ledger["lake_version"]}, name
        values = tables["kpi_values"]
        assert len(set(values["run_id"].to_pylist())) == 1, "two runs' rows of one city"
        for home in twin_homes.values():
            with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
                expected = con.execute("SELECT count(*) FROM kpi_values WHERE city_id = ?", [shared]).fetchall()
            assert values.num_rows == expected[0][0]
        timings["twin_commits"] = time.monotonic() - started

        # 5 (started now, checked below): the release from the lake, written while the test compares tables.
        publisher = tmp_path / "publisher"
        publishing = Proc("publish", ["--home", str(publisher), "lake", "publish", str(cities_dir), "--to",
                                      "s3://releases/citykpi"], env(publisher), logs)

        # 4 (the rest): the shared city equals the single machine's too.
        compare_with_single(lake, single_home, [shared])
        # Same rows, same versions: recommitting changes nothing (no new snapshot anywhere).
        before = snapshot_counts(lake)
        from pipelines.lake_run import commit
        from warehouse.home import Home

        again = commit(Home(homes["w2"]), lake, [city(n) for n in WORKERS["w2"]])   # w2's commit, again
        assert again.skipped == [city(n) for n in WORKERS["w2"]] and again.commits == 0
        assert snapshot_counts(lake) == before
        timings["equality"] = time.monotonic() - started

        # 5. The release from the lake equals the single-machine release's data files.
        publishing.wait()
        timings["publish"] = time.monotonic() - started
        single_manifest = json.loads((single_home / "releases" / "latest" / "manifest.json").read_text())
        lake_manifest = json.loads((publisher / "releases" / "latest" / "manifest.json").read_text())
        assert lake_manifest["content_sha256"] == single_manifest["content_sha256"]
        data_files = {f["path"]: f["sha256"] for f in single_manifest["files"] if f["role"] in DATA_ROLES}
        assert len(data_files) > 10
        assert data_files == {f["path"]: f["sha256"] for f in lake_manifest["files"] if f["role"] in DATA_ROLES}
        assert {c["id"] for c in lake_manifest["cities"]} == set(all_cities)
        from warehouse.objectstore import get_bytes, location

        store = location("s3://releases/citykpi", {**os.environ, **lake_env})
        release_id = lake_manifest["release_id"]
        assert json.loads(get_bytes(store, f"{release_id}/manifest.json") or b"{}") == lake_manifest
        assert (get_bytes(store, "latest") or b"").decode().strip() == release_id
        assert get_bytes(store, f"{release_id}/kpi_values.parquet") == \
            (publisher / "releases" / release_id / "kpi_values.parquet").read_bytes()

        # 6 (the shared side): no secret in the lake's metadata files nor in the catalog's rows.
        import boto3
        import sqlalchemy

        client = boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id=s3.access_key,
                              aws_secret_access_key=s3.secret_key, region_name=s3.region)
        keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket="lake")
                for o in page.get("Contents", []) if not o["Key"].endswith(".parquet")]
        assert any(k.endswith(".metadata.json") for k in keys) and any(k.endswith(".avro") for k in keys)
        for key in keys:
            body = client.get_object(Bucket="lake", Key=key)["Body"].read()
            assert s3.secret_key.encode() not in body and s3.access_key.encode() not in body, key
        engine = sqlalchemy.create_engine(pg.sqlalchemy_url())
        with engine.connect() as db:
            for table in ("iceberg_tables", "iceberg_namespace_properties"):
                rows = db.execute(sqlalchemy.text(f"SELECT * FROM {table}")).fetchall()
                assert s3.secret_key not in repr(rows) and s3.access_key not in repr(rows), table
        engine.dispose()

    # 6. No secret in any output or in the files the processes wrote (the catalog has no password here:
    # trust authentication; the object store's secret key stands for every secret).
    secret = s3.secret_key.encode()
    for log in logs.iterdir():
        assert secret not in log.read_bytes(), f"the secret key appears in {log.name}"
    for home in [*homes.values(), publisher]:
        for path in home.rglob("*"):
            if path.is_file() and path.suffix not in (".parquet", ".zip", ".xlsx") and path.stat().st_size < 50e6:
                assert secret not in path.read_bytes(), f"the secret key appears in {path}"

    retries = sum(int(o["retries"]) for o in [*outputs.values(), *twin_reports])
    commits = sum(int(o["commits"]) for o in [*outputs.values(), *twin_reports])
    print(f"\nlake test: {json.dumps({k: round(v, 1) for k, v in timings.items()})}; "
          f"{commits} commits, {retries} retries; twins {[r['retries'] for r in twin_reports]} retries; "
          f"total {time.monotonic() - started:.1f} s")
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = {"test process (S3 server, reads)": usage.ru_utime + usage.ru_stime}
    for path in sorted(logs.glob("*.time")):
        fields = (path.read_text().strip().splitlines() or [""])[-1].split()
        if len(fields) == 3 and all(f.replace(".", "").isdigit() for f in fields):
            cpu[path.stem] = float(fields[0]) + float(fields[1])
    print("cpu seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()) + f"; sum {sum(cpu.values()):.1f}")
