"""DuckDB's memory limit on the warehouse (warehouse/db.py: $CITYKPI_WAREHOUSE_MEMORY, default 1GB): DuckDB's
own default (80 % of the machine) let a 1,000-city run keep gigabytes of cached blocks (issue #16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from canonical.errors import CitykpiError
from warehouse.db import MEMORY_ENV, connect


def _limit(path: Path, read_only: bool = False) -> str:
    con = connect(path, read_only=read_only)
    try:
        return str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
    finally:
        con.close()


def test_the_warehouse_opens_with_a_bounded_memory_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MEMORY_ENV, raising=False)
    path = tmp_path / "warehouse.duckdb"
    assert _limit(path) == "953.6 MiB"  # 1GB in DuckDB's binary units
    assert _limit(path, read_only=True) == "953.6 MiB"
    monkeypatch.setenv(MEMORY_ENV, "512MB")
    assert _limit(path) == "488.2 MiB"


def test_a_bad_limit_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_ENV, "lots'; DROP TABLE observations; --")
    with pytest.raises(CitykpiError, match=MEMORY_ENV):
        connect(tmp_path / "warehouse.duckdb")
