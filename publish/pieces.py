"""Per-city pieces of a release made again only when what they are made from changed (issue #16).

A release of many cities writes each city's U4SSC workbooks and report page, the slowest part of
publishing (XlsxWriter, Altair). Usually most cities did not change since the last release. Each piece
is kept in `<home>/cache/publish/<kind>/<city digest>/<key>`, where the key is the SHA-256 of
everything the piece is made from: its rows (each frame as uncompressed Parquet), the facts it prints,
and a salt of the code and libraries that write it (every file of the `publish` and `kpis` packages,
the versions of xlsxwriter, altair, polars and pyarrow). Equal key, equal bytes, so a release built
from cached pieces is byte-identical to one built without them (`tests/test_publish_pieces.py`).

After a release is in place, each city of that release keeps only the pieces it used (`prune`):
the cache holds about one release's worth of per-city pieces. A cache file is written to a temporary
name and renamed, so a killed run leaves no half-written piece, and ends with the SHA-256 of its bytes,
checked when read: a damaged or unreadable piece is made again.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import multiprocessing
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from canonical.code_digest import package_digest
from canonical.workers import settle_heap, worker_processes

Part = bytes | str | pl.DataFrame | None
T = TypeVar("T")

LIBRARIES = ("xlsxwriter", "altair", "polars", "pyarrow")
FOLDER = "publish"  # under <home>/cache/
PARALLEL_MIN_PIECES = 8  # fewer missing pieces: made in this process (starting workers costs about a second)
DIGEST_BYTES = 32  # each stored piece ends with the SHA-256 of its bytes, checked when read
SHARED_MIN_BYTES = 16_384  # an argument this big that several jobs share goes to the workers once, by file

# The modules whose piece makers run in the workers (imported there before the heap is settled).
PIECE_MODULES = ("publish.report.city", "publish.u4ssc_workbook", "publish.ngsi_ld", "publish.sdmx")


@cache
def code_salt() -> str:
    """The code that makes a piece (the publish and kpis packages) and the libraries' versions."""
    digest = hashlib.sha256(package_digest("publish", "kpis").encode())
    for library in LIBRARIES:
        try:
            digest.update(f"{library}=={version(library)}\n".encode())
        except PackageNotFoundError:
            digest.update(f"{library} missing\n".encode())
    return digest.hexdigest()


def frame_bytes(frame: pl.DataFrame) -> bytes:
    """A frame's schema and values as bytes: Parquet, uncompressed, no statistics. Not Arrow IPC: IPC
    writes the memory layout, and a city's slice of a release-wide frame carries a validity buffer
    whenever another city has a null in that column, so one city's change gave every other city
    new keys and all their pieces were made again (tests/test_publish_pieces.py)."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="uncompressed", statistics=False)
    return buffer.getvalue()


def piece_key(kind: str, salt: str, parts: Iterable[Part]) -> str:
    """SHA-256 of the kind, the salt and each part (length-prefixed, so parts never run into each other)."""
    digest = hashlib.sha256(f"{kind}\n{salt}\n".encode())
    for part in parts:
        if part is None:
            data, tag = b"", b"N"
        elif isinstance(part, pl.DataFrame):
            data, tag = frame_bytes(part), b"F"
        elif isinstance(part, str):
            data, tag = part.encode("utf-8"), b"S"
        else:
            data, tag = part, b"B"
        digest.update(tag + len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def _read_checked(path: Path) -> bytes | None:
    """A stored piece without its trailing SHA-256, None when missing or damaged (then it is made again)."""
    try:
        stored = path.read_bytes()
    except OSError:
        return None
    data, check = stored[:-DIGEST_BYTES], stored[-DIGEST_BYTES:]
    return data if len(stored) >= DIGEST_BYTES and hashlib.sha256(data).digest() == check else None


def _city_folder(city_id: str) -> str:
    # City ids are untrusted text: the folder name is a digest, never the id itself.
    return hashlib.sha256(city_id.encode("utf-8")).hexdigest()[:24]


def split_by(frame: pl.DataFrame, *keys: str) -> dict[tuple[Any, ...], pl.DataFrame]:
    """`frame.partition_by(*keys, as_dict=True)`: each key's rows in the frame's order, keys in order of first
    appearance. When each key's rows are contiguous (the release frames are sorted by city and year) the
    parts are slices of the frame, not copies: a release of 1,000 cities copied half a gigabyte per split."""
    if frame.is_empty():
        return {}
    runs = frame.select(pl.struct(list(keys)).rle().alias("run")).unnest("run")
    values = [tuple(value.values()) for value in runs["value"].to_list()]
    if len(set(values)) != len(values):  # some key's rows are apart: copied into their parts
        return frame.partition_by(*keys, as_dict=True, maintain_order=True)
    parts: dict[tuple[Any, ...], pl.DataFrame] = {}
    offset = 0
    for value, length in zip(values, runs["len"].to_list(), strict=True):
        parts[value] = frame.slice(offset, length)
        offset += length
    return parts


# The release columns the all-city files read from a computed value (publish/ngsi_ld.py, publish/sdmx.py).
OBSERVED_COLUMNS = ["city_id", "year", "framework", "indicator_id", "data_point", "value", "unit", "formula"]


@dataclass(frozen=True)
class CitySlice:
    """One city's computed values of a release (OBSERVED_COLUMNS) and the SHA-256 of their Parquet bytes."""

    city_id: str
    rows: pl.DataFrame
    digest: str


