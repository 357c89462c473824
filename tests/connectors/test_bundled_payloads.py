"""The bundled payload layer is what `make_payloads.py` writes, stays small, and copies nothing real."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from types import ModuleType

from shared_data import require_shared

from connectors.layers import BUNDLED_DIR, SHARED_EXPECTED

HAND_WRITTEN = {"make_payloads.py", "expected.json", "README.md"}


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_payloads", BUNDLED_DIR / "make_payloads.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bundled_files() -> dict[str, bytes]:
    return {p.relative_to(BUNDLED_DIR).as_posix(): p.read_bytes() for p in sorted(BUNDLED_DIR.rglob("*"))
            if p.is_file() and p.name not in HAND_WRITTEN and "__pycache__" not in p.parts}


def test_the_committed_payloads_are_exactly_what_the_generator_writes() -> None:
    built = generator().build()
    committed = bundled_files()
    assert sorted(committed) == sorted(built), "run tests/connectors/payloads/make_payloads.py"
    changed = [name for name in built if built[name] != committed[name]]
    assert changed == [], f"stale bundled payloads {changed}: run tests/connectors/payloads/make_payloads.py"


def test_the_bundled_layer_is_small() -> None:
    sizes = {name: len(body) for name, body in bundled_files().items()}
    assert max(sizes.values()) < 16_000, sizes
    assert sum(sizes.values()) < 300_000


def test_expected_figures_cover_the_same_facts_for_both_layers() -> None:
    bundled = json.loads((BUNDLED_DIR / "expected.json").read_text(encoding="utf-8"))

    def shape(value: object) -> object:
        return {k: shape(v) for k, v in value.items()} if isinstance(value, dict) else None

    assert shape(bundled) == shape(SHARED_EXPECTED)


def test_no_bundled_file_is_a_copy_of_a_real_one() -> None:
    shared = require_shared("fixtures")
    real = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in shared.rglob("*") if p.is_file()}
    copies = {name: str(real[digest]) for name, body in bundled_files().items()
              if (digest := hashlib.sha256(body).hexdigest()) in real}
    assert copies == {}


def test_no_bundled_file_carries_a_real_row() -> None:
    """Spot check, without ../shared: distinctive values of the real recordings appear in no bundled file."""
    real_values = ("100009424", "uk-continental-shelf", "Victory Farm", "Bose Brucke", "Del Norte", "Saint-Leu",
                   "317146077", "46526.2", "Sauer Park", "cow001", "3613495")
    found = [(name, value) for name, body in bundled_files().items()
             for value in real_values if value in body.decode("utf-8", errors="replace")]
    assert found == []
