"""Partitions of the production Dagster deployment: city (dynamic) x reporting year (static).

City partitions are registered from the city configs by the `city_configs` sensor
(pipelines/automation.py); a city's partition key is its `city.id`. Multi-partition keys read
`<city>|<year>`, e.g. `demo-city|2023` (Dagster orders the dimensions by name).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date

import dagster as dg

from sources.config import LoadedConfig

FIRST_YEAR = 2000
CITY = dg.DynamicPartitionsDefinition(name="city")
YEAR = dg.StaticPartitionsDefinition([str(y) for y in range(FIRST_YEAR, date.today().year + 1)])
CITY_YEAR = dg.MultiPartitionsDefinition({"city": CITY, "year": YEAR})
# core (city) -> out (city x year): every year of a city depends on the city's observations.
CITY_OF_CITY_YEAR = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="city")


def city_year_key(city_id: str, year: int) -> str:
    return str(dg.MultiPartitionKey({"city": city_id, "year": str(year)}))


def run_city_year_keys(configs: Sequence[LoadedConfig]) -> list[str]:
    """The city-year keys of a run over these cities (`citykpi run`): each city's reporting years that are
    partition years; a city with none gets the first partition year, which computes it whole (and says
    that year is not among its reporting years)."""
    partition_years = {int(y) for y in YEAR.get_partition_keys()}
    keys = []
    for loaded in configs:
        years = sorted(set(loaded.config.city.reporting_years) & partition_years) or [min(partition_years)]
        keys += [city_year_key(loaded.city_id, year) for year in years]
    return keys


def years_by_city(partition_keys: Iterable[str]) -> dict[str, list[int]]:
    """{city: [years]} from `<city>|<year>` keys (a single-run backfill hands over many at once)."""
    grouped: dict[str, list[int]] = defaultdict(list)
    for key in partition_keys:
        city, year = _split(key)
        grouped[city].append(year)
    return {city: sorted(years) for city, years in grouped.items()}


def _split(key: str) -> tuple[str, int]:
    # Dimension order is by name: city, then year. City ids are slugs, so they never hold "|".
    city, _, year = key.partition("|")
    return city, int(year)