@dataclass(frozen=True)
class PieceJob:
    """One piece for `PieceCache.get_many`: `make(*args)` gives its bytes. `make` is a module-level function
    and `args` picklable values, so a worker process can make it."""

    city_id: str
    parts: Sequence[Part]
    make: Callable[..., bytes]
    args: tuple[Any, ...]


@dataclass(frozen=True)
class _SharedArgument:
    """Stands, in a job sent to a worker, for an argument many jobs share (the indicator catalogue, 200 KB
    pickled): it was pickled once into `path`, and each worker reads it once (`_make_shared`)."""

    path: str
    digest: str


_READ_SHARED: dict[str, object] = {}  # in a worker process: the shared arguments read so far, by digest


def _make_shared(make: Callable[..., bytes], *args: Any) -> bytes:
    """`make(*args)` in a worker, each _SharedArgument replaced by its value."""
    values = []
    for arg in args:
        if isinstance(arg, _SharedArgument):
            if arg.digest not in _READ_SHARED:
                if len(_READ_SHARED) >= 8:  # one release shares one or two; never grows with the run
                    _READ_SHARED.clear()
                # Written by the run's own process (PieceCache._write_shared) into a folder only it may write.
                data = Path(arg.path).read_bytes()
                if hashlib.sha256(data).hexdigest() != arg.digest:
                    raise RuntimeError(f"shared argument {arg.path} changed after it was written")
                _READ_SHARED[arg.digest] = pickle.loads(data)
            arg = _READ_SHARED[arg.digest]
        values.append(arg)
    return make(*values)


