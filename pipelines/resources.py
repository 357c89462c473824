"""The one Dagster resource: where the home directory is and how to run."""

from __future__ import annotations

import sys

import dagster as dg

from sources.config import LoadedConfig
from warehouse.home import Home


class CitykpiResource(dg.ConfigurableResource):
    """Home directory (None: $CITYKPI_HOME or the default), offline mode, progress lines on stderr,
    and whether an unchanged run skips its release (`citykpi run` without `--force`)."""

    home: str | None = None
    offline: bool = False
    progress: bool = False
    skip_unchanged_release: bool = False

    def resolved_home(self) -> Home:
        return Home.resolve(self.home)

    def city(self, city_id: str) -> LoadedConfig:
        """The config of the city a partition key names (from $CITYKPI_CITIES, else the demo)."""
        from pipelines.cities import configured_city

        return configured_city(city_id, self.resolved_home())

    def say(self, context: dg.AssetExecutionContext, message: str) -> None:
        context.log.info(message)
        if self.progress:
            print(f"  {message}", file=sys.stderr, flush=True)
