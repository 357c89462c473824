"""The shared warehouse's rules on one machine (warehouse/lake.py, pipelines/lake_run.py, publish/remote.py),
with pyiceberg's SQL catalog on SQLite and the data files in a local folder: fast enough for the default
tier. tests/test_lake_distributed.py runs the same code on PostgreSQL and S3 with several workers.

- a city's rows commit, read back equal and restore into a fresh warehouse; recommitting them makes
  no new snapshot;
- a commit interrupted between two tables leaves the city `writing`: a reader refuses it, the next
  commit completes it;
- two homes' rows of the same city leave one version (slow tier: a second run);
- secrets stay out of messages and `repr`; a missing configuration names the variables;
- shards split the cities; a release copies to object storage with its manifest and `latest`; the
  landing zone pushes and pulls whole snapshots (never a half-pushed one).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import CompletedHome, run_cli, subprocess_env

pytestmark = pytest.mark.skipif(importlib.util.find_spec("pyiceberg") is None,
                                reason="pyiceberg not installed (pip install -e '.[dev]')")


@pytest.fixture
def lake(tmp_path: Path) -> Any:
    from warehouse.lake import LakeSettings, ensure_tables, open_lake

    settings = LakeSettings.from_env({"CITYKPI_LAKE_CATALOG_URI": f"sqlite:///{tmp_path / 'catalog.db'}",
                                      "CITYKPI_LAKE_WAREHOUSE": f"file://{tmp_path / 'lake'}"})
    (tmp_path / "lake").mkdir()
    opened = open_lake(settings, worker="test")
    ensure_tables(opened)
    return opened


def city_of(completed: CompletedHome) -> str:
    from sources.config import load_city_config

    return load_city_config(completed.config).city_id


def local_extract(home: Path, city: str) -> Any:
    from warehouse.lake import extract_city

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return extract_city(con, city)


def snapshot_total(lake: Any) -> int:
    from warehouse.lake import LEDGER, TABLE_NAMES, table_snapshots

    return sum(len(table_snapshots(lake, name)) for name in (*TABLE_NAMES, LEDGER))


def test_commit_reads_back_restores_and_recommits_nothing(lake: Any, completed_home: CompletedHome) -> None:
    from warehouse.db import migrate
    from warehouse.lake import VERSION_COLUMN, commit_extracts, read_cities, read_ledger, restore_into

    city = city_of(completed_home)
    extract = local_extract(completed_home.home, city)
    assert extract.years and extract.rows["observations"].num_rows > 0 and extract.rows["kpi_values"].num_rows > 0
    report = commit_extracts(lake, [extract])
    assert report.written == [city] and report.commits == 12 and report.retries == 0
    assert read_ledger(lake, [city])[city]["state"] == "committed"

    tables = read_cities(lake, [city])
    for name, rows in tables.items():
        assert rows.num_rows == extract.rows[name].num_rows, name
        assert set(rows[VERSION_COLUMN].to_pylist()) <= {extract.version}
    fresh = duckdb.connect()
    migrate(fresh)
    counts = restore_into(fresh, tables)
    assert counts == extract.table_rows
    assert fresh.execute("SELECT count(*) FROM kpi_values").fetchall() == [(extract.rows["kpi_values"].num_rows,)]

    before = snapshot_total(lake)
    again = commit_extracts(lake, [local_extract(completed_home.home, city)])
    assert again.skipped == [city] and again.commits == 0
    assert snapshot_total(lake) == before


def test_an_interrupted_commit_is_refused_until_a_commit_completes(lake: Any, completed_home: CompletedHome,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import warehouse.lake as lake_module

    city = city_of(completed_home)
    extract = local_extract(completed_home.home, city)
    real = lake_module._overwrite
    calls: list[str] = []

    def dies_after_two(lake_: Any, name: str, *args: Any) -> None:
        if len(calls) == 3:   # the ledger's `writing`, observations, kpi_values: then the process "dies"
            raise KeyboardInterrupt
        calls.append(name)
        real(lake_, name, *args)

    monkeypatch.setattr(lake_module, "_overwrite", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        lake_module.commit_extracts(lake, [extract])
    monkeypatch.setattr(lake_module, "_overwrite", real)
    assert calls == ["lake_cities", "observations", "kpi_values"]
    assert lake_module.read_ledger(lake, [city])[city]["state"] == "writing"
    with pytest.raises(lake_module.LakeError, match="did not finish"):
        lake_module.read_cities(lake, [city])
    # What was committed stays: the observations are the interrupted commit's.
    assert lake_module.read_table(lake, "observations", [city]).num_rows == extract.rows["observations"].num_rows

    report = lake_module.commit_extracts(lake, [extract])
    assert report.written == [city]
    assert lake_module.read_cities(lake, [city])["kpi_scores"].num_rows == extract.rows["kpi_scores"].num_rows


@pytest.mark.slow   # a second whole run of the city
def test_two_homes_of_one_city_leave_one_version(lake: Any, completed_home: CompletedHome, tmp_path: Path) -> None:
    """The same city computed in two homes (two run ids), committed by both, forced: one version."""
    from warehouse.lake import commit_extracts, read_cities

    city = city_of(completed_home)
    second = tmp_path / "second"
    result = run_cli("run", completed_home.config, "--force", home=second)
    assert result.returncode == 0, result
    first, other = local_extract(completed_home.home, city), local_extract(second, city)
    assert first.version == other.version   # equal rows without run ids and times: equal versions
    commit_extracts(lake, [first])
    commit_extracts(lake, [other], force=True)
    values = read_cities(lake, [city])["kpi_values"]
    assert values.num_rows == first.rows["kpi_values"].num_rows
    runs = set(values["run_id"].to_pylist())
    assert len(runs) == 1 and runs == set(other.rows["kpi_values"]["run_id"].to_pylist())


def test_secrets_stay_out_of_messages_and_repr() -> None:
    from warehouse.lake import LakeError, LakeSettings, open_lake

    env = {"CITYKPI_LAKE_CATALOG_URI": "postgresql+psycopg2://citykpi:pw-in-url-123@127.0.0.1:1/lake",
           "CITYKPI_LAKE_WAREHOUSE": "s3://bucket/wh", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
           "AWS_SECRET_ACCESS_KEY": "secret-key-456", "CITYKPI_LAKE_S3_ENDPOINT": "http://127.0.0.1:1"}
    settings = LakeSettings.from_env(env)
    for text in (repr(settings), settings.describe()):
        assert "pw-in-url-123" not in text and "secret-key-456" not in text and "AKIDEXAMPLE" not in text
    assert "citykpi:***@127.0.0.1:1/lake" in settings.describe()
    if importlib.util.find_spec("psycopg2") is None:
        pytest.skip("psycopg2 not installed")
    with pytest.raises(LakeError) as caught:   # nothing listens on port 1: the catalog cannot be opened
        open_lake(settings)
    assert "pw-in-url-123" not in str(caught.value) and "secret-key-456" not in str(caught.value)
    with pytest.raises(LakeError, match="CITYKPI_LAKE_CATALOG_URI and CITYKPI_LAKE_WAREHOUSE"):
        LakeSettings.from_env({})


def test_lake_command_without_configuration_names_the_variables(tmp_path: Path) -> None:
    env = subprocess_env(tmp_path / "home")
    for name in ("CITYKPI_LAKE_CATALOG_URI", "CITYKPI_LAKE_WAREHOUSE"):
        env.pop(name, None)
    result = run_cli("lake", "status", home=tmp_path / "home", env=env)
    assert result.returncode == 2, result
    assert "CITYKPI_LAKE_CATALOG_URI" in result.stderr and "docs/deployment.md" in result.stderr


def test_shards_split_the_cities_in_id_order() -> None:
    from types import SimpleNamespace

    from canonical.errors import CitykpiError
    from pipelines.lake_run import shard

    configs: Any = [SimpleNamespace(city_id=f"c{i:02d}") for i in (5, 1, 4, 2, 3)]
    parts = [[c.city_id for c in shard(configs, f"{i}/2")] for i in range(2)]
    assert parts == [["c01", "c03", "c05"], ["c02", "c04"]]
    assert shard(configs, None) == configs
    for bad in ("2/2", "x/2", "1"):
        with pytest.raises(CitykpiError):
            shard(configs, bad)


def test_a_release_copies_to_object_storage_manifest_last(completed_home: CompletedHome, tmp_path: Path) -> None:
    from publish.releases import load_release
    from publish.remote import upload_release
    from warehouse.home import Home

    release = load_release(Home(completed_home.home), completed_home.release.name)
    dest = tmp_path / "bucket" / "releases"
    where = upload_release(release, f"file://{dest}")
    assert where.endswith(release.release_id)
    copied = dest / release.release_id
    assert sorted(p.relative_to(copied) for p in copied.rglob("*") if p.is_file()) == \
        sorted(p.relative_to(release.path) for p in release.path.rglob("*") if p.is_file())
    assert (copied / "manifest.json").read_bytes() == (release.path / "manifest.json").read_bytes()
    assert (dest / "latest").read_text().strip() == release.release_id
    assert upload_release(release, f"file://{dest}") == where   # again: the same release, nothing to change
    shutil.rmtree(dest)


def test_the_landing_zone_pushes_and_pulls_whole_snapshots(completed_home: CompletedHome, tmp_path: Path) -> None:
    from conftest import hash_tree

    from sources.file_stat import RECORD as FILE_STAT
    from sources.landing import current_snapshot
    from warehouse.objectstore import location, pull_raw, push_raw

    city = city_of(completed_home)
    raw = completed_home.home / "raw"
    store = location(f"file://{tmp_path / 'bucket' / 'raw'}")
    pushed = push_raw(raw, store, [city])
    assert pushed.snapshots > 0 and pushed.pointers > 0
    assert push_raw(raw, store, [city]).as_dict() == {"snapshots": 0, "files": 0, "bytes": 0, "pointers": 0}
    # A snapshot whose pusher died before its meta.json is never pulled.
    half = tmp_path / "bucket" / "raw" / city / "some-source" / ("0" * 64)
    half.mkdir(parents=True)
    (half / "data.csv").write_text("a,b\n")

    fresh = tmp_path / "fresh" / "raw"
    pulled = pull_raw(store, fresh, [city])
    assert pulled.snapshots == pushed.snapshots and pulled.pointers == pushed.pointers
    # FILE_STAT.json records this machine's stat of its source files (sources/file_stat.py): not shared.
    local = {path: digest for path, digest in hash_tree(raw / city).items() if not path.endswith(FILE_STAT)}
    assert local and len(local) < len(hash_tree(raw / city))
    assert hash_tree(fresh / city) == local
    assert not (fresh / city / "some-source").exists()
    source = next(p.parent.name for p in (raw / city).glob("*/CURRENT"))
    snapshot = current_snapshot(fresh, fresh.parent, city, source)
    assert snapshot is not None and all(page.is_file() for page in snapshot.pages or (snapshot.path,))
    assert pull_raw(store, fresh, [city]).snapshots == 0


@pytest.mark.slow   # a whole worker run and a release, through Dagster
def test_dagster_shards_commit_and_release_from_the_lake(completed_home: CompletedHome, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """pipelines/lake_dagster.py: the shard partition holding the city runs it in its own home and
    commits it; `lake/release` publishes the release from the lake, with the single run's data."""
    import json
    import warnings

    import dagster as dg

    from pipelines import lake_dagster

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    (tmp_path / "lake").mkdir()
    monkeypatch.setenv("CITYKPI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CITYKPI_CITIES", str(completed_home.config))
    monkeypatch.setenv("CITYKPI_LAKE_CATALOG_URI", f"sqlite:///{tmp_path / 'catalog.db'}")
    monkeypatch.setenv("CITYKPI_LAKE_WAREHOUSE", f"file://{tmp_path / 'lake'}")
    monkeypatch.setenv("CITYKPI_LAKE_RELEASES", f"file://{tmp_path / 'bucket' / 'releases'}")
    city = city_of(completed_home)
    holding = next(key for key in lake_dagster.SHARDS.get_partition_keys()
                   if lake_dagster.shard_spec(key).startswith("0/"))
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([lake_dagster.lake_cities], partition_key=holding, instance=instance)
    assert result.success
    metadata = result.asset_materializations_for_node("lake__cities")[0].metadata
    assert metadata["written"].value == city and metadata["commits"].value == 12
    assert (tmp_path / "home" / "lake-shards" / holding / "warehouse.duckdb").is_file()

    release = dg.materialize([lake_dagster.lake_release], instance=instance)
    assert release.success
    release_id = release.asset_materializations_for_node("lake__release")[0].metadata["release_id"].value
    manifest = json.loads((tmp_path / "home" / "lake-publisher" / "releases" / str(release_id)
                           / "manifest.json").read_text())
    single = json.loads((completed_home.release / "manifest.json").read_text())
    assert manifest["content_sha256"] == single["content_sha256"]
    assert (tmp_path / "bucket" / "releases" / "latest").read_text().strip() == release_id


def test_a_commit_of_some_years_replaces_only_those(lake: Any, completed_home: CompletedHome) -> None:
    """`city_id = c AND year ...`: committing the latest year again leaves the other years' rows as they are."""
    from warehouse.lake import VERSION_COLUMN, commit_cities, commit_extracts, read_cities, read_table

    city = city_of(completed_home)
    whole = local_extract(completed_home.home, city)
    commit_extracts(lake, [whole])
    latest = max(whole.years)
    with duckdb.connect(str(completed_home.home / "warehouse.duckdb"), read_only=True) as con:
        report = commit_cities(lake, con, [city], {city: [latest]})
    assert report.written == [city]
    observations = read_table(lake, "observations", [city])
    by_year: dict[int, set[str]] = {}
    for year, version in zip(observations["year"].to_pylist(), observations[VERSION_COLUMN].to_pylist(), strict=True):
        by_year.setdefault(year, set()).add(version)
    assert by_year[latest] != by_year[min(whole.years)]              # a new version for the latest year only
    assert all(by_year[y] == {whole.version} for y in whole.years if y != latest)
    assert observations.num_rows == whole.rows["observations"].num_rows   # nothing lost, nothing doubled
    assert read_cities(lake, [city])["kpi_values"].num_rows == whole.rows["kpi_values"].num_rows
