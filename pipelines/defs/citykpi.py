"""Definitions for the configured cities ($CITYKPI_CITIES, else the demo city)."""

import dagster as dg

from pipelines.assets import build_definitions
from pipelines.cities import configured_cities


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(configured_cities())
