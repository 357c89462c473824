"""A fetch of bad data that fails to load must not poison later `--offline` runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from canonical.errors import SourceDataError
from pipelines.steps import fetch_city, load_city
from sources.config import load_city_config
from sources.fetch import current_snapshot
from warehouse.home import Home


def test_failed_load_points_current_back_at_the_last_good_snapshot(city_copy: Path, tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    loaded = load_city_config(city_copy)
    load_city(home, loaded, fetch_city(home, loaded))
    good = current_snapshot(home.raw, home.root, loaded.city_id, "versorgung")
    assert good is not None

    csv = city_copy.parent / "versorgung.csv"
    lines = csv.read_text(encoding="utf-8-sig").splitlines()
    cells = lines[1].split(",")
    cells[1] = "abc"  # a non-numeric value in a mapped column
    lines[1] = ",".join(cells)
    csv.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(SourceDataError, match="row 2"):
        load_city(home, loaded, fetch_city(home, loaded))
    after = current_snapshot(home.raw, home.root, loaded.city_id, "versorgung")
    assert after is not None and after.content_sha256 == good.content_sha256

    # Offline now recomputes from the last good snapshots and succeeds.
    report = load_city(home, loaded, fetch_city(home, loaded, offline=True))
    assert report["observations"] > 0
