"""Every publish path writes the `loads` section of manifest.json from the warehouse, and a source
removed from a config loses its rows at the next load (issue #13)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import yaml

from tests.conftest import CompletedHome, release_path_from_stdout, run_cli


def _manifest(release: Path) -> dict:
    return json.loads((release / "manifest.json").read_text(encoding="utf-8"))


def test_citykpi_run_writes_a_load_report_for_every_source(completed_home: CompletedHome) -> None:
    loads = _manifest(completed_home.release)["loads"]
    config = yaml.safe_load(completed_home.config.read_text(encoding="utf-8"))
    sources = loads[config["city"]["id"]]["sources"]
    assert set(sources) == {s["id"] for s in config["sources"]}
    for source_id, report in sources.items():
        assert report["snapshot_id"].startswith(f"{config['city']['id']}/{source_id}/"), report
        assert report["rows_loaded"] >= 0
    statistics = next(s["id"] for s in config["sources"] if s["target"] == "observations")
    assert sources[statistics]["rows_read"] > 0 and "empty_cells" in sources[statistics]
    assert loads[config["city"]["id"]]["derived"]["mode"] == "full"


def test_a_removed_source_loses_its_rows_and_the_run_says_so(completed_home: CompletedHome, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(completed_home.home, home, symlinks=True)
    folder = tmp_path / "city"
    shutil.copytree(completed_home.config.parent, folder)
    config = yaml.safe_load((folder / "city.yaml").read_text(encoding="utf-8"))
    removed = next(s for s in config["sources"] if s["target"] == "observations")
    config["sources"] = [s for s in config["sources"] if s["id"] != removed["id"]]
    (folder / "city.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    city = config["city"]["id"]

    def rows_of_source() -> int:
        con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
        try:
            return int(con.execute("SELECT count(*) FROM observations WHERE city_id = ? AND source_id = ?",
                                   [city, removed["id"]]).fetchone()[0])
        finally:
            con.close()

    assert rows_of_source() > 0
    result = run_cli("run", folder / "city.yaml", home=home)
    assert result.returncode == 0, result
    assert f"{removed['id']}: removed from the config; its rows were deleted" in result.stdout + result.stderr
    assert rows_of_source() == 0
    manifest = _manifest(release_path_from_stdout(result.stdout))
    assert removed["id"] not in manifest["loads"][city]["sources"]
    assert all(s["source_id"] != removed["id"] for s in manifest["input_snapshots"])
