"""The one Dagster resource: where the home directory is and how to run."""

from __future__ import annotations

import sys

import dagster as dg

from warehouse.home import Home


class CitykpiResource(dg.ConfigurableResource):
    """Home directory (None: $CITYKPI_HOME or the default), offline mode, progress lines on stderr."""

    home: str | None = None
    offline: bool = False
    progress: bool = False

    def resolved_home(self) -> Home:
        return Home.resolve(self.home)

    def say(self, context: dg.AssetExecutionContext, message: str) -> None:
        context.log.info(message)
        if self.progress:
            print(f"  {message}", file=sys.stderr, flush=True)
