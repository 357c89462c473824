"""The CLI's tables and small answers: `--version`, `releases list`, cells cut with "…" by one helper,
and quiet exits when the reader of a pipe goes away (`citykpi variables | head`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import REPO_ROOT, citykpi_command, run_cli, subprocess_env

from pipelines.cli import main
from pipelines.texttable import ELLIPSIS, cut, format_table

EXAMPLE = REPO_ROOT / "cities" / "my-city.yaml"


def test_cut_keeps_short_text_and_ends_long_text_in_an_ellipsis() -> None:
    assert cut("Patents", 10) == "Patents"
    assert cut("Wireless Broadband Subscriptions", 10) == "Wireless " + ELLIPSIS
    assert len(cut("x" * 50, 12)) == 12
    assert cut("two\nlines  here", 20) == "two lines here"  # a cell is one line
    assert cut("abc", 0) == ""


def test_format_table_aligns_columns_and_cuts_only_capped_ones() -> None:
    lines = format_table(["name", "n"], [["a very long name indeed", 5], ["short", 12345]],
                         max_widths=[10, None], right=[1])
    assert lines == ["name            n",
                     "a very lo…      5",
                     "short       12345"]


def test_version_names_the_package_and_the_code_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0, result
    assert re.fullmatch(r"citykpi \d+\.\d+\.\d+\S* \(code \S+\)\n", result.stdout), result.stdout


def _fake_release(releases: Path, release_id: str, cities: list[str], years: list[int], rows: int) -> None:
    folder = releases / release_id
    folder.mkdir(parents=True)
    manifest = {"release_id": release_id, "created_at": f"{release_id[:4]}-{release_id[4:6]}-{release_id[6:8]}T"
                f"{release_id[9:11]}:{release_id[11:13]}:{release_id[13:15]}+00:00",
                "cities": [{"id": c} for c in cities], "years": years, "row_counts": {"kpi_values": rows}}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_releases_list_shows_date_cities_years_rows_and_the_latest(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    releases = home / "releases"
    _fake_release(releases, "20261201T101500Z-aaaaaaaa", ["demo-city"], [2022, 2023, 2024], 429)
    many = [f"city-number-{i:02d}" for i in range(12)]
    _fake_release(releases, "20261202T111600Z-bbbbbbbb", many, [2020, 2024], 12345)
    os.symlink("20261202T111600Z-bbbbbbbb", releases / "latest")

    assert main(["--home", str(home), "releases", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["release", "created", "(UTC)", "cities", "years", "rows"]
    first, second = lines[1], lines[2]
    assert first.startswith("20261201T101500Z-aaaaaaaa  2026-12-01 10:15  demo-city")
    assert "2022-2024" in first and first.rstrip().endswith("429") and "latest" not in first
    assert second.endswith("12,345  latest")
    assert "2020, 2024" in second  # years with a gap are listed, not shown as a span
    assert ELLIPSIS in second and "city-number-11" not in second  # forty characters of cities at most
    # Aligned: each column starts at the same offset on every line.
    for column in ("created", "cities", "years"):
        start = lines[0].index(column)
        assert all(line[start - 2:start] == "  " for line in lines[1:]), lines


def test_releases_list_on_an_empty_home_says_so_on_stderr(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(tmp_path / "none"), "releases", "list"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "no releases" in captured.err


def _run_into_closed_pipe(*args: str, home: Path) -> subprocess.CompletedProcess[bytes]:
    """Run citykpi with stdout on a pipe whose reader has already gone: every write fails (EPIPE)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([*citykpi_command(), "--home", str(home), *args], stdout=write_end,
                              stderr=subprocess.PIPE, env=subprocess_env(home), cwd=REPO_ROOT, timeout=300)
    finally:
        os.close(write_end)


def _release_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    for day in range(1, 4):
        _fake_release(home / "releases", f"202612{day:02d}T101500Z-aaaaaaa{day}", ["demo-city"], [2022], 10)
    return home


@pytest.mark.parametrize("command", [["variables"], ["indicators"], ["releases", "list"],
                                     ["coverage", str(EXAMPLE)]], ids=" ".join)
def test_a_closed_pipe_ends_the_command_quietly(command: list[str], tmp_path: Path) -> None:
    result = _run_into_closed_pipe(*command, home=_release_home(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr.decode() == "", result.stderr.decode()


@pytest.mark.parametrize("command", ["variables", "releases list", f"coverage {EXAMPLE}"])
def test_piping_into_head_prints_the_first_lines_and_nothing_else(command: str, tmp_path: Path) -> None:
    home = _release_home(tmp_path)
    cli = " ".join(citykpi_command())
    proc = subprocess.run(["sh", "-c", f"{cli} --home {home} {command} | head -n 1"], capture_output=True,
                          text=True, env=subprocess_env(home), cwd=REPO_ROOT, timeout=300)
    assert proc.returncode == 0, proc
    assert len(proc.stdout.splitlines()) == 1, proc.stdout
    assert proc.stderr == "", proc.stderr
