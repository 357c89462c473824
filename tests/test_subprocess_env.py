"""The tests' CLI subprocesses import the checkout under test, not whichever checkout the venv was
installed from (an editable install points the `citykpi` console script at that other checkout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT, RUN_TIMEOUT, subprocess_env

PACKAGES = ["canonical", "sources", "warehouse", "kpis", "quality", "publish", "pipelines"]
CODE = f"import importlib, json; print(json.dumps([importlib.import_module(p).__file__ for p in {PACKAGES!r}]))"


def test_a_subprocess_imports_this_checkout_from_any_folder(tmp_path: Path) -> None:
    # Run from another folder, so the child's sys.path[0] is not the repository: only PYTHONPATH brings it.
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, cwd=tmp_path,
                          env=subprocess_env(tmp_path / "home"), timeout=RUN_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    files = [Path(f) for f in json.loads(proc.stdout)]
    assert len(files) == len(PACKAGES) and all(f.is_relative_to(REPO_ROOT) for f in files), files


def test_pythonpath_keeps_what_was_there_after_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    assert subprocess_env()["PYTHONPATH"].split(os.pathsep) == [str(REPO_ROOT), "/somewhere/else"]
    monkeypatch.delenv("PYTHONPATH")
    assert subprocess_env()["PYTHONPATH"] == str(REPO_ROOT)
