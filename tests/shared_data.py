"""Where the reference material lives: `../shared` beside the project root (never copied in).

Tests that need it call `require_shared("fixtures/...")`, which skips with a clear reason when
the folder is absent (a user's machine), so the suite still passes there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("CITYKPI_SHARED", REPO_ROOT.parent / "shared"))


def require_shared(relative: str) -> Path:
    path = SHARED_DIR / relative
    if not path.exists():
        pytest.skip(f"reference material {relative} not found under {SHARED_DIR} "
                    "(../shared beside the project root; set CITYKPI_SHARED to point elsewhere)")
    return path