def _store_piece(path: Path, data: bytes) -> None:
    """Write a piece with its trailing SHA-256 under a temporary name, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".piece-", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data + hashlib.sha256(data).digest())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _make_kept(path: str | None, make: Callable[..., bytes], *args: Any) -> bytes | None:
    """In a worker: the piece made (`_make_shared`) and written to its cache file at `path`; returns None then,
    and the bytes only when there is no cache (`path` None). So the pieces a release starts early wait on
    disk, not in the run's memory (a 1,000-city release's page bodies are 400 MB)."""
    data = _make_shared(make, *args)
    if path is None:
        return data
    _store_piece(Path(path), data)
    return None


@dataclass
class PieceCache:
    """The cache of one release's pieces; `root` None makes every piece (no home, e.g. a writer's test)."""

    root: Path | None
    salt: str = field(default_factory=code_salt)
    used: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    made: int = 0
    reused: int = 0
    _catalogues: dict[int, tuple[object, str]] = field(default_factory=dict)
    _observed: tuple[pl.DataFrame, list[CitySlice]] | None = None
    _executor: ProcessPoolExecutor | None = None
    _shared_dir: Path | None = None
    _shared: dict[int, tuple[object, _SharedArgument | None]] = field(default_factory=dict)
    _plans: dict[str, tuple[pl.DataFrame, object]] = field(default_factory=dict)  # kind -> (frame, plan)
    _paths: dict[int, tuple[PieceJob, Path | None]] = field(default_factory=dict)  # by job id (job held)
    _ahead: dict[int, Future[bytes | None]] = field(default_factory=dict)  # by job id: submitted by `start`

    @classmethod
    def in_home_cache(cls, cache_dir: Path | None) -> PieceCache:
        return cls(None if cache_dir is None else cache_dir / FOLDER)

    def catalogue_digest(self, catalogue: Sequence[object]) -> str:
        """A digest of the indicator catalogue a writer was given (computed once per catalogue object)."""
        known = self._catalogues.get(id(catalogue))
        if known is None or known[0] is not catalogue:
            known = (catalogue, hashlib.sha256(repr(list(catalogue)).encode("utf-8")).hexdigest())
            self._catalogues[id(catalogue)] = known  # holding the object keeps its id from being reused
        return known[1]

    def observed_by_city(self, frame: pl.DataFrame) -> list[CitySlice]:
        """The release frame's computed values (`OBSERVED_COLUMNS`), one slice per city in the frame's order,
        each with the digest of its rows: what the all-city files (NGSI-LD, SDMX) are made of, hashed once
        for all of them (kept for the last frame asked about)."""
        if self._observed is None or self._observed[0] is not frame:
            observed = frame.filter(pl.col("status") == "computed", pl.col("value").is_not_null()
                                    ).select(OBSERVED_COLUMNS)
            slices = [CitySlice(str(key[0]), part, hashlib.sha256(frame_bytes(part)).hexdigest())
                      for key, part in observed.partition_by("city_id", as_dict=True, maintain_order=True).items()]
            self._observed = (frame, slices)
        return self._observed[1]

    def get(self, kind: str, city_id: str, parts: Iterable[Part], make: Callable[[], bytes]) -> bytes:
        """The piece's bytes: from the cache when a piece made from equal parts is there, else `make()` (kept)."""
        path, stored = self._found(self._path(kind, city_id, parts))
        if stored is not None:
            return stored
        data = make()
        self._keep(path, data)
        return data

    def planned(self, kind: str, frame: pl.DataFrame, plan: Callable[[], T]) -> T:
        """What `plan()` gives for the release `frame`, made once per kind: the writer of the kind's pieces and
        the release's start step (`publish.piece_starters`) share one plan, so its jobs and their keys are made
        once. A plan may read only the frame, the catalogue and what the context has before the id is known."""
        known = self._plans.get(kind)
        if known is None or known[0] is not frame:
            known = self._plans[kind] = (frame, plan())
        return known[1]  # type: ignore[return-value]

    def start(self, kind: str, jobs: Sequence[PieceJob]) -> None:
        """Submit the pieces of `jobs` not in the cache to the worker processes now: they are made while the
        run's process writes the files before the one that needs them, and `get_many` takes their results
        (at 1,000 cities the release's process waited 63 s for pieces while the workers had idled before)."""
        waiting: list[PieceJob] = []  # missing, not submitted yet: fewer than PARALLEL_MIN_PIECES so far
        pool, shared = None, {}
        for job in jobs:  # each submitted as soon as its key is known, so the workers start at once
            path = self._path(kind, job.city_id, job.parts)
            self._paths[id(job)] = (job, path)  # holding the job keeps its id
            if path is not None and path.is_file():
                continue
            waiting.append(job)
            if pool is None:
                if len(waiting) < PARALLEL_MIN_PIECES or (pool := self._pool()) is None:
                    continue
                shared = self._shared_args(jobs)
            for ready in waiting:
                self._ahead[id(ready)] = self._submit(pool, ready, self._paths[id(ready)][1], shared)
            waiting.clear()

    def get_many(self, kind: str, jobs: Sequence[PieceJob], *, local: bool = False) -> list[bytes]:
        """Each job's bytes, in order. The pieces not in the cache are made in worker processes when several
        are missing ($CITYKPI_WORKERS), or were submitted by `start`; a piece that fails there is made again
        here, raising its error. `local`: made in this process (pieces that take less time to make than to
        send to a worker)."""
        started = [self._ahead.pop(id(job), None) for job in jobs]  # a started piece found stored: its worker is done
        looked = [self._found(self._job_path(kind, job), made_here=future is not None)
                  for job, future in zip(jobs, started, strict=True)]
        missing = [i for i, (_, stored) in enumerate(looked) if stored is None]
        futures = {i: future for i in missing if (future := started[i]) is not None}
        rest = [i for i in missing if i not in futures]
        pool = self._pool() if len(rest) >= PARALLEL_MIN_PIECES and not local else None
        if pool is not None:
            shared = self._shared_args([jobs[i] for i in rest])
            futures.update({i: self._submit(pool, jobs[i], looked[i][0], shared) for i in rest})
        made: dict[int, bytes] = {}
        kept_there: set[int] = set()  # written to the cache by the worker
        for i, future in futures.items():
            with contextlib.suppress(Exception):  # made again below, where its error is raised as is
                result = future.result()
                path = looked[i][0]
                if result is not None:
                    made[i] = result
                elif path is not None and (stored := _read_checked(path)) is not None:
                    made[i] = stored
                    kept_there.add(i)
        out = []
        for i, (path, stored) in enumerate(looked):
            if stored is None:
                if i in kept_there:
                    self.made += 1
                    stored = made[i]
                else:
                    stored = made[i] if i in made else jobs[i].make(*jobs[i].args)
                    self._keep(path, stored)
            out.append(stored)
        return out

    def _shared_args(self, jobs: Sequence[PieceJob]) -> dict[int, _SharedArgument]:
        """By id: the objects that are an argument of several of `jobs` and pickle to SHARED_MIN_BYTES or more,
        each pickled once into a file; a worker gets the _SharedArgument instead of the object in every job."""
        counts: dict[int, int] = {}
        for job in jobs:
            for arg in job.args:
                counts[id(arg)] = counts.get(id(arg), 0) + 1
        out: dict[int, _SharedArgument] = {}
        for job in jobs:
            for arg in job.args:
                if counts[id(arg)] < 2 or arg is None or isinstance(arg, str | bytes | int | float):
                    continue
                known = self._shared.get(id(arg))
                if known is None or known[0] is not arg:
                    known = self._shared[id(arg)] = (arg, self._write_shared(arg))  # holding arg keeps its id
                if known[1] is not None:
                    out[id(arg)] = known[1]
        return out

    def _write_shared(self, arg: object) -> _SharedArgument | None:
        data = pickle.dumps(arg, protocol=pickle.HIGHEST_PROTOCOL)
        if len(data) < SHARED_MIN_BYTES:
            return None
        if self._shared_dir is None:
            self._shared_dir = Path(tempfile.mkdtemp(prefix="citykpi-shared-"))
        digest = hashlib.sha256(data).hexdigest()
        path = self._shared_dir / digest
        path.write_bytes(data)
        return _SharedArgument(str(path), digest)

    def _found(self, path: Path | None, *, made_here: bool = False) -> tuple[Path | None, bytes | None]:
        """The piece at `path`, counted as reused, or as made when this release's `start` made it (`made_here`:
        its worker wrote it before its writer asked; `start` submits only pieces not in the cache)."""
        stored = None if path is None else _read_checked(path)
        if stored is not None:
            if made_here:
                self.made += 1
            else:
                self.reused += 1
        return path, stored

    def _job_path(self, kind: str, job: PieceJob) -> Path | None:
        """_path of a job; that of a job `start` saw is computed there once (hashing a city's frames is most of
        a key's cost) and handed over here."""
        known = self._paths.pop(id(job), None)
        return known[1] if known is not None and known[0] is job else self._path(kind, job.city_id, job.parts)

    def _path(self, kind: str, city_id: str, parts: Iterable[Part]) -> Path | None:
        """Where the piece made from `parts` is kept (None without a cache), marked as used by this release."""
        if self.root is None:
            return None
        key = piece_key(kind, self.salt, parts)
        folder = self.root / kind / _city_folder(city_id)
        self.used.setdefault((kind, folder.name), set()).add(key)
        return folder / key

    def _keep(self, path: Path | None, data: bytes) -> None:
        self.made += 1
        if path is not None:
            _store_piece(path, data)

    def _submit(self, pool: ProcessPoolExecutor, job: PieceJob, path: Path | None,
                shared: dict[int, _SharedArgument]) -> Future[bytes | None]:
        return pool.submit(_make_kept, None if path is None else str(path), job.make,
                           *(shared.get(id(arg), arg) for arg in job.args))

    def _pool(self) -> ProcessPoolExecutor | None:
        if self._executor is None:
            workers = worker_processes(main_busy=False)
            if workers == 0:
                return None
            # spawn: the publishing process has DuckDB and Dagster threads, which a forked child must not inherit.
            self._executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=settle_heap, initargs=(PIECE_MODULES,))
        return self._executor

    def close(self) -> None:
        """Stop the worker processes, if any were started."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._shared_dir is not None:
            shutil.rmtree(self._shared_dir, ignore_errors=True)
            self._shared_dir = None
        self._shared.clear()
        self._ahead.clear()
        self._paths.clear()
        self._plans.clear()

    def prune(self) -> int:
        """Remove the pieces of this release's cities that this release did not use; how many were removed."""
        if self.root is None:
            return 0
        removed = 0
        for (kind, city_folder), keys in self.used.items():
            folder = self.root / kind / city_folder
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if path.name not in keys:  # an older piece, or a temporary file a killed run left
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed
