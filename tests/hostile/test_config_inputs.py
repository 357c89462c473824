"""Hostile configs: refused before anything is fetched (warehouse byte-identical).

`citykpi run` loads its configs exactly as `citykpi validate` does (pipelines.cities.load_configs, files
checked), so most cases use the faster `validate`; /proc/self/environ goes through `run`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from conftest import RUN_TIMEOUT, subprocess_env

from hostile.conftest import Baseline

OBS = {"year_field": "year", "variables": {"value": {"variable": "population", "unit": "person"}}}
SECRET = "hostile-token-0f9e8d7c"


def file_source(location: str, **extra: Any) -> dict[str, Any]:
    return {"id": "data", "kind": "file", "location": location, "target": "observations", "format": "csv",
            "observations": OBS, **extra}


@pytest.mark.parametrize(("location", "match"), [
    ("/proc/self/environ", r"/proc/self/environ is under /proc, which holds no data files"),
    ("/dev/zero", r"/dev/zero is under /dev, which holds no data files"),
    ("/sys/kernel/mm/transparent_hugepage/enabled", r"/sys/kernel/\S+ is under /sys"),
], ids=["proc-environ", "dev-zero", "sys"])
def test_pseudo_files_are_refused(guard: Baseline, location: str, match: str) -> None:
    config = guard.city("pseudo", [file_source(location)])
    command = "run" if location.startswith("/proc") else "validate"  # `run` loads configs as `validate` does
    result = guard.run(command, config, env=subprocess_env(guard.home, HOSTILE_SECRET=SECRET))
    line = guard.assert_rejected(result, r"pseudo/city\.yaml at sources\[0\]\.location: " + match,
                                 config_stage=True)
    assert SECRET not in result.stderr + result.stdout and SECRET not in line


def test_a_fifo_is_refused_without_hanging(guard: Baseline) -> None:
    config = guard.city("fifo", [file_source("pipe.csv")])
    os.mkfifo(config.parent / "pipe.csv")  # opening it for reading would block forever
    result = guard.run("validate", config, timeout=RUN_TIMEOUT)
    guard.assert_rejected(result, r"pipe\.csv is a FIFO, not a regular file", config_stage=True)


def test_a_directory_is_refused(guard: Baseline) -> None:
    config = guard.city("folder", [file_source("data.csv")])
    (config.parent / "data.csv").mkdir(exist_ok=True)
    guard.assert_rejected(guard.run("validate", config), r"data\.csv is a directory, not a regular file",
                          config_stage=True)


def test_a_symlink_leading_outside_is_refused(guard: Baseline) -> None:
    outside = guard.root / "outside.csv"
    outside.write_text("year,value\n2023,1\n", encoding="utf-8")
    config = guard.city("symlink", [file_source("data.csv")])
    link = config.parent / "data.csv"
    link.unlink(missing_ok=True)
    link.symlink_to(outside)
    try:
        guard.assert_rejected(guard.run("validate", config),
                              r"data\.csv \(a symlink to .*outside\.csv\) is outside the config's folder .*add its "
                              r"folder to the config's allowed_roots", config_stage=True)
    finally:
        outside.unlink()


def test_path_traversal_in_a_location_is_refused_unless_allowed(guard: Baseline) -> None:
    shared = guard.root / "shared-data"
    shared.mkdir(exist_ok=True)
    (shared / "pop.csv").write_text("year,value\n2023,1\n", encoding="utf-8")
    guard.cities.add("shared-data")
    config = guard.city("traversal", [file_source("../shared-data/pop.csv")])
    guard.assert_rejected(guard.run("validate", config), r"pop\.csv is outside the config's folder", config_stage=True)
    allowed = guard.city("traversal", [file_source("../shared-data/pop.csv")], allowed_roots=["../shared-data"])
    result = guard.run("validate", allowed)
    assert result.returncode == 0, result


def test_allowed_roots_cannot_name_a_pseudo_file_system(guard: Baseline) -> None:
    config = guard.city("pseudo-root", [file_source("/proc/self/environ")], allowed_roots=["/proc"])
    guard.assert_rejected(guard.run("validate", config), r"allowed_roots.*'/proc' is a pseudo file system",
                          config_stage=True)


@pytest.mark.parametrize(("location", "shown"), [
    ("https://alice:pa55word@data.example.org/pop.csv", "a user name or password"),
    ("https://data.example.org/pop.csv?api_key=abc123", "the credential parameter 'api_key'"),
    ("https://data.example.org/pop.csv?access_token=abc123", "the credential parameter 'access_token'"),
], ids=["userinfo", "api_key", "access_token"])
def test_literal_credentials_in_a_url_are_refused(guard: Baseline, location: str, shown: str) -> None:
    config = guard.city("creds", [{"id": "data", "kind": "http", "location": location, "target": "observations",
                                   "observations": OBS}])
    line = guard.assert_rejected(guard.run("validate", config), r"sources\[0\]: .*" + shown, config_stage=True)
    assert "pa55word" not in line and "abc123" not in line


@pytest.mark.parametrize(("kind", "block", "shown"), [
    ("openaq", {"endpoint": "locations", "params": {"iso": "DE", "api_key": "abc123"}},
     r"the 'openaq' block's params hold the credential parameter 'api_key'"),
    ("openaq", {"endpoint": "locations", "params": {"Access_Token": "abc123"}},
     r"the 'openaq' block's params hold the credential parameter 'Access_Token'"),
    ("eurostat", {"dataset": "urb_cpop1", "filters": {"cities": "DE001C", "token": "abc123"}},
     r"the 'eurostat' block's filters hold the credential parameter 'token'"),
], ids=["openaq-api_key", "openaq-access_token", "eurostat-token"])
def test_literal_credentials_in_api_query_parameters_are_refused(guard: Baseline, kind: str, block: dict[str, Any],
                                                                  shown: str) -> None:
    target = "points" if kind == "openaq" else "observations"
    mapping = {"points": {"point_type": "station"}} if kind == "openaq" else {"observations": OBS}
    config = guard.city("param-creds", [{"id": "api", "kind": kind, "target": target, kind: block, **mapping}])
    line = guard.assert_rejected(guard.run("validate", "--config-only", config), r"sources\[0\]: .*" + shown,
                                 config_stage=True)
    assert "abc123" not in line
    # The same block without the credential is a valid config: only the credential was refused.
    clean = {**block, **{k: {n: v for n, v in block[k].items() if v != "abc123"} for k in ("params", "filters")
                         if k in block}}
    config = guard.city("param-creds", [{"id": "api", "kind": kind, "target": target, kind: clean, **mapping}])
    result = guard.run("validate", "--config-only", config)
    assert result.returncode == 0, result


@pytest.mark.parametrize(("where", "value"), [("source", "../../etc"), ("city", "../escape")])
def test_path_traversal_in_ids_is_refused(guard: Baseline, where: str, value: str) -> None:
    config = guard.city("ids", [file_source("x.csv", id=value if where == "source" else "data")])
    if where == "city":
        config.write_text(config.read_text(encoding="utf-8").replace("id: ids", f"id: {value}"), encoding="utf-8")
    (config.parent / "x.csv").write_text("year,value\n2023,1\n", encoding="utf-8")
    guard.assert_rejected(guard.run("validate", config), r"(sources\[0\]\.id|city\.id): String should match pattern",
                          config_stage=True)
    assert not (guard.home / "etc").exists() and not (guard.root / "escape").exists()


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "match"), [
    ("city: " + "[" * 5000 + "]" * 5000 + "\n", r"YAML nested deeper than citykpi reads"),
    ("city: !!python/object/apply:os.system ['touch /tmp/citykpi-yaml-pwned']\nsources: []\n",
     r"not valid YAML: could not determine a constructor for the tag"),
    ("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
     "city: {id: bomb, name: B, country: DE, reporting_years: [2023]}\nsources: *f\n",
     r"bomb/city\.yaml at "),
], ids=["deep-nesting", "python-tag", "alias-bomb"])
def test_hostile_yaml_is_refused(guard: Baseline, text: str, match: str) -> None:
    name = {"[": "deep", "c": "tag", "a": "bomb"}[text[0]]
    guard.cities.add(name)
    config = _write(guard.root / name / "city.yaml", text)
    guard.assert_rejected(guard.run("validate", config, timeout=RUN_TIMEOUT), match, config_stage=True)
    assert not Path("/tmp/citykpi-yaml-pwned").exists()
