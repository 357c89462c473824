"""The one Dagster resource: where the home directory is, which cities exist and how to run."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import dagster as dg

from pipelines.progress import StageLines
from sources.config import LoadedConfig
from warehouse.home import Home


class CitykpiResource(dg.ConfigurableResource):
    """Home directory (None: $CITYKPI_HOME or the default), offline mode, progress lines on stderr,
    whether an unchanged run skips its release (`citykpi run` without `--force`), the city config
    files (None: $CITYKPI_CITIES, else the demo; `citykpi run` names the configs it was given), the
    citykpi run id the stages record (None: the Dagster run's id; `citykpi run` spans several Dagster
    runs, one per partitions definition, under one citykpi run) and whether a stage over many cities
    still says each city's lines (`citykpi run --every-city`; else pipelines/progress.py groups them)."""

    home: str | None = None
    offline: bool = False
    progress: bool = False
    skip_unchanged_release: bool = False
    configs: list[str] | None = None
    run_id: str | None = None
    every_city: bool = False

    def resolved_home(self) -> Home:
        return Home.resolve(self.home)

    def stage_run_id(self, context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> str:
        return self.run_id or context.run.run_id

    def all_cities(self) -> list[LoadedConfig]:
        """Every configured city (configs read once per file version: pipelines.cities caches them)."""
        from pipelines.cities import configured_cities, load_configs

        if self.configs is not None:
            return load_configs(self.configs, check_files=False)
        return configured_cities(self.resolved_home(), check_files=False)

    def cities(self, city_ids: Sequence[str]) -> list[LoadedConfig]:
        """The configs of the cities partition keys name, in that order; an error names the cities that exist."""
        from canonical.errors import ConfigError
        from pipelines.cities import ENV_VAR

        configs = {c.city_id: c for c in self.all_cities()}
        unknown = [c for c in city_ids if c not in configs]
        if unknown:
            where = "the configs given" if self.configs is not None else ENV_VAR + " (else the demo)"
            raise ConfigError(where, "city.id", f"no city {', '.join(map(repr, unknown))} is configured "
                                                f"(cities: {', '.join(sorted(configs))})")
        return [configs[c] for c in city_ids]

    def city(self, city_id: str) -> LoadedConfig:
        """The config of the city a partition key names."""
        return self.cities([city_id])[0]

    def lines(self, context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, cities: int,
              name: str = "") -> StageLines:
        """The progress lines of stage `name` over `cities` cities (pipelines/progress.py)."""
        return StageLines(lambda message: self.say(context, message), cities, self.every_city, name)

    def say(self, context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, message: str) -> None:
        context.log.info(message)
        if self.progress:
            print(f"  {message}", file=sys.stderr, flush=True)
