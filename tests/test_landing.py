"""sources.landing and sources.fetch: an immutable, content-addressed landing zone with a CURRENT pointer."""

from __future__ import annotations

import hashlib
import json
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from canonical.errors import FetchError
from sources.config import LoadedConfig, load_city_config
from sources.fetch import POINTER, current_snapshot, fetch_source
from sources.landing import Snapshot, land_file, latest_snapshot


def land(home: Path, payload: Path, **overrides: Any) -> Snapshot:
    args: dict[str, Any] = {"city_id": "test-city", "source_id": "stats", "kind": "file",
                            "location": payload.name, "fmt": "csv", "payload": payload,
                            "filename": payload.name, "request": {"path": str(payload)}}
    args.update(overrides)
    return land_file(home / "raw", home, **args)


def tree_state(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Relative path -> (mtime_ns, inode, bytes) of every file under root."""
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_ino, p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file()}


def hidden_entries(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*")]


def test_land_file_writes_payload_and_meta(tmp_path: Path) -> None:
    home = tmp_path / "home"
    payload = tmp_path / "stats.csv"
    payload.write_bytes(b"Jahr,Wert\n2023,1\n")
    sha = hashlib.sha256(payload.read_bytes()).hexdigest()
    snap = land(home, payload)
    assert snap.new is True
    assert snap.content_sha256 == sha
    assert snap.size_bytes == payload.stat().st_size
    assert snap.snapshot_id == f"test-city/stats/{sha[:16]}"
    assert snap.path == home / "raw" / "test-city" / "stats" / sha / "stats.csv"
    assert snap.relative_path == f"raw/test-city/stats/{sha}/stats.csv"
    assert snap.path.read_bytes() == payload.read_bytes()
    meta = json.loads((snap.path.parent / "meta.json").read_text(encoding="utf-8"))
    assert meta["content_sha256"] == sha
    assert meta["filename"] == "stats.csv"
    assert meta["request"] == {"path": str(payload)}
    assert meta["fetched_at"] == snap.fetched_at
    record = snap.record()
    assert record["path"] == snap.relative_path
    assert "relative_path" not in record and "new" not in record


def test_landing_same_bytes_twice_reuses_snapshot_without_rewriting(tmp_path: Path) -> None:
    home = tmp_path / "home"
    payload = tmp_path / "stats.csv"
    payload.write_bytes(b"Jahr,Wert\n2023,1\n")
    first = land(home, payload)
    before = tree_state(home / "raw")
    # Same content, different file and request: still the same snapshot.
    again = tmp_path / "copy.csv"
    again.write_bytes(payload.read_bytes())
    second = land(home, again, request={"path": "elsewhere"})
    assert second.new is False
    assert second.snapshot_id == first.snapshot_id
    assert second.path == first.path
    assert second.fetched_at == first.fetched_at
    assert second.request == first.request
    assert tree_state(home / "raw") == before  # nothing rewritten (same mtime, inode, bytes)
    assert len(list((home / "raw" / "test-city" / "stats").iterdir())) == 1


def test_changed_bytes_give_new_snapshot_and_old_is_untouched(tmp_path: Path) -> None:
    home = tmp_path / "home"
    payload = tmp_path / "stats.csv"
    payload.write_bytes(b"Jahr,Wert\n2023,1\n")
    old = land(home, payload)
    old_state = tree_state(old.path.parent)
    payload.write_bytes(b"Jahr,Wert\n2023,2\n")
    new = land(home, payload)
    assert new.new is True
    assert new.content_sha256 != old.content_sha256
    assert new.path.parent != old.path.parent
    assert new.path.read_bytes() == b"Jahr,Wert\n2023,2\n"
    assert tree_state(old.path.parent) == old_state
    assert old.path.read_bytes() == b"Jahr,Wert\n2023,1\n"


def test_payload_and_meta_are_read_only(tmp_path: Path) -> None:
    payload = tmp_path / "stats.csv"
    payload.write_bytes(b"a,b\n1,2\n")
    snap = land(tmp_path / "home", payload)
    for file in (snap.path, snap.path.parent / "meta.json"):
        mode = stat.S_IMODE(file.stat().st_mode)
        assert mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0, oct(mode)
        assert mode & stat.S_IRUSR


def test_no_staging_dirs_left_behind(tmp_path: Path) -> None:
    home = tmp_path / "home"
    payload = tmp_path / "stats.csv"
    for content in (b"1\n", b"2\n", b"1\n"):
        payload.write_bytes(content)
        land(home, payload)
    assert hidden_entries(home) == []
    assert sorted(p.name for p in (home / "raw" / "test-city" / "stats").iterdir()) == sorted(
        hashlib.sha256(c).hexdigest() for c in (b"1\n", b"2\n"))


def test_concurrent_landing_of_same_content(tmp_path: Path) -> None:
    """Writers racing on the same content all get the one snapshot; none fails."""
    for round_ in range(20):
        home = tmp_path / f"home{round_}"
        payload = tmp_path / f"payload{round_}.csv"
        payload.write_bytes(b"x,y\n" * 5000)
        barrier = threading.Barrier(8)
        results: list[Snapshot] = []
        errors: list[BaseException] = []

        def worker(home: Path = home, payload: Path = payload, barrier: threading.Barrier = barrier,
                   results: list[Snapshot] = results, errors: list[BaseException] = errors) -> None:
            barrier.wait()
            try:
                results.append(land(home, payload))
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(results) == 8
        assert len({s.path for s in results}) == 1
        assert sum(s.new for s in results) >= 1
        assert hidden_entries(home) == []


# ---- fetch_source and the CURRENT pointer -----------------------------------------------------


def make_city(tmp_path: Path) -> LoadedConfig:
    city = tmp_path / "city"
    city.mkdir()
    (city / "stats.csv").write_bytes(b"Jahr,Einwohner\n2023,100\n")
    config = {
        "city": {"id": "test-city", "name": "Testville", "country": "DE", "reporting_years": [2023]},
        "sources": [{"id": "stats", "kind": "file", "location": "stats.csv", "target": "observations",
                     "observations": {"year_field": "Jahr",
                                      "variables": {"Einwohner": {"variable": "population", "unit": "persons"}}}}],
    }
    (city / "city.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_city_config(city / "city.yaml")


def pointer(home: Path) -> str:
    return (home / "raw" / "test-city" / "stats" / POINTER).read_text(encoding="utf-8").strip()


def test_fetch_source_lands_and_points_current(tmp_path: Path) -> None:
    loaded = make_city(tmp_path)
    source = loaded.config.sources[0]
    home = tmp_path / "home"
    snap = fetch_source(loaded, source, home / "raw", home)
    assert snap.new is True
    assert snap.kind == "file"
    assert snap.format == "csv"
    assert snap.location == "stats.csv"
    assert snap.request["path"] == str(tmp_path / "city" / "stats.csv")
    assert pointer(home) == snap.content_sha256
    current = current_snapshot(home / "raw", home, "test-city", "stats")
    assert current is not None
    assert (current.snapshot_id, current.path, current.new) == (snap.snapshot_id, snap.path, False)


def test_current_follows_latest_fetch_also_when_content_reverts(tmp_path: Path) -> None:
    loaded = make_city(tmp_path)
    source = loaded.config.sources[0]
    home = tmp_path / "home"
    data = tmp_path / "city" / "stats.csv"
    version_a = fetch_source(loaded, source, home / "raw", home)
    data.write_bytes(b"Jahr,Einwohner\n2023,200\n")
    version_b = fetch_source(loaded, source, home / "raw", home)
    assert version_b.new is True
    assert pointer(home) == version_b.content_sha256
    data.write_bytes(b"Jahr,Einwohner\n2023,100\n")  # back to version A
    reverted = fetch_source(loaded, source, home / "raw", home)
    assert reverted.new is False
    assert reverted.snapshot_id == version_a.snapshot_id
    assert pointer(home) == version_a.content_sha256
    current = current_snapshot(home / "raw", home, "test-city", "stats")
    assert current is not None and current.snapshot_id == version_a.snapshot_id
    offline = fetch_source(loaded, source, home / "raw", home, offline=True)
    assert offline.snapshot_id == version_a.snapshot_id
    assert offline.path.read_bytes() == b"Jahr,Einwohner\n2023,100\n"
    assert hidden_entries(home) == []


def test_offline_uses_current_without_reading_the_source(tmp_path: Path) -> None:
    loaded = make_city(tmp_path)
    source = loaded.config.sources[0]
    home = tmp_path / "home"
    landed = fetch_source(loaded, source, home / "raw", home)
    (tmp_path / "city" / "stats.csv").unlink()  # the source is gone; offline must not care
    offline = fetch_source(loaded, source, home / "raw", home, offline=True)
    assert offline.snapshot_id == landed.snapshot_id
    assert offline.new is False
    with pytest.raises(FetchError, match="file not found"):
        fetch_source(loaded, source, home / "raw", home)
    assert pointer(home) == landed.content_sha256  # a failed fetch leaves CURRENT alone


def test_offline_without_snapshot_raises_fetch_error(tmp_path: Path) -> None:
    loaded = make_city(tmp_path)
    home = tmp_path / "home"
    with pytest.raises(FetchError) as info:
        fetch_source(loaded, loaded.config.sources[0], home / "raw", home, offline=True)
    assert "'stats'" in str(info.value) and "'test-city'" in str(info.value)
    assert "without --offline" in str(info.value)
    assert not (home / "raw").exists()


def test_current_snapshot_falls_back_to_latest_without_pointer(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert current_snapshot(home / "raw", home, "test-city", "stats") is None
    payload = tmp_path / "stats.csv"
    payload.write_bytes(b"only version\n")
    landed = land(home, payload)
    found = current_snapshot(home / "raw", home, "test-city", "stats")
    assert found is not None and found.snapshot_id == landed.snapshot_id
    latest = latest_snapshot(home / "raw", home, "test-city", "stats")
    assert latest is not None and latest.path == landed.path


def test_current_is_not_rewritten_when_it_already_names_the_snapshot(tmp_path: Path) -> None:
    loaded = make_city(tmp_path)
    source = loaded.config.sources[0]
    home = tmp_path / "home"
    first = fetch_source(loaded, source, home / "raw", home)
    current = home / "raw" / "test-city" / "stats" / POINTER
    before = (current.stat().st_ino, current.stat().st_mtime_ns)
    fetch_source(loaded, source, home / "raw", home)
    assert (current.stat().st_ino, current.stat().st_mtime_ns) == before
    (tmp_path / "city" / "stats.csv").write_bytes(b"Jahr,Einwohner\n2023,300\n")
    changed = fetch_source(loaded, source, home / "raw", home)
    assert changed.content_sha256 != first.content_sha256 and pointer(home) == changed.content_sha256
    assert current.stat().st_ino != before[0]  # replaced by a rename, never written in place
