"""Multi-page snapshots in the landing zone: exact bytes per page, one hash over all pages in order,
atomic and immutable like single-file snapshots; CURRENT and offline runs work the same."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from connectors.replay import FAST_HTTP, fetch, hidden_entries, make_city, socrata_rows
from sources.fetch import current_snapshot, fetch_source
from sources.landing import Page, Snapshot, Staging, land_pages, latest_snapshot, pages_sha256


def stage(raw: Path, bodies: list[bytes]) -> tuple[Staging, list[Page]]:
    staging = Staging(raw, "c", "s")
    pages = []
    for number, body in enumerate(bodies, start=1):
        name = f"page-{number:04d}.json"
        staging.file(name).write_bytes(body)
        pages.append(Page(name, f"https://x.org/p?page={number}", 200, {"etag": f'"{number}"'},
                          hashlib.sha256(body).hexdigest(), len(body)))
    return staging, pages


def land(home: Path, bodies: list[bytes]) -> Snapshot:
    staging, pages = stage(home / "raw", bodies)
    return land_pages(staging, home, city_id="c", source_id="s", kind="socrata", location="https://x.org/p",
                      fmt="json", pages=pages, request={"method": "GET"}, paged=True)


def test_pages_land_read_only_with_one_hash_over_all_pages(tmp_path: Path) -> None:
    home = tmp_path / "home"
    snapshot = land(home, [b"[1]", b"[2]"])
    listing = "".join(f"{hashlib.sha256(b).hexdigest()}  page-000{i}.json\n" for i, b in ((1, b"[1]"), (2, b"[2]")))
    assert snapshot.content_sha256 == hashlib.sha256(listing.encode()).hexdigest()
    assert snapshot.path == home / "raw" / "c" / "s" / snapshot.content_sha256 / "page-0001.json"
    assert [p.read_bytes() for p in snapshot.pages] == [b"[1]", b"[2]"]
    assert snapshot.size_bytes == 6 and snapshot.paged
    for file in [*snapshot.pages, snapshot.path.parent / "meta.json"]:
        assert stat.S_IMODE(file.stat().st_mode) & 0o222 == 0
    record = snapshot.record()
    assert record["pages"] == [f"raw/c/s/{snapshot.content_sha256}/page-0001.json",
                               f"raw/c/s/{snapshot.content_sha256}/page-0002.json"]
    assert hidden_entries(home) == []


def test_order_matters_and_identical_pages_reuse_the_snapshot(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = land(home, [b"[1]", b"[2]"])
    before = {p: p.stat().st_mtime_ns for p in first.pages}
    again = land(home, [b"[1]", b"[2]"])
    assert again.new is False and again.snapshot_id == first.snapshot_id
    assert {p: p.stat().st_mtime_ns for p in again.pages} == before
    swapped = land(home, [b"[2]", b"[1]"])
    assert swapped.new is True and swapped.content_sha256 != first.content_sha256
    assert hidden_entries(home) == []


def test_a_one_page_snapshot_hashes_like_a_file(tmp_path: Path) -> None:
    snapshot = land(tmp_path / "home", [b"[1]"])
    assert snapshot.content_sha256 == hashlib.sha256(b"[1]").hexdigest()
    assert pages_sha256([Page("a", "u", 200, {}, "abc", 1)]) == "abc"


def test_staging_is_removed_on_error_and_rejects_unsafe_names(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    with pytest.raises(RuntimeError), Staging(raw, "c", "s") as staging:
        staging.file("page-0001.json").write_bytes(b"[]")
        raise RuntimeError("fetch failed half way")
    assert hidden_entries(raw) == []
    staging = Staging(raw, "c", "s")
    for bad in ("../x", ".hidden", "", "a/b"):
        with pytest.raises(ValueError, match="unsafe page file name"):
            staging.file(bad)
    staging.discard()


def test_land_pages_checks_the_staged_files(tmp_path: Path) -> None:
    staging, pages = stage(tmp_path / "raw", [b"[1]"])
    staging.file("stray.txt").write_bytes(b"x")
    with pytest.raises(ValueError, match="does not hold exactly the pages"):
        land_pages(staging, tmp_path, city_id="c", source_id="s", kind="k", location="l", fmt="json", pages=pages,
                   request={}, paged=True)
    staging.discard()


def test_current_and_offline_runs_use_the_paged_snapshot(tmp_path: Path, server: HTTPServer, home: Path) -> None:
    server.expect_request("/resource/abcd-1234.json").respond_with_handler(
        socrata_rows([{"year": 2019, "value": 1}, {"year": 2020, "value": 2}, {"year": 2021, "value": 3}]))
    loaded = make_city(tmp_path / "city", [{
        "id": "rows", "kind": "socrata", "target": "observations",
        "socrata": {"base_url": server.url_for("/").rstrip("/"), "dataset": "abcd-1234", "page_size": 2},
        "http": FAST_HTTP,
        "observations": {"year_field": "year", "variables": {"value": {"variable": "population", "unit": "person"}}},
    }])
    landed = fetch(loaded, home)
    server.clear()  # the source is gone: offline must not care
    source = loaded.config.sources[0]
    offline = fetch_source(loaded, source, home / "raw", home, offline=True)
    assert offline.snapshot_id == landed.snapshot_id and offline.pages == landed.pages and offline.paged
    assert server.log == []
    current = current_snapshot(home / "raw", home, "replay-city", "rows")
    latest = latest_snapshot(home / "raw", home, "replay-city", "rows")
    assert current is not None and latest is not None
    assert current.pages == latest.pages == landed.pages
    meta = json.loads((landed.path.parent / "meta.json").read_text(encoding="utf-8"))
    assert meta["filename"] == "page-0001.json" and meta["paged"] is True
