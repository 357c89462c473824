"""Which cities exist: the city configs the CLI and the Dagster deployment work on.

$CITYKPI_CITIES names a config file or a folder; in a folder, every `*.yaml` / `*.yml` and every
`<name>/city.yaml` (a city's config with its data beside it) is a city. Without it, the bundled
demo city (generated into the home directory on first use). Dagster registers one dynamic
partition per city found here (pipelines/automation.py, sensor `city_configs`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from canonical.errors import CitykpiError, ConfigError
from sources.config import LoadedConfig, load_city_config
from warehouse.home import Home

ENV_VAR = "CITYKPI_CITIES"


def config_paths(spec: str | Path) -> list[Path]:
    path = Path(spec).expanduser()
    if path.is_dir():
        flat = [p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()]
        nested = [p / "city.yaml" for p in path.iterdir() if (p / "city.yaml").is_file()]
        return sorted(flat + nested)
    return [path]


def demo_config_path(home: Home, scale: float = 1.0, seed: int | None = None) -> Path:
    from sources.demo.generator import DEFAULT_SEED, ensure_demo_city

    return ensure_demo_city(home.root, scale=scale, seed=DEFAULT_SEED if seed is None else seed)


def demo_cities_folder(home: Home, count: int, scale: float = 1.0, seed: int | None = None) -> Path:
    """Generate `count` distinct demo cities (demo-city-0001, ...) into <home>/demo/ once; return the folder."""
    from sources.demo.generator import DEFAULT_SEED, demo_cities_dir_name, generate_demo_cities

    seed = DEFAULT_SEED if seed is None else seed
    folder = home.root / "demo" / demo_cities_dir_name(scale, seed, count)
    generate_demo_cities(folder, count=count, scale=scale, seed=seed)
    return folder


def load_configs(specs: Sequence[str | Path], *, check_files: bool = True,
                 on_error: Callable[[Path, CitykpiError], None] | None = None,
                 parsed: Path | None = None) -> list[LoadedConfig]:
    """Every config named by `specs` (files or folders); one config per city id.

    Without `on_error` the first broken config (or a second config of a city) raises; with it, that
    config is reported to `on_error` and left out, so it cannot stop the other cities (sensors).
    `parsed`: where the configs' YAML data is kept between runs (`Home.parsed_configs`)."""
    seen: dict[str, LoadedConfig] = {}
    for spec in specs:
        paths = config_paths(spec)
        if not paths:
            raise ConfigError(spec, "", "no city config files (*.yaml, *.yml, */city.yaml) in this folder")
        for path in paths:
            try:
                config = cached_config(path, check_files=check_files, parsed=parsed)
                if config.city_id in seen:
                    raise ConfigError(config.path, "city.id",
                                      f"city {config.city_id!r} is already configured in "
                                      f"{seen[config.city_id].path}; give each city one config")
            except CitykpiError as exc:
                if on_error is None:
                    raise
                on_error(path, exc)
                continue
            seen[config.city_id] = config
    return list(seen.values())


_CACHE: dict[Path, tuple[bytes, LoadedConfig]] = {}


def cached_config(path: Path, *, check_files: bool, parsed: Path | None = None) -> LoadedConfig:
    """load_city_config, parsed again only when the file's content changed: a run over 1,000 cities
    asks for the configs in every stage, and a deployment's sensors every minute. With `check_files`
    the config is always read again (whether the source files exist can change while the config does
    not), and what it read is kept for the later reads without."""
    if not path.is_file():
        return load_city_config(path, check_files=check_files)  # the loader's error names the path
    # Keyed by the resolved path: the CLI names a config through the folder it was given, the Dagster
    # resource by the config's resolved path (LoadedConfig.path).
    key, version = path.resolve(), hashlib.sha256(path.read_bytes()).digest()
    hit = _CACHE.get(key)
    if hit is not None and hit[0] == version and not check_files:
        return hit[1]
    config = load_city_config(path, check_files=check_files, parsed=parsed)
    _CACHE[key] = (version, config)
    return config


def configured_cities(home: Home | None = None, *, check_files: bool = True,
                      on_error: Callable[[Path, CitykpiError], None] | None = None) -> list[LoadedConfig]:
    spec = os.environ.get(ENV_VAR)
    if spec:
        return load_configs([spec], check_files=check_files, on_error=on_error)
    return [load_city_config(demo_config_path(home or Home.resolve()))]


def configured_city(city_id: str, home: Home | None = None) -> LoadedConfig:
    """The config of one city (a Dagster partition key); an error names the cities that exist."""
    configs = {c.city_id: c for c in configured_cities(home, check_files=False)}
    if city_id not in configs:
        raise ConfigError(os.environ.get(ENV_VAR, "demo"), "city.id",
                          f"no city {city_id!r} is configured (cities: {', '.join(sorted(configs))})")
    return configs[city_id]


def config_fingerprint(loaded: LoadedConfig) -> str:
    """SHA-256 over the config and its targets file: a change in either means the city must be recomputed."""
    digest = hashlib.sha256(loaded.path.read_bytes())
    targets = loaded.targets_path
    if targets.is_file():
        digest.update(targets.read_bytes())
    return digest.hexdigest()
