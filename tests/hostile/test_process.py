"""The command as a process: a signal mid-run stops it cleanly in one line; a closed pipe is quiet."""

from __future__ import annotations

import fcntl
import os
import signal
import socketserver
import subprocess
import threading

import pytest
from conftest import REPO_ROOT, RUN_TIMEOUT, citykpi_command, subprocess_env

from hostile.conftest import Baseline


class _Hold(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received = threading.Event()
        self.release = threading.Event()


class _Handler(socketserver.BaseRequestHandler):
    server: _Hold

    def handle(self) -> None:
        self.request.recv(65536)
        self.server.received.set()     # the run is now known to be inside its fetch
        self.server.release.wait(60)   # and never answers


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_run_stops_cleanly_in_one_line(guard: Baseline, signum: int, code: int) -> None:
    server = _Hold()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host, port = server.server_address[:2]
        config = guard.city("held", [{"id": "data", "kind": "http", "location": f"http://{host}:{port}/pop.csv",
                                      "target": "observations", "http": {"timeout": 120, "attempts": 1},
                                      "observations": {"year_field": "year", "variables": {
                                          "value": {"variable": "population", "unit": "person"}}}}])
        proc = subprocess.Popen([*citykpi_command(), "--home", str(guard.home), "run", str(config)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=subprocess_env(guard.home), cwd=REPO_ROOT)
        assert server.received.wait(RUN_TIMEOUT), "the run never reached the server"
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
    assert proc.returncode == code, (stdout, stderr)
    lines = [line for line in stderr.splitlines() if not line.startswith("citykpi: running")]
    assert lines == [f"citykpi: interrupted ({signal.Signals(signum).name}); stopped cleanly: the lock is released "
                     "and nothing half-written was kept"], stderr
    with (guard.home / ".lock").open("a") as handle:  # the writer lock is free
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    guard.assert_unchanged(byte_identical=True)
    assert not list((guard.home / "raw" / "held").rglob("*.*"))  # no staged page kept


def test_a_closed_pipe_ends_quietly() -> None:
    """`citykpi variables | head`: the reader is gone before the output is written (deterministically:
    the read end is closed before the command starts), so every write meets a broken pipe."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([*citykpi_command(), "variables"], stdout=write_end, stderr=subprocess.PIPE,
                              env=subprocess_env(), cwd=REPO_ROOT, timeout=RUN_TIMEOUT)
    finally:
        os.close(write_end)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
