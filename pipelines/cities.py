"""Which city configs the Dagster definitions are built for.

$CITYKPI_CITIES names a config file or a folder of `*.yaml` configs; without it, the bundled
demo city (generated into the home directory on first use).
"""

from __future__ import annotations

import os
from pathlib import Path

from sources.config import LoadedConfig, load_city_config
from warehouse.home import Home

ENV_VAR = "CITYKPI_CITIES"


def config_paths(spec: str | Path) -> list[Path]:
    path = Path(spec).expanduser()
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
    return [path]


def demo_config_path(home: Home, scale: float = 1.0) -> Path:
    from sources.demo.generator import ensure_demo_city

    return ensure_demo_city(home.root, scale=scale)


def configured_cities(home: Home | None = None) -> list[LoadedConfig]:
    spec = os.environ.get(ENV_VAR)
    paths = config_paths(spec) if spec else [demo_config_path(home or Home.resolve())]
    return [load_city_config(p) for p in paths]
