"""Calls of pure functions in worker processes, whose results the run's process takes in the order it
submitted them (issue #16: the per-city stages of many cities on every core).

While the result it takes next is not ready, the run's process does not wait idle: it takes over the
first submitted call no worker has started (cancelling its future) and makes it itself. With one
worker on two cores both cores work until the last city.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from canonical.workers import settle_heap

T = TypeVar("T")
Call = tuple[Callable[..., Any], tuple[Any, ...]]


class OrderedWork:
    def __init__(self, workers: int, imports: Sequence[str] = ()) -> None:
        """`imports`: the modules of the calls to come, imported by each worker before its heap is settled
        (canonical.workers.settle_heap)."""
        # spawn: the run's process has DuckDB and Dagster threads, which a forked child must not inherit.
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=settle_heap, initargs=(tuple(imports),))
        # Submitted calls in submission order (the order the workers take them), and the outcomes of those
        # this process took over: (True, result) or (False, the exception raised).
        self._queued: collections.deque[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = collections.deque()
        self._made_here: dict[Future[Any], tuple[bool, Any]] = {}

    def __enter__(self) -> OrderedWork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """`fn` must be importable by a worker (a module-level function) and its arguments picklable."""
        future = self.pool.submit(fn, *args)
        self._queued.append((future, fn, args))
        return future

    def result(self, future: Future[Any]) -> Any:
        """The call's result, or the exception it raised, raised here."""
        while not future.done() and self._take_one_over():
            pass
        # Calls already finished leave the queue, so it holds no result past its turn.
        while self._queued and self._queued[0][0].done():
            self._queued.popleft()
        if future in self._made_here:
            made, value = self._made_here.pop(future)
            if not made:
                raise value
            return value
        return future.result()

    def _take_one_over(self) -> bool:
        """Make the first submitted call no worker has started here; False when there is none."""
        while self._queued:
            future, fn, args = self._queued.popleft()
            if future.cancel():  # only a call no worker has taken can be cancelled
                try:
                    self._made_here[future] = (True, fn(*args))
                except Exception as exc:  # raised at the call's turn, as a worker's would be
                    self._made_here[future] = (False, exc)
                return True
        return False


def results_in_order(work: OrderedWork | None, entries: Sequence[T], call: Callable[[T], Call | None],
                     ahead: int) -> Iterator[Any]:
    """For each entry, in order: the result of the call `call(entry)` names (a function and its arguments,
    read in this process when the entry is submitted, up to `ahead` entries before its turn), made by the
    workers. None where there is no pool, the pool broke, `call` gave None or the call raised: the caller
    then does that entry itself, where its error is raised as one entry at a time would raise it."""
    submitted: collections.deque[Future[Any] | None] = collections.deque()
    upcoming = iter(entries)
    for _ in entries:
        while work is not None and len(submitted) < ahead:
            entry = next(upcoming, None)
            if entry is None:
                break
            named = call(entry)
            future = None
            if named is not None:
                with contextlib.suppress(BrokenProcessPool):  # a lost worker: made by the caller
                    future = work.submit(named[0], *named[1])
            submitted.append(future)
        future = submitted.popleft() if work is not None else None
        result = None
        if work is not None and future is not None:
            with contextlib.suppress(Exception):
                result = work.result(future)
        yield result
