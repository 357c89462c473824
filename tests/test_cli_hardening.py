"""Every exception escaping a command is one line (issue #14): bad input exits 2 naming where it happened,
a bug exits 1 saying so; input too large or too deep for a reader is refused naming the source and file."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_obs_corpus import snapshot_of

import pipelines.cli as cli
import warehouse.load as load
from canonical.errors import SourceDataError
from sources.config import load_city_config


@pytest.fixture(autouse=True)
def _signals_restored() -> Iterator[None]:
    """main() installs SIGINT/SIGTERM handlers and a wakeup fd; put the test runner's back."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    signal.set_wakeup_fd(-1)
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


class _StepFailure(Exception):
    """The shape of Dagster's step failure: the step's key and the user code's exception."""

    def __init__(self, step_key: str, inner: BaseException) -> None:
        super().__init__(f"Error occurred while executing op \"{step_key}\":\n{inner}")
        self.step_key = step_key
        self.user_exception = inner


def _raising(exc: BaseException) -> Callable[[Any], int]:
    def command(args: Any) -> int:
        raise exc
    return command


def _deep() -> RecursionError:
    return RecursionError("maximum recursion depth exceeded\nwhile decoding a JSON array")


@pytest.mark.parametrize(("exc", "code", "line"), [
    (SourceDataError("pop.csv", "expected 2 fields,\nfound 4", row=3, source_id="data"), 2,
     r"citykpi: error: source 'data': pop\.csv, row 3: expected 2 fields,\\nfound 4"),
    (_StepFailure("raw__deep__data", _deep()), 2,
     r"citykpi: error in step raw__deep__data: an input is nested too deeply to read \(maximum recursion depth "
     r"exceeded while decoding a JSON array\)"),
    (_StepFailure("core__big__observations", MemoryError()), 2,
     r"citykpi: error in step core__big__observations: out of memory reading an input \(a file too large for "
     r"this machine\?\)"),
    (_StepFailure("core__x__observations", SourceDataError("x.csv", "bad", source_id="s")), 2,
     r"citykpi: error: source 's': x\.csv: bad"),
    (MemoryError(), 2, r"citykpi: error: out of memory reading an input \(a file too large for this machine\?\)"),
    (ValueError("a bug\nover two lines"), 1,
     r"citykpi: internal error: ValueError: a bug over two lines \(rerun with --debug for the traceback\)"),
], ids=["source-error", "deep-in-step", "memory-in-step", "source-error-in-step", "memory", "bug"])
def test_every_escape_is_one_line_with_its_exit_code(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str], exc: BaseException,
                                                     code: int, line: str) -> None:
    import re

    monkeypatch.setitem(cli.COMMANDS, "sources", _raising(exc))
    assert cli.main(["sources"]) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and re.fullmatch(line, lines[0]), lines
    assert "Traceback" not in captured.err


def test_debug_lets_the_traceback_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli.COMMANDS, "sources", _raising(ValueError("bug")))
    with pytest.raises(ValueError, match="bug"):
        cli.main(["--debug", "sources"])


def _city(tmp_path: Path) -> Path:
    (tmp_path / "pop.csv").write_text("year,value\n2023,1\n", encoding="utf-8")
    config = {"city": {"id": "net", "name": "Net", "country": "DE", "reporting_years": [2023]},
              "sources": [{"id": "data", "kind": "file", "location": "pop.csv", "target": "observations",
                           "observations": {"year_field": "year", "variables": {
                               "value": {"variable": "population", "unit": "person"}}}}]}
    path = tmp_path / "city.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.mark.parametrize(("exc", "message"), [
    (MemoryError(), r"source 'data': pop\.csv: out of memory reading this file \(18 bytes\): it is too large"),
    (RecursionError("maximum recursion depth exceeded"), r"source 'data': pop\.csv: nested deeper than citykpi "
                                                         r"reads"),
], ids=["memory", "recursion"])
def test_parse_source_names_the_source_and_file_for_any_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               exc: BaseException, message: str) -> None:
    """The net under every reader: whatever reader runs out of memory or stack, the error names the input."""
    loaded = load_city_config(_city(tmp_path))
    source = loaded.config.sources[0]
    snapshot = snapshot_of(tmp_path / "pop.csv", loaded.city_id, source.id, source.kind, source.resolved_format)
    assert load.parse_source(loaded, source, snapshot).frame is not None  # the file itself is fine

    def exhausted(*args: Any, **kwargs: Any) -> Any:
        raise exc

    monkeypatch.setattr(load, "read_table", exhausted)
    with pytest.raises(SourceDataError, match=message):
        load.parse_source(loaded, source, snapshot)
