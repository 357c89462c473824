"""Throwaway servers for integration tests, on loopback only: PostgreSQL (initdb in a temporary
folder) and an S3-compatible object store (moto's threaded server). Each is a context manager that
stops its server and removes its files; a test skips with the reason when a server cannot be had.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def postgres_binaries() -> tuple[str, str] | None:
    """(initdb, pg_ctl) when the PostgreSQL server binaries are on PATH."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    return (initdb, pg_ctl) if initdb and pg_ctl else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str = "postgres"
    database: str = "postgres"

    def sqlalchemy_url(self, driver: str = "psycopg2") -> str:
        return f"postgresql+{driver}://{self.user}@{self.host}:{self.port}/{self.database}"


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    """A PostgreSQL server on 127.0.0.1 with trust authentication (run as `nobody` when the tests run
    as root, which PostgreSQL refuses). The caller checks `postgres_binaries()` first."""
    binaries = postgres_binaries()
    if binaries is None:
        raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not installed")
    initdb, pg_ctl = binaries
    # Outside pytest's tmp (mode 700): the server user must reach its data folder.
    data = Path(tempfile.mkdtemp(prefix="citykpi-pg-"))
    data.chmod(0o755)
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(data, "nobody")
        prefix = ["runuser", "-u", "nobody", "--"]
    port = free_port()
    subprocess.run([*prefix, initdb, "-D", str(data / "db"), "-A", "trust", "-U", "postgres"], check=True,
                   capture_output=True)
    subprocess.run([*prefix, pg_ctl, "-D", str(data / "db"), "-l", str(data / "log"), "-w", "start", "-o",
                    f"-p {port} -k {data} -c listen_addresses=127.0.0.1"], check=True, capture_output=True)
    try:
        yield Postgres("127.0.0.1", port)
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data / "db"), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


@dataclass(frozen=True)
class ObjectStore:
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def env(self) -> dict[str, str]:
        """The environment variables a citykpi process reads for the object store."""
        return {"CITYKPI_LAKE_S3_ENDPOINT": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_REGION": self.region}


@contextmanager
def s3_server(*buckets: str) -> Iterator[ObjectStore]:
    """moto's S3 server in a thread on a free loopback port, with these buckets created."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    store = ObjectStore(f"http://127.0.0.1:{port}", "citykpi-test-key", "citykpi-test-secret-0123456789")
    try:
        client = boto3.client("s3", endpoint_url=store.endpoint, aws_access_key_id=store.access_key,
                              aws_secret_access_key=store.secret_key, region_name=store.region)
        for bucket in buckets:
            client.create_bucket(Bucket=bucket)
        yield store
    finally:
        server.stop()
