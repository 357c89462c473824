"""The production deployment: partitioned assets, quality checks, jobs, schedules and sensors.

Cities are dynamic partitions registered from $CITYKPI_CITIES (else the demo city) by the
`city_configs` sensor, so the definitions load without reading any city config.
"""

import dagster as dg

from pipelines.automation import JOBS, SCHEDULES, SENSORS
from pipelines.checks import QualityResource
from pipelines.city_assets import ASSETS, CHECKS
from pipelines.resources import CitykpiResource


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=ASSETS, asset_checks=CHECKS, jobs=JOBS, schedules=SCHEDULES, sensors=SENSORS,
                          resources={"citykpi": CitykpiResource(), "quality": QualityResource()})
