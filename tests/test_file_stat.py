"""sources/file_stat.py: a local source file is not hashed again while its stat is unchanged, and every
kind of change (new bytes with the old modification time, a replaced file, a write in the stat's own
tick) is hashed again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import sources.landing
from sources import file_stat
from sources.config import LoadedConfig
from sources.fetch import fetch_source
from tests.test_landing import make_city

ORIGINAL = b"Jahr,Einwohner\n2023,100\n"  # what make_city writes


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file the landing zone hashes, in order."""
    seen: list[Path] = []
    real = sources.landing.sha256_file

    def counting(path: Path) -> str:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(sources.landing, "sha256_file", counting)
    return seen


@pytest.fixture
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust a stat as soon as its moment has passed (the real window is 3 s; tests need not sleep)."""
    monkeypatch.setattr(file_stat, "RACY_NS", 0)


def fetch(loaded: LoadedConfig, home: Path) -> sources.landing.Snapshot:
    return fetch_source(loaded, loaded.config.sources[0], home / "raw", home)


@pytest.mark.usefixtures("no_racy_window")
def test_unchanged_file_is_not_read_again(tmp_path: Path, hashes: list[Path]) -> None:
    loaded, home = make_city(tmp_path), tmp_path / "home"
    first = fetch(loaded, home)
    assert len(hashes) == 1
    again = fetch(loaded, home)
    assert len(hashes) == 1  # not hashed again
    assert (again.snapshot_id, again.content_sha256, again.path, again.new) == (
        first.snapshot_id, first.content_sha256, first.path, False)
    assert (home / "raw" / "test-city" / "stats" / "CURRENT").read_text().strip() == first.content_sha256


@pytest.mark.usefixtures("no_racy_window")
def test_new_bytes_with_the_old_size_and_modification_time_are_hashed(tmp_path: Path, hashes: list[Path]) -> None:
    loaded, home = make_city(tmp_path), tmp_path / "home"
    data = tmp_path / "city" / "stats.csv"
    first = fetch(loaded, home)
    before = data.stat()
    data.write_bytes(b"Jahr,Einwohner\n2023,999\n")  # same size
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))  # the old modification time, as cp -p would
    assert (data.stat().st_size, data.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    changed = fetch(loaded, home)
    assert len(hashes) == 2
    assert changed.new and changed.content_sha256 != first.content_sha256
    assert changed.path.read_bytes() == b"Jahr,Einwohner\n2023,999\n"


@pytest.mark.usefixtures("no_racy_window")
def test_a_replaced_file_is_hashed_and_a_reverted_one_finds_its_snapshot(tmp_path: Path, hashes: list[Path]) -> None:
    loaded, home = make_city(tmp_path), tmp_path / "home"
    data = tmp_path / "city" / "stats.csv"
    first = fetch(loaded, home)
    other = tmp_path / "city" / "stats.new"
    other.write_bytes(b"Jahr,Einwohner\n2023,555\n")
    os.replace(other, data)  # a new inode, as editors and downloads do
    second = fetch(loaded, home)
    assert second.new and second.content_sha256 != first.content_sha256
    data.unlink()
    data.write_bytes(ORIGINAL)
    back = fetch(loaded, home)
    assert len(hashes) == 3
    assert (back.snapshot_id, back.new) == (first.snapshot_id, False)


def test_a_file_stat_taken_in_its_write_tick_is_not_trusted(tmp_path: Path, hashes: list[Path]) -> None:
    """With the real window, a file written just now may still change within its timestamp tick unseen:
    the next run hashes it again."""
    loaded, home = make_city(tmp_path), tmp_path / "home"
    fetch(loaded, home)
    fetch(loaded, home)
    assert len(hashes) == 2


@pytest.mark.usefixtures("no_racy_window")
@pytest.mark.parametrize("record", ["{not json", json.dumps({"files": [], "taken_ns": 1, "content_sha256": "ab"}),
                                    json.dumps({"files": "x"}), ""])
def test_a_broken_record_means_hashing(tmp_path: Path, hashes: list[Path], record: str) -> None:
    loaded, home = make_city(tmp_path), tmp_path / "home"
    first = fetch(loaded, home)
    (home / "raw" / "test-city" / "stats" / file_stat.RECORD).write_text(record, encoding="utf-8")
    again = fetch(loaded, home)
    assert len(hashes) == 2 and again.snapshot_id == first.snapshot_id


@pytest.mark.usefixtures("no_racy_window")
def test_a_record_naming_a_missing_or_foreign_snapshot_means_hashing(tmp_path: Path, hashes: list[Path]) -> None:
    loaded, home = make_city(tmp_path), tmp_path / "home"
    first = fetch(loaded, home)
    record_path = home / "raw" / "test-city" / "stats" / file_stat.RECORD
    record = json.loads(record_path.read_text(encoding="utf-8"))
    for sha in ["0" * 64, "../../other-city/stats/" + first.content_sha256]:
        record_path.write_text(json.dumps({**record, "content_sha256": sha}), encoding="utf-8")
        again = fetch(loaded, home)
        assert again.snapshot_id == first.snapshot_id
    assert len(hashes) == 3
