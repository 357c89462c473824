"""OrderedWork (pipelines/ordered_work.py): results come in submission order, the run's process makes
the calls no worker has started while it waits, and a call's error is raised at its turn."""

from __future__ import annotations

import gc
import operator
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from pipelines.ordered_work import OrderedWork


def test_results_in_order_with_calls_taken_over_while_the_only_worker_is_held(tmp_path: Path) -> None:
    fifo = tmp_path / "hold"
    os.mkfifo(fifo)
    with OrderedWork(1) as work:
        work.pool.submit(fifo.read_bytes)  # holds the worker until the FIFO is opened for writing
        futures = [work.submit(operator.add, i, 1) for i in range(6)]
        failing = work.submit(operator.truediv, 1, 0)
        after = work.submit(operator.mul, 3, 4)

        def release_when_taken_over() -> None:
            deadline = time.monotonic() + 600  # only against a hang: the condition is what is waited on
            while not any(f.cancelled() for f in futures) and time.monotonic() < deadline:  # one taken over
                time.sleep(0.02)
            with open(fifo, "wb"):
                pass

        releaser = threading.Thread(target=release_when_taken_over, daemon=True)
        releaser.start()
        assert [work.result(f) for f in futures] == [1, 2, 3, 4, 5, 6]
        releaser.join()
        assert any(f.cancelled() for f in futures)  # made in this process, not by the held worker
        with pytest.raises(ZeroDivisionError):
            work.result(failing)
        assert work.result(after) == 12
        assert not work._made_here and not work._queued  # nothing held past its turn


def _imported(name: str) -> bool:
    return name in sys.modules


def test_a_worker_imports_the_calls_modules_and_freezes_its_heap_before_the_first_call() -> None:
    """canonical.workers.settle_heap as the initializer: the collector's full passes skip what the imports made."""
    with OrderedWork(1, imports=("tests.test_ordered_work", "email.mime.text")) as work:
        # pool.submit, not work.submit: the run's process must not take these calls over.
        assert work.pool.submit(_imported, "email.mime.text").result()
        assert work.pool.submit(gc.get_freeze_count).result() > 1000


def test_the_collector_is_paused_only_inside_and_restored_after_an_error() -> None:
    from canonical.workers import collector_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("a config failed to load")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()
