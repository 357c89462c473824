"""How many worker processes a stage may start ($CITYKPI_WORKERS): one setting for every stage that
spreads work over processes (parsing sources while the warehouse is written, making release pieces)."""

from __future__ import annotations

import gc
import importlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from canonical.errors import CitykpiError

WORKERS_ENV = "CITYKPI_WORKERS"


def worker_processes(*, main_busy: bool) -> int:
    """$CITYKPI_WORKERS when set (0: none, everything in the run's own process); else the CPUs, less one
    when the run's own process works meanwhile (`main_busy`) rather than waiting for the workers."""
    text = os.environ.get(WORKERS_ENV)
    if text:
        try:
            return max(0, int(text))
        except ValueError:
            raise CitykpiError(f"${WORKERS_ENV} must be a whole number of worker processes, not {text!r}") from None
    cpus = os.cpu_count() or 1
    return max(0, cpus - 1) if main_busy else (cpus if cpus > 1 else 0)


def settle_heap(modules: Sequence[str] = ()) -> None:
    """Import `modules`, then move every object alive into the garbage collector's permanent generation
    (gc.freeze). A worker process's imports (Dagster, GX, polars, shapely...) are hundreds of thousands
    of long-lived objects; each full collection, which the tens of thousands of objects one city's work
    creates keep triggering, would walk them all again. Used as the workers' initializer and by the run's
    process once its configs and definitions are built. Only what is alive then is frozen: the garbage
    the work makes later is collected as before."""
    for name in modules:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: for building many long-lived objects at once (a run's configs),
    which are all alive until settle_heap freezes them. Each full collection meanwhile walked every config
    built so far: a third of loading 1,000 configs (docs/performance.md)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
