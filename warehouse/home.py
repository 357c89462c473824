"""One home directory for everything citykpi writes.

Layout:
    <home>/raw/<city_id>/<source_id>/<sha256>/   immutable landing-zone snapshots
    <home>/warehouse.duckdb                      the warehouse (DuckDB)
    <home>/releases/<release_id>/                published, immutable releases
    <home>/demo/                                 generated demo cities
    <home>/tmp/                                  work in progress; anything here is disposable
Resolution order: explicit `--home`, then $CITYKPI_HOME, then $XDG_DATA_HOME/citykpi
(default ~/.local/share/citykpi).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

ENV_VAR = "CITYKPI_HOME"


def default_home() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "citykpi"


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def resolve(cls, explicit: Path | str | None = None) -> Home:
        if explicit:
            root = Path(explicit)
        elif os.environ.get(ENV_VAR):
            root = Path(os.environ[ENV_VAR])
        else:
            root = default_home()
        return cls(root.expanduser().resolve())

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def warehouse_path(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    @property
    def demo(self) -> Path:
        return self.root / "demo"

    @property
    def cache(self) -> Path:
        """Disposable files made from immutable inputs (the report's JavaScript, readings from API pages)."""
        return self.root / "cache"

    @property
    def parsed_configs(self) -> Path:
        """City configs' YAML data kept between runs (sources/parsed_configs.py)."""
        return self.cache / "configs"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @contextmanager
    def warehouse(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """The warehouse under this home's lock (see warehouse.db.open_warehouse)."""
        from warehouse.db import open_warehouse

        with open_warehouse(self.root, self.warehouse_path, read_only=read_only) as con:
            yield con

    def ensure(self) -> Home:
        for path in (self.root, self.raw, self.releases, self.tmp):
            path.mkdir(parents=True, exist_ok=True)
        return self

    def clean_tmp(self) -> None:
        """Remove leftovers of killed runs (nothing in tmp/ is ever referenced by a release)."""
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
