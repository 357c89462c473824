"""Per-city pieces of a release (U4SSC workbooks, report page bodies, each city's lines of the NGSI-LD and
SDMX files) taken from the cache of earlier releases only when made from equal inputs (publish/pieces.py,
issue #16).

The writers run three ways on the two-city release of test_publish_multicity: without a cache, filling a
cache, and from the filled cache; the files must be byte-identical. Then one city-year's value changes:
exactly that city's pieces are made again, and the files equal those written without a cache.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from canonical.workers import WORKERS_ENV
from kpis.catalogue import load_catalogue
from publish import PublishContext, piece_starters
from publish import pieces as pieces_module
from publish.ngsi_ld import NAME as NGSI_LD_FILE
from publish.ngsi_ld import iter_entities, write_ngsi_ld
from publish.pieces import PieceCache
from publish.releases import load_release, publish_release, release_context
from publish.report_html import write_report_html
from publish.sdmx import COLUMNS as SDMX_COLUMNS
from publish.sdmx import NAME as SDMX_FILE
from publish.sdmx import sdmx_rows, write_sdmx_csv
from publish.textcells import escape_cell
from publish.u4ssc_workbook import write_u4ssc_workbooks
from tests.test_publish_multicity import two_city_home
from warehouse.home import Home

CITIES = ("demo-city", "twin-city")
YEARS = (2022, 2023, 2024)
# workbooks (one per city and year), then per city: its page body, its NGSI-LD lines, its SDMX lines
PIECES = len(CITIES) * len(YEARS) + 3 * len(CITIES)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    source = two_city_home(tmp_path_factory.getbasetemp())
    copy = Home(tmp_path_factory.mktemp("pieces") / "home")
    shutil.copytree(source.root, copy.root, symlinks=True)
    return copy


@pytest.fixture(scope="module")
def frame_and_context(home: Home) -> tuple[pl.DataFrame, PublishContext]:
    manifest = load_release(home, "latest").manifest
    with home.warehouse(read_only=True) as con:
        frame, context = release_context(con, home, cities=manifest["cities"],
                                         snapshots=manifest["input_snapshots"], quality=manifest["quality"])
    return frame, replace(context, release_id="20260101T000000Z-00000000", created_at="2026-01-01T00:00:00+00:00")


def _write(frame: pl.DataFrame, context: PublishContext, folder: Path) -> dict[str, str]:
    catalogue = load_catalogue()
    folder.mkdir()
    write_u4ssc_workbooks(frame, catalogue, context, folder)
    write_report_html(frame, catalogue, context, folder)
    write_ngsi_ld(frame, catalogue, context, folder)
    write_sdmx_csv(frame, catalogue, context, folder)
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_pieces_from_the_cache_are_byte_identical(frame_and_context: tuple[pl.DataFrame, PublishContext],
                                                  tmp_path: Path) -> None:
    frame, context = frame_and_context
    plain = _write(frame, replace(context, pieces=None), tmp_path / "plain")
    filling = PieceCache(tmp_path / "cache")
    filled = _write(frame, replace(context, pieces=filling), tmp_path / "filling")
    reading = PieceCache(tmp_path / "cache")
    read = _write(frame, replace(context, pieces=reading), tmp_path / "reading")

    assert (filling.made, filling.reused) == (PIECES, 0)
    assert (reading.made, reading.reused) == (0, PIECES)
    assert plain == filled == read
    assert {f"u4ssc/{c}-{y}.xlsx" for c in CITIES for y in YEARS} | {f"report/{c}.html" for c in CITIES} <= set(read)


def test_a_changed_city_year_is_made_again(frame_and_context: tuple[pl.DataFrame, PublishContext],
                                           tmp_path: Path) -> None:
    frame, context = frame_and_context
    _write(frame, replace(context, pieces=PieceCache(tmp_path / "cache")), tmp_path / "before")
    before = _write(frame, replace(context, pieces=None), tmp_path / "before-plain")

    target = (pl.col("city_id") == "twin-city") & (pl.col("year") == 2024) & (pl.col("status") == "computed")
    target = target & (pl.col("framework") == "u4ssc")  # in the workbook as well as on the page
    first = frame.filter(target).row(0, named=True)
    changed = frame.with_columns(
        pl.when(target & (pl.col("indicator_id") == first["indicator_id"])
                & pl.col("data_point").eq_missing(first["data_point"]))
        .then(pl.col("value") * 3 + 1).otherwise(pl.col("value")).alias("value"))
    cache = PieceCache(tmp_path / "cache")
    after = _write(changed, replace(context, pieces=cache), tmp_path / "after")
    plain = _write(changed, replace(context, pieces=None), tmp_path / "after-plain")

    # the workbook, the page and the city's NGSI-LD and SDMX lines
    assert (cache.made, cache.reused) == (4, PIECES - 4)
    assert after == plain
    changed_files = {path for path in after if after[path] != before.get(path)}
    # The overview compares the cities, so it changes too; the other city's files do not.
    assert changed_files == {"u4ssc/twin-city-2024.xlsx", "report/twin-city.html", "report.html", NGSI_LD_FILE,
                             SDMX_FILE}


def test_a_damaged_piece_is_made_again(frame_and_context: tuple[pl.DataFrame, PublishContext],
                                       tmp_path: Path) -> None:
    frame, context = frame_and_context
    expected = _write(frame, replace(context, pieces=PieceCache(tmp_path / "cache")), tmp_path / "first")
    stored = sorted(p for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert len(stored) == PIECES
    for path in stored[:3]:
        path.write_bytes(path.read_bytes()[:-40] + b"garbage")  # cut short, as a full disk might leave it
    cache = PieceCache(tmp_path / "cache")
    assert _write(frame, replace(context, pieces=cache), tmp_path / "second") == expected
    assert cache.made == 3


def test_a_release_keeps_only_the_pieces_it_used(home: Home) -> None:
    manifest = load_release(home, "latest").manifest
    with home.warehouse() as con:
        release = publish_release(con, home, cities=manifest["cities"], snapshots=manifest["input_snapshots"],
                                  run_id="pieces-test", extra={"quality": manifest["quality"]})
    stored = sorted(p for p in (home.cache / "publish").rglob("*") if p.is_file())
    assert len(stored) == PIECES
    stale = stored[0].parent / ("0" * 64)
    stale.write_bytes(b"an older piece of this city")
    with home.warehouse() as con:
        again = publish_release(con, home, cities=manifest["cities"], snapshots=manifest["input_snapshots"],
                                run_id="pieces-test-2", extra={"quality": manifest["quality"]})
    assert not stale.exists()
    assert again.manifest["content_sha256"] == release.manifest["content_sha256"]
    assert len([p for p in (home.cache / "publish").rglob("*") if p.is_file()]) == len(stored)


def test_pieces_made_in_worker_processes_are_the_same(frame_and_context: tuple[pl.DataFrame, PublishContext],
                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame, context = frame_and_context
    monkeypatch.setattr(pieces_module, "PARALLEL_MIN_PIECES", 2)  # the two-city release has 12 pieces
    monkeypatch.setenv(WORKERS_ENV, "0")
    inline = _write(frame, replace(context, pieces=PieceCache(tmp_path / "inline-cache")), tmp_path / "inline")
    monkeypatch.setenv(WORKERS_ENV, "2")
    cache = PieceCache(tmp_path / "cache")
    try:
        parallel = _write(frame, replace(context, pieces=cache), tmp_path / "parallel")
        assert cache._executor is not None  # the pieces were made in worker processes
        shared_dir = cache._shared_dir
        assert shared_dir is not None and len(list(shared_dir.iterdir())) == 1  # the catalogue, sent by file
    finally:
        cache.close()
    assert not shared_dir.exists()
    assert cache.made == PIECES
    assert parallel == inline
    # Handed to the workers before any file is written (as a release does): the writers take those results.
    cache = PieceCache(tmp_path / "ahead-cache")
    ahead_context = replace(context, pieces=cache)
    try:
        for start in piece_starters():
            start(frame, load_catalogue(), ahead_context)
        assert len(cache._ahead) == len(CITIES) * len(YEARS) + len(CITIES)  # the workbooks and page bodies
        assert _write(frame, ahead_context, tmp_path / "ahead") == inline
        assert not cache._ahead and not cache._paths  # every one taken
    finally:
        cache.close()
    assert cache.made == PIECES


class _Counted:
    """A big argument that counts how often the run's process pickles it."""

    pickled = 0

    def __init__(self) -> None:
        self.payload = bytes(range(256)) * 200  # 51 KB

    def __getstate__(self) -> dict[str, bytes]:
        type(self).pickled += 1
        return {"payload": self.payload}


