"""Every worked example in docs/city-config.md is a file in tests/corpus/ that the tests load.

An example is a ```yaml block whose first line is `# corpus: tests/corpus/<dir>/<name>.yaml`; its text
must equal that file (so the docs cannot drift from what is tested), and the file must validate.
The tests of each shape (tests/test_geo_*.py, test_readings_*.py, test_obs_*.py) load these files
and check their values by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sources.config import load_city_config

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "city-config.md"
BLOCK = re.compile(r"```yaml\n(# corpus: (\S+)\n.*?)```", re.DOTALL)
MIN_EXAMPLES = 20  # the worked examples of the geometry, readings and observations sections


def _examples() -> list[tuple[str, str]]:
    return [(path, text) for text, path in BLOCK.findall(DOC.read_text(encoding="utf-8"))]


def test_the_page_has_worked_examples() -> None:
    assert len(_examples()) >= MIN_EXAMPLES


@pytest.mark.parametrize(("path", "text"), _examples(), ids=[p for p, _ in _examples()])
def test_example_equals_its_corpus_file_and_validates(path: str, text: str) -> None:
    file = REPO / path
    assert file.is_file(), f"docs/city-config.md shows {path}, which does not exist"
    assert file.read_text(encoding="utf-8") == text, f"docs/city-config.md's example differs from {path}"
    load_city_config(file)  # locations resolve inside the corpus folder
