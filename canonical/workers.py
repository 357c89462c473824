"""How many worker processes a stage may start ($CITYKPI_WORKERS): one setting for every stage that
spreads work over processes (parsing sources while the warehouse is written, making release pieces)."""

from __future__ import annotations

import os

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