def _piece(shared: _Counted, number: int) -> bytes:
    return hashlib.sha256(shared.payload + str(number).encode()).digest()


def test_an_argument_every_job_shares_is_pickled_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The indicator catalogue (200 KB pickled) went to the workers with each of a release's thousands of jobs."""
    from publish.pieces import PieceJob

    monkeypatch.setenv(WORKERS_ENV, "2")
    shared = _Counted()
    jobs = [PieceJob(f"city-{n}", (str(n),), _piece, (shared, n)) for n in range(12)]
    cache = PieceCache(tmp_path / "cache")
    try:
        made = cache.get_many("kind", jobs)
        assert cache._executor is not None
    finally:
        cache.close()
    assert made == [_piece(shared, n) for n in range(12)]
    assert _Counted.pickled == 1


def _logged_piece(log: str, number: int) -> bytes:
    """A piece that notes each time it is made (in whichever process) and fails for number 5 if asked to."""
    with open(log, "a") as out:
        out.write(f"{number}\n")
    if number == 5 and log.endswith("failing"):
        raise ValueError("piece 5 cannot be made")
    return str(number).encode()


def test_pieces_started_ahead_are_made_once_and_taken_by_get_many(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """PieceCache.start hands the missing pieces to the workers; get_many takes their results instead of making
    them again, and a piece that failed there is made again here, raising its error."""
    from publish.pieces import PieceJob

    monkeypatch.setenv(WORKERS_ENV, "2")
    log = tmp_path / "log"
    jobs = [PieceJob(f"city-{n}", (str(n),), _logged_piece, (str(log), n)) for n in range(12)]
    cache = PieceCache(tmp_path / "cache")
    try:
        assert cache.get_many("kind", jobs[:1]) == [b"0"]  # in the cache before the release starts
        cache.start("kind", jobs)
        assert len(cache._ahead) == 11
        started = list(cache._ahead.values())
        # The workers write them to the cache and send back no bytes (they wait on disk, not in memory). Some
        # finished before get_many asks: found in the cache, they are still counted as made by this release.
        assert [future.result() for future in started[:6]] == [None] * 6
        assert cache.get_many("kind", jobs) == [str(n).encode() for n in range(12)]
        assert [future.result() for future in started[6:]] == [None] * 5
        assert (cache.made, cache.reused) == (1 + 11, 1)  # piece 0 made before the start, then found
        assert not cache._ahead
    finally:
        cache.close()
    assert sorted(int(n) for n in log.read_text().split()) == list(range(12))  # each made once
    failing = tmp_path / "failing"
    jobs = [PieceJob(f"city-{n}", (str(n),), _logged_piece, (str(failing), n)) for n in range(12)]
    cache = PieceCache(tmp_path / "cache-2")
    try:
        cache.start("kind", jobs)
        with pytest.raises(ValueError, match="piece 5 cannot be made"):
            cache.get_many("kind", jobs)
    finally:
        cache.close()
    assert failing.read_text().split().count("5") == 2  # in a worker, then here


def test_a_citys_key_does_not_depend_on_other_cities_nulls() -> None:
    """A city's slice of a release-wide frame has the same key whether or not another city has a null in a
    column (Arrow IPC bytes differed: the slice kept a validity buffer, and one changed city made every
    other city's pieces again); equal values, equal key; other values, another key."""
    with_null = pl.DataFrame({"city_id": ["a", "b", "b"], "trend": [None, "up", "down"], "value": [None, 1.5, 2.0]})
    without = pl.DataFrame({"city_id": ["a", "b", "b"], "trend": ["flat", "up", "down"], "value": [0.5, 1.5, 2.0]})

    def slice_of(frame: pl.DataFrame, city: str) -> pl.DataFrame:
        return {key[0]: part for key, part in frame.partition_by("city_id", as_dict=True).items()}[city]

    key = pieces_module.piece_key
    b_with, b_without = slice_of(with_null, "b"), slice_of(without, "b")
    assert key("k", "salt", [b_with]) == key("k", "salt", [b_without])
    assert key("k", "salt", [b_with]) == key("k", "salt", [without.filter(pl.col("city_id") == "b")])
    changed = b_without.with_columns(pl.col("value") * 2)
    assert key("k", "salt", [changed]) != key("k", "salt", [b_without])
    assert key("k", "salt", [b_without.cast({"value": pl.Float32})]) != key("k", "salt", [b_without])


def test_all_city_files_from_city_pieces_equal_the_files_written_from_the_whole_frame(
        frame_and_context: tuple[pl.DataFrame, PublishContext], tmp_path: Path) -> None:
    """The NGSI-LD and SDMX files put together from per-city lines (made, then from the cache) hold the
    same bytes as writing every entity and row of the whole frame in order, as these writers did before."""
    import csv
    import io
    import json

    frame, context = frame_and_context
    catalogue = load_catalogue()
    entities = [json.dumps(e, ensure_ascii=False) for e in iter_entities(frame, catalogue, context)]
    assert len(entities) > 100 and len({json.loads(e)["organization"] for e in entities}) == len(CITIES)
    ngsi_ld = ("[\n" + ",\n".join(entities) + "\n]\n").encode("utf-8")
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(SDMX_COLUMNS)
    writer.writerows([escape_cell(v) for v in row] for row in sdmx_rows(frame))
    sdmx = text.getvalue().encode("utf-8")
    for name in ("made", "cached"):
        folder = tmp_path / name
        folder.mkdir()
        cache = PieceCache(tmp_path / "cache")
        write_ngsi_ld(frame, catalogue, replace(context, pieces=cache), folder)
        write_sdmx_csv(frame, catalogue, replace(context, pieces=cache), folder)
        assert (cache.made, cache.reused) == ((2 * len(CITIES), 0) if name == "made" else (0, 2 * len(CITIES)))
        assert (folder / NGSI_LD_FILE).read_bytes() == ngsi_ld
        assert (folder / SDMX_FILE).read_bytes() == sdmx
    empty = tmp_path / "none-computed"
    empty.mkdir()
    nothing = frame.with_columns(pl.lit("missing_input").alias("status"))
    write_ngsi_ld(nothing, catalogue, replace(context, pieces=None), empty)
    write_sdmx_csv(nothing, catalogue, replace(context, pieces=None), empty)
    assert (empty / NGSI_LD_FILE).read_bytes() == b"[]\n"
    assert (empty / SDMX_FILE).read_bytes() == (",".join(SDMX_COLUMNS) + "\n").encode()


@pytest.mark.parametrize("cities", [["a", "a", "b", "b", "b", "c"], ["a", "b", "a", "c", "b", "a"], []])
def test_split_by_equals_partition_by(cities: list[str]) -> None:
    """split_by (slices of a frame sorted by its keys, no copy) gives partition_by's parts in its order;
    a frame whose keys are apart is partitioned as partition_by does."""
    frame = pl.DataFrame({"city_id": cities, "year": [2020 + i % 2 for i in range(len(cities))],
                          "value": [float(i) if i % 3 else None for i in range(len(cities))]},
                         schema={"city_id": pl.String, "year": pl.Int64, "value": pl.Float64})
    for keys in (("city_id",), ("city_id", "year")):
        expected = frame.partition_by(*keys, as_dict=True, maintain_order=True)
        got = pieces_module.split_by(frame, *keys)
        assert list(got) == list(expected)
        for key, part in expected.items():
            assert got[key].equals(part)
            assert pieces_module.frame_bytes(got[key]) == pieces_module.frame_bytes(part)  # same piece keys
