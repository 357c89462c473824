"""City configuration: one YAML file per city, validated on load.

The file names the city, its reporting years and its sources. Each source says how to fetch it
(`kind`), how to read it (`format`), what canonical table it feeds (`target`) and how its fields
map to canonical variables and units. Errors name the file and the key path, e.g.
``cities/demo.yaml at sources[1].observations.variables.Haushalte.unit: ...``.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from canonical.errors import TOO_DEEP, ConfigError

CONFIG_VERSION: Literal[1] = 1
SLUG = r"^[a-z0-9][a-z0-9_-]*$"
SourceFormat = Literal["csv", "excel", "parquet", "json", "geojson", "ngsi-ld", "gtfs", "xml", "shapefile",
                       "geopackage", "osm", "osm_pbf"]
SourceTarget = Literal["observations", "areas", "points", "readings", "transit_feed", "street_network"]
# What an OpenStreetMap street extract may be (target street_network, sources/parsers/osm_streets.py):
# Overpass JSON, OSM XML, OSM PBF.
STREET_FORMATS: tuple[str, ...] = ("json", "osm", "osm_pbf")
SourceKind = Literal["file", "http", "ckan", "socrata", "opendatasoft", "worldbank", "ngsi_ld", "ngsi_v2", "openaq",
                     "eurostat", "overpass"]
# Kinds whose endpoint is built from their own options block, not from `location`.
API_KINDS: tuple[str, ...] = ("ckan", "socrata", "opendatasoft", "worldbank", "ngsi_ld", "ngsi_v2", "openaq",
                              "eurostat", "overpass")
# Paged JSON kinds that may feed a target besides observations (entities / stations as points).
_PAGED_TARGETS: dict[str, tuple[str, ...]] = {"ngsi_ld": ("points", "observations", "readings"),
                                              "ngsi_v2": ("points", "observations", "readings"),
                                              "openaq": ("points", "observations", "readings")}
NETWORK_KINDS: tuple[str, ...] = ("http", *API_KINDS)
SECRET_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Header names that carry credentials: their value must come from the environment.
AUTH_HEADERS = frozenset({"authorization", "proxy-authorization", "x-app-token", "x-api-key", "apikey",
                          "x-ckan-api-key", "x-ckan-api-token", "cookie"})
HTTP_URL = r"^https?://[^\s/?#]+(/[^\s?#]*)?$"

_EXTENSION_FORMATS: dict[str, SourceFormat] = {
    ".csv": "csv",
    ".txt": "csv",
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".parquet": "parquet",
    ".json": "json",
    ".geojson": "geojson",
    ".jsonld": "ngsi-ld",
    ".zip": "gtfs",
    ".shp": "shapefile",
    ".gpkg": "geopackage",
    ".osm": "osm",
    ".pbf": "osm_pbf",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CityInfo(_Strict):
    id: Annotated[str, Field(pattern=SLUG, description="Stable slug used in every table, e.g. 'demo-city'.")]
    name: str = Field(min_length=1)
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code.")]
    reporting_years: list[int] = Field(min_length=1, description="Years the city reports KPIs for.")

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        from sources.iso_countries import ISO_3166_ALPHA2

        if value not in ISO_3166_ALPHA2:
            raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
        return value

    @field_validator("reporting_years")
    @classmethod
    def _plausible_years(cls, years: list[int]) -> list[int]:
        for year in years:
            if not 1990 <= year <= 2100:
                raise ValueError(f"year {year} is outside 1990-2100")
        if len(set(years)) != len(years):
            raise ValueError("reporting_years contains duplicates")
        return sorted(years)


class VariableMapping(_Strict):
    """Where a canonical variable comes from in a source and which unit the source uses."""

    variable: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    unit: str = Field(min_length=1, description="Unit as published by the source, e.g. 'acre', 'gal'.")
    data_point: str | None = Field(default=None, description="Sub-series, e.g. 'PM2.5' or 'recycled'.")
    columns: list[str] | None = Field(default=None, min_length=1, description=(
        "Wide layout only: the value is the sum of these columns (empty cells are skipped; all empty is an "
        "empty value), and the key of this entry is only a label."))
    share_of: str | None = Field(default=None, description=(
        "The published value is a share of this column's number (e.g. of households): value = share x "
        "that column, in `unit` (the unit of that column's count)."))
    share_in: Literal["percent", "fraction"] = Field(default="percent", description=(
        "With share_of: the share is written as a percentage (0-100) or a fraction (0-1)."))


class CsvOptions(_Strict):
    """CSV dialect. Every field left out is detected from the file."""

    delimiter: str | None = Field(default=None, min_length=1, max_length=1)
    decimal: Literal[".", ","] | None = None
    thousands: Literal[",", ".", " ", "'", ""] | None = None
    encoding: str | None = None
    skip_rows: int = Field(default=0, ge=0)


class ExcelOptions(_Strict):
    sheet: str | int = 0
    header_row: int = Field(default=1, ge=1, description="1-based row holding the column names.")


class AggregateCompleteness(_Strict):
    """When an aggregated value counts as complete: its rows cover `count` distinct values of `field`."""

    field: str
    count: int = Field(ge=1, description="e.g. 12 for the months of a year")


# Markers portals write for "no value": read as empty cells (counted, never zeros, never errors).
# Compared after trimming, ignoring case. Eurostat writes ':', UN/OECD tables '..', Spanish 'n.d.'.
DEFAULT_MISSING_VALUES: tuple[str, ...] = ("NA", "N/A", "n.a.", "n.d.", "n/d", "-", "--", "\u2013", "\u2014",
                                           "..", "...", ":", "NULL", "NaN", "#N/A")
AggregateMethod = Literal["sum", "mean", "count"]


class AggregatePeriods(_Strict):
    """The time grain of the rows an `aggregate` combines: which column tells a year's periods apart."""

    field: str = Field(description=(
        "Column whose distinct values are the periods of a year: a month number or name, '2018 / 07', a date."))
    per_year: int = Field(ge=2, le=366, description=(
        "Periods in a whole year: 4 quarters, 12 months, 52 weeks, 365 days."))
    required: int | None = Field(default=None, ge=1, le=366, description=(
        "How many periods a year needs for its value to be published. Default: every period (per_year) "
        "for sum and count; 75 % of them, rounded up, for a mean (9 of 12 months; the rule for hourly readings)."))

    @model_validator(mode="after")
    def _required_fits(self) -> AggregatePeriods:
        if self.required is not None and self.required > self.per_year:
            raise ValueError(f"required ({self.required}) is more than per_year ({self.per_year})")
        return self


class ObservationsMapping(_Strict):
    """Tabular statistics: one value per (year, variable[, area]).

    `layout: wide` means one column per variable (keys of `variables` are column names);
    `layout: long` means a code column and a value column (keys of `variables` are codes).
    """

    layout: Literal["wide", "long"] = "wide"
    year_field: str | None = Field(default=None, description="Column holding the year (required unless `year`).")
    area_field: str | None = None
    area_type: str = "district"
    variable_field: str | None = None
    value_field: str | None = None
    variables: dict[str, VariableMapping] = Field(min_length=1)
    year: int | None = Field(default=None, ge=1900, le=2100, description=(
        "A constant year for every row (a one-off survey); excludes `year_field`."))
    year_pattern: str | None = Field(default=None, description=(
        "Regular expression with one group capturing the four-digit year in `year_field`, e.g. "
        "'^Annual Average (\\d{4})$' or '^(\\d{4}) / \\d{2}$'. Rows that do not match are skipped and counted."))
    where: dict[str, str | list[str]] = Field(default_factory=dict, description=(
        "Keep only rows whose field equals the value (or one of the listed values); other rows are "
        "counted as filtered, e.g. {Geo Type Name: Citywide}."))
    aggregate: AggregateMethod | list[AggregateMethod] | None = Field(default=None, description=(
        "Combine every row with the same (year, variable, data point, area) into one observation: "
        "sum (monthly tonnage -> annual), mean (monthly rates -> annual average; needs `periods`) or count "
        "(rows with a value, e.g. persons killed). Two steps [first, then] (needs `periods` with a field): "
        "first within each period, then across the periods, e.g. [sum, mean] = districts summed per month, "
        "then the mean of the months."))
    aggregate_complete: AggregateCompleteness | None = Field(default=None, description=(
        "Older spelling of periods: {field, per_year: count, required: count}. With `aggregate`: keep a "
        "combined value only when its rows cover `count` distinct values of `field` (e.g. 12 months); "
        "incomplete years are withheld and listed."))
    periods: AggregatePeriods | Literal["annual"] | None = Field(default=None, description=(
        "With `aggregate`: the time grain of the rows. 'annual': every row is already a whole year's figure "
        "(rows of districts or neighbourhoods); {field, per_year, required}: sub-annual rows, and a year "
        "whose rows cover fewer than `required` periods is withheld and listed in the load report."))
    weight_field: str | None = Field(default=None, description=(
        "With a mean over rows (aggregate: mean, or [mean, ...]): weight each row's value by this column of "
        "the same row (population, households). Rows with an empty weight are left out and counted."))
    duplicates: Literal["keep", "drop", "error"] = Field(default="keep", description=(
        "Rows identical cell for cell to an earlier row (among the rows `where` keeps): keep (default; "
        "they are real records, e.g. two persons alike), drop (a publishing artefact), or error. Counted "
        "and listed in the load report either way."))
    missing_values: list[str] | None = Field(default=None, description=(
        "Cell texts meaning 'no value' (compared trimmed, ignoring case), read as empty cells and counted "
        "in the report, never as zeros. Default: NA, N/A, n.a., n.d., n/d, -, --, en/em dash, .., ..., :, "
        "NULL, NaN, #N/A. [] turns markers off."))
    period_year: Literal["start", "end"] | None = Field(default=None, description=(
        "How a period spanning years in the year field ('2010-2014', '2018/19', 'Winter 2010-11' through "
        "year_pattern) is assigned to a reporting year: its first or its last year. Without it such a "
        "period is an error. The period is stated in the observation's source_record."))
    records_path: str | None = Field(default=None, description=(
        "JSON files: dotted path to the array of records (e.g. 'response.data.items'). Without it CKAN "
        "(result.records), OpenDataSoft (results), Socrata (an array) and {records|results|data|value} "
        "envelopes are recognised."))

    @model_validator(mode="after")
    def _observation_options(self) -> ObservationsMapping:
        if (self.year is None) == (self.year_field is None):
            raise ValueError("give exactly one of year_field (a column) and year (a constant)")
        if self.year_pattern is not None:
            if self.year_field is None:
                raise ValueError("year_pattern needs year_field")
            try:
                groups = re.compile(self.year_pattern).groups
            except re.error as exc:
                raise ValueError(f"year_pattern is not a valid regular expression: {exc}") from None
            if groups != 1:
                raise ValueError("year_pattern needs exactly one group capturing the year")
        if self.aggregate_complete is not None and self.aggregate is None:
            raise ValueError("aggregate_complete needs aggregate")
        self._aggregate_options()
        for key, vm in self.variables.items():
            if vm.columns is not None and self.layout != "wide":
                raise ValueError(f"variables.{key}.columns only applies to layout 'wide'")
        return self._long_needs_fields()

    def used_columns(self) -> set[str]:
        """Every column the mapping reads (a reader may leave the others' cells out)."""
        names = {self.year_field, self.area_field, self.variable_field, self.value_field, self.weight_field,
                 *self.where}
        periods = self.resolved_periods
        if periods is not None:
            names.add(periods.field)
        if self.layout == "wide":
            for key, vm in self.variables.items():
                names.update(vm.columns or [key])
        names.update(vm.share_of for vm in self.variables.values())
        return {name for name in names if name}

    @property
    def aggregate_steps(self) -> list[str]:
        """`aggregate` as a list of one or two steps ([] without aggregate)."""
        if self.aggregate is None:
            return []
        return [self.aggregate] if isinstance(self.aggregate, str) else list(self.aggregate)

    @property
    def resolved_periods(self) -> AggregatePeriods | None:
        """`periods` as a block (None for 'annual' or none), with aggregate_complete read as one."""
        if self.aggregate_complete is not None:
            complete = self.aggregate_complete
            return AggregatePeriods(field=complete.field, per_year=max(2, complete.count), required=complete.count)
        return self.periods if isinstance(self.periods, AggregatePeriods) else None

    def _aggregate_options(self) -> None:
        steps = self.aggregate_steps
        if self.aggregate is None:
            for name in ("periods", "weight_field"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} needs aggregate")
            return
        if not 1 <= len(steps) <= 2:
            raise ValueError("aggregate is one method (sum, mean, count) or two steps [within periods, across periods]")
        if self.periods is not None and self.aggregate_complete is not None:
            raise ValueError("give periods or aggregate_complete (its older spelling), not both")
        if "mean" in steps and self.periods is None and self.aggregate_complete is None:
            raise ValueError("a mean needs periods: 'annual' when every row is a whole year's figure, or "
                             "{field, per_year} for monthly, quarterly or daily rows (a year with too few periods "
                             "is then withheld instead of averaging one month)")
        if len(steps) == 2 and self.resolved_periods is None:
            raise ValueError("a two-step aggregate needs periods with a field (the steps are within and across "
                             "its periods)")
        if self.weight_field is not None and steps[0] != "mean":
            raise ValueError("weight_field needs a mean over rows: aggregate mean or [mean, ...]")
        for key, vm in self.variables.items():
            if steps[0] == "count" and (vm.columns is not None or vm.share_of is not None):
                raise ValueError(f"variables.{key}: count counts the rows with a value in the entry's column; "
                                 "columns and share_of do not apply")

    def _long_needs_fields(self) -> ObservationsMapping:
        if self.layout == "long" and (self.variable_field is None or self.value_field is None):
            raise ValueError("layout 'long' needs variable_field and value_field")
        if self.layout == "wide" and (self.variable_field or self.value_field):
            raise ValueError("variable_field/value_field only apply to layout 'long'")
        return self


class PopulationOption(_Strict):
    """A population grid from one source: each feature's population, loaded as `population`
    observations of the feature (area type = the areas' `area_type` / the points' `point_type`)."""

    field: str = Field(description="Column / property holding the feature's population.")
    unit: str = Field(default="person", description="Unit as published, e.g. 'person' or 'thousand persons'.")
    year: int | None = Field(default=None, ge=1900, le=2100, description="The year of every value.")
    year_field: str | None = Field(default=None, description="Column / property holding the year instead.")

    @model_validator(mode="after")
    def _one_year(self) -> PopulationOption:
        if (self.year is None) == (self.year_field is None):
            raise ValueError("population needs exactly one of 'year' or 'year_field'")
        return self

    @field_validator("unit")
    @classmethod
    def _person_unit(cls, unit: str) -> str:
        from canonical.units import UnitError, conversion_factor

        try:
            conversion_factor(unit, "person", variable="population")
        except UnitError as exc:
            raise ValueError(str(exc)) from None
        return unit


class _GeometryOptions(_Strict):
    """How a geometry file's coordinates are read (shared by areas and points)."""

    crs: str | None = Field(default=None, description=(
        "CRS of the coordinates when the file declares none (CSV x/y columns, a shapefile without .prj), "
        "e.g. 'EPSG:25830'. A file that declares another CRS is an error."))
    coordinate_order: Literal["lon_lat", "lat_lon"] = Field(default="lon_lat", description=(
        "Axis order of the coordinates as published: lon_lat (x, y; GeoJSON, shapefiles) or lat_lon. Tables "
        "name their axes with lon_field/lat_field or x_field/y_field instead."))
    layer: str | None = Field(default=None, description=(
        "GeoPackage layer (or the member of a zip holding several shapefiles); default: the only one."))
    population: PopulationOption | None = Field(default=None, description=(
        "Read each feature's population too: the source is then a population grid (see docs/city-config.md)."))

    @field_validator("crs")
    @classmethod
    def _known_crs(cls, value: str | None) -> str | None:
        if value is not None:
            from pyproj import CRS
            from pyproj.exceptions import CRSError

            try:
                CRS.from_user_input(value)
            except CRSError as exc:
                raise ValueError(f"unknown CRS {value!r}: {exc}") from None
        return value


class AreasMapping(_GeometryOptions):
    """Polygons (districts, green areas, population cells) from GeoJSON, shapefiles or GeoPackages."""

    area_type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")] = "district"
    id_field: str
    name_field: str | None = None


TransitMode = Literal["tram", "subway", "metro", "rail", "bus", "ferry", "cable_tram", "aerial_lift", "funicular",
                      "trolleybus", "monorail"]


class TransitStopList(_Strict):
    """A plain stop list (no timetable) feeding the transit-access indicators when there is no GTFS feed."""

    mode: TransitMode | None = Field(default=None, description="The mode of every stop, e.g. 'subway'.")
    mode_field: str | None = Field(default=None, description="Column holding each stop's mode code.")
    modes: dict[str, TransitMode] | None = Field(default=None, description=(
        "With mode_field: code as published -> mode, e.g. {'4': subway, '10': tram}. Rows with other "
        "codes are skipped and counted."))

    @model_validator(mode="after")
    def _one_way(self) -> TransitStopList:
        if (self.mode is None) == (self.mode_field is None):
            raise ValueError("transit needs exactly one of 'mode' or 'mode_field'")
        if (self.mode_field is None) != (self.modes is None):
            raise ValueError("'mode_field' and 'modes' go together")
        return self


StationType = Literal["background", "traffic", "industrial"]
STATION_TYPES: tuple[str, ...] = ("background", "traffic", "industrial")


class PointsMapping(_GeometryOptions):
    """Point features (monitoring stations, stops, population cells): an id and a location."""

    point_type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    id_field: str = "id"
    name_field: str | None = Field(default=None, description="Column / property holding the name.")
    lon_field: str | None = Field(default=None, description=(
        "Tabular points: column of decimal degrees or degree-minute-second text (3°42'43.91\"O)."))
    lat_field: str | None = None
    x_field: str | None = Field(default=None, description="Tabular points: projected x (easting); needs `crs`.")
    y_field: str | None = Field(default=None, description="Tabular points: projected y (northing).")
    transit: TransitStopList | None = Field(default=None, description=(
        "The points are public transport stops without a timetable (point_type must be transit_stop)."))
    station_type_field: str | None = Field(default=None, description=(
        "Monitoring stations: column / property holding each station's type (background, traffic or "
        "industrial, any case; other codes through `station_type_codes`). An empty cell is an unknown type. "
        "Read from file sources (CSV, Excel, GeoJSON, shapefiles, GeoPackages); for API stations use "
        "`station_types`."))
    station_type_codes: dict[str, StationType] | None = Field(default=None, description=(
        "With station_type_field: code as published -> type, e.g. {UB: background, UT: traffic, "
        "S: background}. A code neither here nor a type name is an error naming the row."))
    station_types: dict[str, StationType] | None = Field(default=None, description=(
        "Station id -> type, for stations whose source does not say (overrides station_type_field). "
        "The city annual mean and 11.6.2 use background stations when types are known "
        "(docs/city-config.md)."))

    @model_validator(mode="after")
    def _coordinate_fields(self) -> PointsMapping:
        if (self.lon_field is None) != (self.lat_field is None):
            raise ValueError("'lon_field' and 'lat_field' go together")
        if (self.x_field is None) != (self.y_field is None):
            raise ValueError("'x_field' and 'y_field' go together")
        if self.lon_field is not None and self.x_field is not None:
            raise ValueError("give either lon_field/lat_field or x_field/y_field, not both")
        if self.x_field is not None and self.crs is None:
            raise ValueError("x_field/y_field need 'crs' (e.g. 'EPSG:25830')")
        if (self.lon_field or self.x_field) and self.coordinate_order != "lon_lat":
            raise ValueError("coordinate_order is for files with geometry; in a table, lon_field/lat_field "
                             "(or x_field/y_field) name the columns of each axis")
        if self.transit is not None and self.point_type != "transit_stop":
            raise ValueError("a transit stop list needs point_type 'transit_stop'")
        if self.station_type_codes is not None and self.station_type_field is None:
            raise ValueError("'station_type_codes' needs 'station_type_field'")
        return self


class ReadingsMapping(_Strict):
    """Time-stamped sensor readings: station, time, variable code, value, in one of three layouts.

    `layout: long` (default): one reading per row (Parquet or CSV / Excel columns, or fields of JSON
    records and API responses, dotted for nested ones, e.g. OpenAQ `period.datetimeFrom.utc`). NGSI
    entities (NGSI v2, NGSI-LD and its temporal API) with `variable_field: attribute` are read one
    reading per attribute (instance) named in `variables`: `value_field` and `time_field` are looked
    up in the attribute instance first (`value`, `observedAt`), then on the entity (`dateObserved`),
    `station_field` on the entity (`id`, `refPointOfInterest`).
    `layout: wide`: one column per variable (keys of `variables` are column names).
    `layout: wide_hours`: one row per station, variable and day, one column per hour
    (`hour_columns`, e.g. H01..H24) with optional per-hour validity flags (`flag_columns`).
    """

    layout: Literal["long", "wide", "wide_hours"] = Field(default="long", description=(
        "long: one reading per row; wide: one column per variable (keys of `variables` are column names); "
        "wide_hours: one row per station, variable and day with one column per hour (`hour_columns`)."))
    station_field: str | None = Field(default=None, description=(
        "Station id, e.g. station_id, or id (NGSI entity id). Give this or `station`."))
    station: str | None = Field(default=None, description=(
        "One station id for every reading, when the file holds a single station's readings (e.g. an OpenAQ "
        "sensors/<id>/measurements response saved to a file)."))
    time_field: str | None = Field(default=None, description=(
        "Time of the reading (long, wide); the day (wide_hours, or give `date_fields`). Read with "
        "`time_format`, else as ISO 8601; a time without an offset is in `time_zone`."))
    date_fields: list[str] | None = Field(default=None, min_length=3, max_length=3, description=(
        "wide_hours: the day in three columns, year, month, day (e.g. [ANO, MES, DIA]), instead of time_field."))
    time_format: str | None = Field(default=None, description=(
        "strptime format of time_field, e.g. '%d/%m/%Y %H:%M' (wide_hours: of the day, e.g. '%d/%m/%Y'). "
        "Default: ISO 8601 (2022-10-01T13:00:00, optionally with an offset)."))
    time_zone: str = Field(default="UTC", description=(
        "IANA time zone of times written without an offset, e.g. Europe/Madrid (summer time included) "
        "or Etc/GMT-1 (UTC+1 all year). Stored as UTC. A local time that falls twice (clocks going back) "
        "is the first of the two; one that does not exist (clocks going forward) with a value is an error."))
    variable_field: str | None = Field(default=None, description=(
        "Code of the variable (long, wide_hours); `attribute` for NGSI entity attributes."))
    value_field: str | None = Field(default=None, description="long: the value; `value` for NGSI attributes.")
    hour_columns: str = Field(default="H{hh}", description=(
        "wide_hours: the hour columns' names, {hh} = two-digit hour number, {h} = unpadded."))
    hours: Literal["ending", "beginning"] = Field(default="ending", description=(
        "wide_hours: hour columns numbered 1..24 by the hour they end (H01 = 00:00-01:00) or 0..23 by the "
        "hour they begin (H00 = 00:00-01:00). A reading is stored at the start of its hour."))
    flag_columns: str | None = Field(default=None, description=(
        "wide_hours: per-hour validity flag columns, e.g. 'V{hh}' (V01..V24). A value whose flag is not in "
        "`valid_flags` counts as missing (`flagged_invalid` in the load report)."))
    flag_field: str | None = Field(default=None, description=(
        "long: a validity flag column; a value whose flag is not in `valid_flags` counts as missing."))
    valid_flags: list[str] = Field(default_factory=lambda: ["V"], min_length=1, description=(
        "Flag values that mark a valid reading (with flag_columns / flag_field)."))
    duplicates: Literal["error", "first", "mean"] = Field(default="error", description=(
        "Two readings of one station and variable code at the same time: error (names the file, station "
        "and first hours), keep the first in file order, or their mean. Counted in the load report."))
    invalid_values: Literal["error", "skip"] = Field(default="error", description=(
        "A value that is not a finite number (e.g. 'n/a'): error naming file, row and field, or skip it "
        "(counted as `unreadable_values` in the load report). An empty cell is always a missing value."))
    variables: dict[str, VariableMapping] = Field(min_length=1)
    sampling: Literal["hourly", "daily"] = Field(default="hourly", description=(
        "hourly: continuous monitors, an annual mean needs 75 % of the year's hours; daily: samplers with "
        "one value per day (e.g. gravimetric PM), an annual mean needs 75 % of the year's days."))

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}, e.g. UTC, Europe/Madrid, Etc/GMT-1") from None
        return value

    @model_validator(mode="after")
    def _fields_match_layout(self) -> ReadingsMapping:
        if (self.station_field is None) == (self.station is None):
            raise ValueError("give station_field (a column) or station (one id for the whole file)")
        if self.layout == "wide_hours":
            if (self.time_field is None) == (self.date_fields is None):
                raise ValueError("layout 'wide_hours' needs time_field (the day) or date_fields [year, month, day]")
            if self.variable_field is None or self.value_field is not None or self.flag_field is not None:
                raise ValueError("layout 'wide_hours' needs variable_field and takes hour_columns / flag_columns, "
                                 "not value_field or flag_field")
            for pattern in filter(None, (self.hour_columns, self.flag_columns)):
                if "{hh}" not in pattern and "{h}" not in pattern:
                    raise ValueError(f"{pattern!r} must hold {{hh}} or {{h}} (the hour number)")
            return self
        if self.time_field is None or self.date_fields is not None:
            raise ValueError(f"layout {self.layout!r} needs time_field (date_fields are for wide_hours)")
        if self.flag_columns is not None:
            raise ValueError("flag_columns apply to layout 'wide_hours'; use flag_field")
        if self.layout == "long" and (self.variable_field is None or self.value_field is None):
            raise ValueError("layout 'long' needs variable_field and value_field")
        if self.layout == "wide" and (self.variable_field or self.value_field or self.flag_field):
            raise ValueError("layout 'wide' reads one column per variable: no variable_field, value_field "
                             "or flag_field")
        return self


class HttpOptions(_Strict):
    """How networked kinds talk HTTP. Defaults suit public portals; tests shrink the waits."""

    headers: dict[str, str] = Field(default_factory=dict, description=(
        "Request headers. Secrets are referenced as ${ENV_VAR} and read from the environment at fetch "
        "time, e.g. {X-App-Token: '${SOCRATA_APP_TOKEN}'}; they are sent only to the source's own host."))
    timeout: float = Field(default=60.0, gt=0, le=3600, description="Seconds to connect / wait for data.")
    deadline: float = Field(default=900.0, gt=0, le=86400, description=(
        "Total seconds one request may take (connect, first byte, whole body), however slowly the bytes "
        "arrive; `timeout` only bounds each wait. A request past it is retried like a timeout."))
    source_deadline: float = Field(default=7200.0, gt=0, le=7 * 86400, description=(
        "Total seconds fetching one source may take: every page, attempt and backoff wait."))
    attempts: int = Field(default=5, ge=1, le=20, description="Tries per request (timeouts, 5xx, 429).")
    retry_wait_initial: float = Field(default=1.0, ge=0, description="First backoff in seconds (then x2).")
    retry_wait_max: float = Field(default=60.0, ge=0, description="Longest backoff between tries.")
    retry_jitter: float = Field(default=1.0, ge=0, description="Random seconds added to each backoff.")
    retry_after_max: float = Field(default=300.0, ge=0, description="Cap on a server's Retry-After wait.")
    retry_total: float = Field(default=1800.0, gt=0, description="Seconds one request may spend retrying.")
    max_pages: int = Field(default=2000, ge=1, description="A paged fetch stopping beyond this is an error.")
    max_bytes: int = Field(default=1 << 30, ge=1, description="Largest response body accepted, in bytes.")
    content_types: list[str] | None = Field(default=None, description=(
        "Accepted Content-Type values (without parameters); default: the usual ones for the format."))

    @field_validator("headers")
    @classmethod
    def _secrets_from_environment(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name):
                raise ValueError(f"{name!r} is not a valid header name")
            if "${" in SECRET_REF.sub("", value):
                raise ValueError(f"header {name!r}: write an environment reference as ${{NAME}}")
            if name.lower() in AUTH_HEADERS and not SECRET_REF.search(value):
                raise ValueError(f"header {name!r} carries a credential: put it in an environment variable "
                                 f"and write {name}: \"${{MY_TOKEN}}\" (secrets never go in the config)")
        return headers


# Query parameters that carry a credential: a URL holding one is refused like a literal auth header.
CREDENTIAL_PARAMS = frozenset({"api_key", "apikey", "api-key", "key", "token", "access_token", "auth", "auth_token",
                               "app_token", "$$app_token", "password", "passwd", "pwd", "secret", "client_secret",
                               "signature", "sig", "session", "sessionid", "private_token", "refresh_token",
                               "subscription-key", "x-api-key"})


def url_credentials(url: str) -> str | None:
    """Why `url` holds a literal credential (user:password@, ?api_key=...), or None."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is not None or parts.password is not None:
        return "a user name or password (user:password@)"
    return param_credentials(dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True)))


def param_credentials(params: Mapping[str, object]) -> str | None:
    """Why a block of query parameters holds a literal credential (a name in CREDENTIAL_PARAMS), or None."""
    for name in params:
        if name.lower() in CREDENTIAL_PARAMS:
            return f"the credential parameter {name!r}"
    return None


# A credential name written as an assignment or comparison inside free query text (SoQL / ODSQL `where`,
# NGSI `q`): `api_key='abc'`, `token == "abc"`. The name must stand alone (not `token_count`).
_TEXT_CREDENTIAL = re.compile(
    r"(?<![A-Za-z0-9_$-])(" + "|".join(re.escape(name) for name in sorted(CREDENTIAL_PARAMS, key=len, reverse=True))
    + r")(?![A-Za-z0-9_$-])\s*(==|!=|=|:|<|>|\bin\b|\blike\b)", re.IGNORECASE)


def text_credentials(text: str) -> str | None:
    """Why a free-text query (a `where` / `q` filter) holds a literal credential, or None: the rule of
    `param_credentials` applied to the names the text assigns or compares."""
    match = _TEXT_CREDENTIAL.search(text)
    return f"the credential parameter {match.group(1)!r}" if match else None


class _SinceOptions(_Strict):
    """Since-filter of an append-only feed: fetch only records newer than the newest one landed."""

    since_field: str | None = Field(default=None, description=(
        "Timestamp (or ever-increasing) field of the records: a fetch asks only for records with a larger "
        "value than the newest one already landed and lands them as a delta on the previous snapshot. Only "
        "for append-only feeds; the field must appear in the landed records (dotted for nested fields)."))
    since_key: list[str] | None = Field(default=None, min_length=1, description=(
        "Fields identifying a record (dotted for nested fields). A delta repeating a landed key (a record "
        "updated in place) is refused and the source is fetched in full. Default: the kind's record id, "
        "else the whole record."))
    since_max_deltas: int = Field(default=24, ge=1, le=1000, description=(
        "After this many deltas on one full snapshot, the next fetch is a full one (bounds the chain)."))


class CkanOptions(_SinceOptions):
    """CKAN Action API: `package_show` finds the resource, then DataStore pages or the file."""

    base_url: Annotated[str, Field(pattern=HTTP_URL, description="Portal root, e.g. https://data.gov.uk")]
    package: str = Field(min_length=1, description="Dataset name or id.")
    resource: str = Field(min_length=1, description="Resource id or name within the dataset.")
    mode: Literal["datastore", "download"] = Field(
        default="datastore", description="datastore: page datastore_search; download: the resource file.")
    page_size: int = Field(default=1000, ge=1, le=32000, description="datastore_search `limit`.")
    filters: dict[str, str | int | float | bool] | None = Field(
        default=None, description="datastore_search `filters` (field equality).")

    @model_validator(mode="after")
    def _since_needs_datastore(self) -> CkanOptions:
        if self.since_field is not None and self.mode != "datastore":
            raise ValueError("since_field needs mode 'datastore' (deltas are DataStore record pages)")
        return self


class SocrataOptions(_SinceOptions):
    """Socrata SODA 2: `/resource/<id>.json` paged by $limit/$offset in `:id` order."""

    domain: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9.-]+(:[0-9]+)?$",
                                        description="Portal host, e.g. data.cityofnewyork.us (https).")] = None
    base_url: Annotated[str | None, Field(pattern=HTTP_URL, description="Instead of domain: a full root URL.")] \
        = None
    dataset: Annotated[str, Field(pattern=r"^[a-z0-9]{4}-[a-z0-9]{4}$", description="The 4x4 id.")]
    page_size: int = Field(default=1000, ge=1, le=50000, description="$limit per page.")
    where: str | None = Field(default=None, description="SoQL $where filter.")
    select: str | None = Field(default=None, description="SoQL $select.")

    @model_validator(mode="after")
    def _one_root(self) -> SocrataOptions:
        if (self.domain is None) == (self.base_url is None):
            raise ValueError("give exactly one of 'domain' or 'base_url'")
        return self

    @property
    def root(self) -> str:
        return self.base_url.rstrip("/") if self.base_url else f"https://{self.domain}"


class OpenDataSoftOptions(_SinceOptions):
    """OpenDataSoft Explore v2.1: `records` pages (<= 10,000 rows) or the `exports` endpoint."""

    base_url: Annotated[str, Field(pattern=HTTP_URL, description="Portal root, e.g. https://data.opendatasoft.com")]
    dataset: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.@-]+$")
    mode: Literal["auto", "records", "export"] = Field(
        default="auto", description="auto: records, or the export when total_count > 10,000.")
    page_size: int = Field(default=100, ge=1, le=100, description="records `limit` (the API's max is 100).")
    where: str | None = Field(default=None, description="ODSQL `where`.")
    select: str | None = Field(default=None, description="ODSQL `select`.")
    order_by: str | None = Field(default=None, description="ODSQL `order_by` (keeps paging stable).")

    @model_validator(mode="after")
    def _since_needs_records(self) -> OpenDataSoftOptions:
        if self.since_field is not None and self.mode != "records":
            raise ValueError("since_field needs mode 'records' (deltas are record pages, not exports)")
        return self


class WorldBankOptions(_Strict):
    """World Bank Indicators API v2: `[meta, data]` pages of one indicator."""

    indicator: str = Field(pattern=r"^[A-Za-z0-9._]+$", description="Indicator code, e.g. SP.POP.TOTL.")
    country: str = Field(pattern=r"^([A-Za-z0-9]{2,3}(;[A-Za-z0-9]{2,3})*|all)$",
                         description="ISO2/ISO3 code(s) separated by ';', or 'all'.")
    date: str | None = Field(default=None, pattern=r"^[0-9]{4}(:[0-9]{4})?$", description="e.g. 2010:2024.")
    per_page: int = Field(default=1000, ge=1, le=32500)
    base_url: Annotated[str, Field(pattern=HTTP_URL)] = "https://api.worldbank.org/v2"


class NgsiLdTemporalOptions(_Strict):
    """NGSI-LD temporal API (e.g. Mintaka): attribute histories, paged by `pageAnchor` (206 + Next-Page)."""

    url: Annotated[str | None, Field(pattern=HTTP_URL, description=(
        "Temporal endpoint; default <base_url>/ngsi-ld/v1/temporal/entities (Mintaka: http://mintaka:8080/"
        "temporal/entities)."))] = None
    attrs: str | None = Field(default=None, description="Attributes whose history is wanted, e.g. 'no2,pm10'.")
    timerel: Literal["before", "after", "between"] = "between"
    time_at: str = Field(min_length=4, description="ISO 8601 start (or the instant for before/after).")
    end_time_at: str | None = Field(default=None, description="ISO 8601 end, for timerel 'between'.")
    last_n: int | None = Field(default=None, ge=1, description="Only the last N instances of each attribute.")
    time_property: Literal["observedAt", "modifiedAt", "createdAt"] = "observedAt"
    page_size: int = Field(default=100, ge=1, le=1000, description="`pageSize`: entities per page.")
    since: bool = Field(default=False, description=(
        "Since-filter: after the first fetch ask only for instances after the newest `time_property` landed "
        "(timerel=after&timeAt=<newest>) and land them as a delta. Needs timerel 'after' and no last_n."))
    since_max_deltas: int = Field(default=24, ge=1, le=1000, description=(
        "After this many deltas on one full snapshot, the next fetch is a full one (bounds the chain)."))

    @model_validator(mode="after")
    def _between_needs_end(self) -> NgsiLdTemporalOptions:
        if self.timerel == "between" and self.end_time_at is None:
            raise ValueError("timerel 'between' needs end_time_at")
        if self.since and (self.timerel != "after" or self.last_n is not None):
            raise ValueError("since needs timerel 'after' and no last_n (an open-ended, complete history)")
        return self


class NgsiLdOptions(_Strict):
    """FIWARE NGSI-LD context broker: `/ngsi-ld/v1/entities?type=` paged by limit/offset, count=true."""

    base_url: Annotated[str, Field(pattern=HTTP_URL, description="Broker root, e.g. http://orion-ld:1026")]
    type: str = Field(min_length=1, description="Entity type (short name under `context`, or a full URI).")
    context: Annotated[str | None, Field(pattern=HTTP_URL, description=(
        "JSON-LD @context sent in the Link header (short type and attribute names expand against it)."))] = None
    tenant: str | None = Field(default=None, description="NGSILD-Tenant header (multi-tenant brokers).")
    q: str | None = Field(default=None, description="NGSI-LD query, e.g. 'name==\"Big Red Barn\"'.")
    attrs: str | None = Field(default=None, description="Comma-separated attributes to return.")
    key_values: bool = Field(default=False, description="options=keyValues (simplified entities).")
    page_size: int = Field(default=100, ge=1, le=1000, description="`limit` per page (brokers cap at 1000).")
    temporal: NgsiLdTemporalOptions | None = Field(default=None, description=(
        "Fetch attribute histories from the temporal API instead of current entities (target observations)."))


class NgsiV2Options(_Strict):
    """FIWARE NGSI v2 (Orion): `/v2/entities?type=` paged by limit/offset with options=count."""

    base_url: Annotated[str, Field(pattern=HTTP_URL, description="Orion root, e.g. http://orion:1026")]
    type: str = Field(min_length=1, description="Entity type, e.g. AirQualityObserved.")
    service: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]{1,50}$",
                                description="Fiware-Service header (tenant).")
    service_path: str | None = Field(default=None, pattern=r"^/[A-Za-z0-9_/#,]*$",
                                     description="Fiware-ServicePath header, e.g. /Madrid or /#.")
    q: str | None = Field(default=None, description="Simple Query Language filter.")
    attrs: str | None = None
    key_values: bool = Field(default=True, description="options=keyValues (plain attribute values).")
    page_size: int = Field(default=100, ge=1, le=1000, description="`limit` per page (Orion's max is 1000).")


class OpenAqOptions(_SinceOptions):
    """OpenAQ API v3: any list endpoint paged by page/limit, `meta.found`; X-API-Key from the environment."""

    endpoint: str = Field(pattern=r"^[a-z]+(/[0-9]+/[a-z]+)?(/[a-z]+)?$", description=(
        "e.g. locations (stations -> points) or sensors/3917/years (annual means -> observations)."))
    params: dict[str, str | int | float | bool] = Field(default_factory=dict, description=(
        "Filters, e.g. {iso: DE, parameters_id: 2} or {coordinates: '52.52,13.40', radius: 12000}."))
    page_size: int = Field(default=1000, ge=1, le=1000, description="`limit` per page (max 1000).")
    api_key_env: str = Field(default="OPENAQ_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                             description="Environment variable holding the API key (sent as X-API-Key).")
    base_url: Annotated[str, Field(pattern=HTTP_URL)] = "https://api.openaq.org/v3"
    since_param: Literal["datetime_from", "date_from"] = Field(default="datetime_from", description=(
        "With since_field: the filter the endpoint takes (datetime_from for measurements and hours, "
        "date_from for days and years); it is sent one second (day) after the newest value landed."))


class EurostatOptions(_Strict):
    """Eurostat dissemination API: one dataset (e.g. urban audit urb_cpop1) as JSON-stat, SDMX-CSV or SDMX-ML."""

    dataset: str = Field(pattern=r"^[A-Za-z0-9_$]+$", description="Dataset code, e.g. urb_cpop1.")
    format: Literal["jsonstat", "sdmx-csv", "sdmx-ml"] = "jsonstat"
    filters: dict[str, list[str] | str] = Field(default_factory=dict, description=(
        "Dimension filters, e.g. {cities: [DE001C, FI001C], indic_ur: DE1001V}."))
    since: str | None = Field(default=None, pattern=r"^[0-9]{4}", description="First period, e.g. 2015.")
    until: str | None = Field(default=None, pattern=r"^[0-9]{4}", description="Last period.")
    base_url: Annotated[str, Field(pattern=HTTP_URL)] = "https://ec.europa.eu/eurostat/api/dissemination"

    @property
    def source_format(self) -> SourceFormat:
        return {"jsonstat": "json", "sdmx-csv": "csv", "sdmx-ml": "xml"}[self.format]  # type: ignore[return-value]


class OverpassOptions(_Strict):
    """OpenStreetMap Overpass API: parks and green areas (ways and multipolygon relations) as polygons."""

    query: str | None = Field(default=None, description="Full Overpass QL; must ask for [out:json] and geometry.")
    area_name: str | None = Field(default=None, description="Instead of query: the city's OSM name, e.g. València.")
    admin_level: int | None = Field(default=8, ge=1, le=11)
    tags: list[str] = Field(default_factory=lambda: ['leisure~"^(park|garden|playground|nature_reserve)$"',
                                                     'landuse~"^(grass|recreation_ground|village_green|forest)$"'],
                            description="Tag filters (Overpass syntax, without brackets) for ways and relations.")
    timeout: int = Field(default=180, ge=1, le=3600, description="Server-side [timeout:] in seconds.")
    base_url: Annotated[str, Field(pattern=HTTP_URL)] = "https://overpass-api.de/api"

    @model_validator(mode="after")
    def _query_or_area(self) -> OverpassOptions:
        if (self.query is None) == (self.area_name is None):
            raise ValueError("give exactly one of 'query' or 'area_name'")
        if self.query is not None and "[out:json]" not in self.query.replace(" ", ""):
            raise ValueError("the query must ask for JSON: start it with [out:json]")
        return self

    def ql(self) -> str:
        if self.query is not None:
            return self.query
        name = (self.area_name or "").replace('"', '\\"')
        level = f'["admin_level"="{self.admin_level}"]' if self.admin_level else ""
        parts = "".join(f"way[{tag}](area.a);relation[{tag}](area.a);" for tag in self.tags)
        return (f'[out:json][timeout:{self.timeout}];area["name"="{name}"]{level}->.a;'
                f"({parts});out geom;")


_EXPORT_FORMATS: dict[str, str] = {"json": "json", "csv": "csv", "geojson": "geojson", "parquet": "parquet",
                                   "excel": "xlsx"}


# The U4SSC data-collection template's data-quality categories (Verification Manual p163), in
# the template's order from best to worst: config code -> the template's label.
DATA_QUALITY_LABELS: dict[str, str] = {
    "accurate_measurement": "Based on accurate measurements",
    "survey_extrapolation": "Extrapolated from a survey of inhabitants",
    "higher_level_extrapolation": "Extrapolated from higher-level data",
    "assumption_estimate": "Estimation based on assumptions",
    "personal_estimate": "Personal estimation",
    "unknown_methodology": "Unknown methodology, not traceable",
}
DataQuality = Literal["accurate_measurement", "survey_extrapolation", "higher_level_extrapolation",
                      "assumption_estimate", "personal_estimate", "unknown_methodology"]


Cadence = Literal["hourly", "daily", "weekly", "monthly", "annual"]
# How often a source of each cadence is pulled: sensor feeds daily, statistics checked monthly.
FETCH_EVERY: dict[str, str] = {"hourly": "daily", "daily": "daily", "weekly": "weekly",
                               "monthly": "monthly", "annual": "monthly"}


class SourceConfig(_Strict):
    id: Annotated[str, Field(pattern=SLUG)]
    kind: SourceKind = Field(description="How the source is fetched. See `citykpi sources`.")
    location: str = Field(default="", description=(
        "Path relative to the YAML file, or a URL. Left out for the API kinds (ckan, socrata, opendatasoft, "
        "worldbank, ngsi_ld, ngsi_v2, openaq, eurostat, overpass): "
        "their endpoint is built from the block named like the kind."))
    format: SourceFormat | None = Field(default=None, description="Defaults from the file extension.")
    target: SourceTarget
    description: str = ""
    license: str | None = None
    cadence: Cadence | None = Field(default=None, description=(
        "How often the source publishes new data; decides how often the scheduler pulls it "
        "(hourly and daily feeds daily, weekly weekly, monthly and annual statistics monthly). "
        "Default: hourly for readings, annual otherwise."))
    data_quality: DataQuality | None = Field(default=None, description=(
        "U4SSC data-quality category of this source's figures; fills the submission workbook."))
    data_origin: str | None = Field(default=None, description=(
        "U4SSC data origin, e.g. 'Municipal statistics office (register data)'."))
    csv: CsvOptions | None = None
    excel: ExcelOptions | None = None
    http: HttpOptions | None = Field(default=None, description="HTTP settings for networked kinds.")
    ckan: CkanOptions | None = None
    socrata: SocrataOptions | None = None
    opendatasoft: OpenDataSoftOptions | None = None
    worldbank: WorldBankOptions | None = None
    ngsi_ld: NgsiLdOptions | None = None
    ngsi_v2: NgsiV2Options | None = None
    openaq: OpenAqOptions | None = None
    eurostat: EurostatOptions | None = None
    overpass: OverpassOptions | None = None
    observations: ObservationsMapping | None = None
    areas: AreasMapping | None = None
    points: PointsMapping | None = None
    readings: ReadingsMapping | None = None
    valid_from: date | None = Field(default=None, description=(
        "Spatial sources (areas, points, transit_feed): first day the data describe, e.g. 2022-01-01. With "
        "valid_to, overrides what the data say (a GTFS feed's feed_info / calendar dates). A spatial value of a "
        "reporting year outside the validity is missing with the reason, unless assume_valid is set."))
    valid_to: date | None = Field(default=None, description="Spatial sources: last day the data describe.")
    assume_valid: bool = Field(default=False, description=(
        "Use this spatial source for reporting years outside its validity anyway; every such value says "
        "'assumed_valid' in its record."))

    @model_validator(mode="after")
    def _validity_order(self) -> SourceConfig:
        if self.valid_from is not None and self.valid_to is not None and self.valid_from > self.valid_to:
            raise ValueError(f"valid_from {self.valid_from} is after valid_to {self.valid_to}")
        return self

    @property
    def resolved_cadence(self) -> str:
        return self.cadence or ("hourly" if self.target == "readings" else "annual")

    @property
    def fetch_every(self) -> str:
        """daily, weekly or monthly: the fetch schedule this source belongs to."""
        return FETCH_EVERY[self.resolved_cadence]

    @model_validator(mode="after")
    def _mapping_matches_target(self) -> SourceConfig:
        blocks = {"observations": self.observations, "areas": self.areas, "points": self.points,
                  "readings": self.readings}
        if self.target in blocks and blocks[self.target] is None:
            raise ValueError(f"target {self.target!r} needs a {self.target!r} mapping block")
        extra = [name for name, block in blocks.items() if block is not None and name != self.target]
        if extra:
            raise ValueError(f"mapping block(s) {extra} do not match target {self.target!r}")
        self._check_kind()
        if self.format is None and self._default_format() is None:
            raise ValueError(f"cannot tell the format of {self.location!r}; set 'format'")
        if self.target == "street_network" and self.resolved_format not in STREET_FORMATS:
            raise ValueError(f"target 'street_network' reads an OpenStreetMap extract: format json (Overpass JSON), "
                             f"osm (OSM XML) or osm_pbf, not {self.resolved_format!r}")
        if self.target != "street_network" and self.resolved_format in ("osm", "osm_pbf"):
            raise ValueError(f"format {self.resolved_format!r} (an OpenStreetMap extract) feeds target "
                             "'street_network' only")
        return self

    def _check_kind(self) -> None:
        kind_blocks = {"ckan": self.ckan, "socrata": self.socrata, "opendatasoft": self.opendatasoft,
                       "worldbank": self.worldbank, "ngsi_ld": self.ngsi_ld, "ngsi_v2": self.ngsi_v2,
                       "openaq": self.openaq, "eurostat": self.eurostat, "overpass": self.overpass}
        extra = [name for name, block in kind_blocks.items() if block is not None and name != self.kind]
        if extra:
            raise ValueError(f"block(s) {extra} do not match kind {self.kind!r}")
        if self.http is not None and self.kind not in NETWORK_KINDS:
            raise ValueError(f"'http' settings do not apply to kind {self.kind!r}")
        if "${" in self.location:
            raise ValueError("a location never holds a secret: reference it in http.headers as ${NAME}")
        if self.is_url and (found := url_credentials(self.location)):
            raise ValueError(f"the location holds {found}: credentials never go in the config (it is published in "
                             "every release); send them as a header from the environment, e.g. "
                             "http: {headers: {Authorization: \"${MY_TOKEN}\"}}")
        if self.kind not in API_KINDS:
            if not self.location:
                raise ValueError(f"kind {self.kind!r} needs a 'location'")
            if self.kind == "http" and not re.match(HTTP_URL, self.location.split("?")[0]):
                raise ValueError(f"kind 'http' needs an http(s) URL as location, got {self.location!r}")
            return
        if kind_blocks[self.kind] is None:
            raise ValueError(f"kind {self.kind!r} needs a {self.kind!r} block")
        if self.location:
            raise ValueError(f"kind {self.kind!r} builds its URL from the {self.kind!r} block; remove 'location'")
        # The model is frozen; filling a derived field during validation is the one place it may change.
        object.__setattr__(self, "location", self._api_location())
        if found := url_credentials(self.location):
            raise ValueError(f"the {self.kind!r} block's URL holds {found}: credentials never go in the config; "
                             "send them as a header from the environment (http.headers with ${NAME})")
        for where, params in self._query_params():
            if found := param_credentials(params):
                raise ValueError(f"the {self.kind!r} block's {where} hold {found}: credentials never go in the "
                                 "config (it is published in every release); send them as a header from the "
                                 "environment (http.headers with ${NAME})")
        for where, text in self._query_texts():
            if found := text_credentials(text):
                raise ValueError(f"the {self.kind!r} block's {where} holds {found}: credentials never go in the "
                                 "config (it is published in every release); send them as a header from the "
                                 "environment (http.headers with ${NAME})")
        paged = self._paged_json()
        if paged and self.format not in (None, "json"):
            raise ValueError(f"kind {self.kind!r} fetches JSON records; 'format' must be json")
        allowed = _PAGED_TARGETS.get(self.kind, ("observations",))
        if paged and self.target not in allowed:
            targets = " or ".join(repr(t) for t in allowed)
            raise ValueError(f"kind {self.kind!r} pages JSON records, which feed target {targets} only")
        if self.ngsi_ld is not None and self.ngsi_ld.temporal is not None and \
                self.target not in ("observations", "readings"):
            raise ValueError("the NGSI-LD temporal API feeds target 'observations' or 'readings' "
                             "(one row per attribute instance)")
        if self.eurostat is not None:
            if self.target != "observations":
                raise ValueError("kind 'eurostat' feeds target 'observations' only")
            if self.format not in (None, self.eurostat.source_format):
                raise ValueError(f"eurostat format {self.eurostat.format!r} is read as "
                                 f"{self.eurostat.source_format!r}; leave 'format' out")
        if self.overpass is not None:
            if self.target != "areas":
                raise ValueError("kind 'overpass' feeds target 'areas' (parks and green areas) only; for a street "
                                 "network save the Overpass JSON of the city's highways as a file (target "
                                 "street_network, kind file or http)")
            if self.format not in (None, "json"):
                raise ValueError("kind 'overpass' fetches Overpass JSON; 'format' must be json")
        if self.ckan is not None and self.ckan.mode == "download" and self.format is None:
            raise ValueError("ckan mode 'download' needs 'format' (csv, excel, json, geojson, ...)")
        if self.opendatasoft is not None and self.resolved_format not in _EXPORT_FORMATS:
            raise ValueError(f"opendatasoft cannot export format {self.resolved_format!r}")

    def _api_location(self) -> str:
        if self.ckan is not None:
            return f"{self.ckan.base_url.rstrip('/')}/api/3/action/package_show?id={self.ckan.package}"
        if self.socrata is not None:
            return f"{self.socrata.root}/resource/{self.socrata.dataset}.json"
        if self.opendatasoft is not None:
            return (f"{self.opendatasoft.base_url.rstrip('/')}/api/explore/v2.1/catalog/datasets/"
                    f"{self.opendatasoft.dataset}")
        if self.ngsi_ld is not None:
            if self.ngsi_ld.temporal is not None:
                return self.ngsi_ld.temporal.url or f"{self.ngsi_ld.base_url.rstrip('/')}/ngsi-ld/v1/temporal/entities"
            return f"{self.ngsi_ld.base_url.rstrip('/')}/ngsi-ld/v1/entities"
        if self.ngsi_v2 is not None:
            return f"{self.ngsi_v2.base_url.rstrip('/')}/v2/entities"
        if self.openaq is not None:
            return f"{self.openaq.base_url.rstrip('/')}/{self.openaq.endpoint}"
        if self.eurostat is not None:
            es = self.eurostat
            if es.format == "jsonstat":
                return f"{es.base_url.rstrip('/')}/statistics/1.0/data/{es.dataset}"
            return f"{es.base_url.rstrip('/')}/sdmx/2.1/data/{es.dataset}"
        if self.overpass is not None:
            return f"{self.overpass.base_url.rstrip('/')}/interpreter"
        assert self.worldbank is not None
        wb = self.worldbank
        return f"{wb.base_url.rstrip('/')}/country/{wb.country}/indicator/{wb.indicator}"

    def _query_params(self) -> list[tuple[str, Mapping[str, object]]]:
        """The blocks whose names are sent as query parameters (CKAN `filters`: field names inside one JSON
        parameter, held to the same rule since the config is published either way)."""
        if self.openaq is not None:
            return [("params", self.openaq.params)]
        if self.eurostat is not None:
            return [("filters", self.eurostat.filters)]
        if self.ckan is not None and self.ckan.filters:
            return [("filters", self.ckan.filters)]
        return []

    def _query_texts(self) -> list[tuple[str, str]]:
        """Free-text query filters sent as they are (SoQL / ODSQL `where`, NGSI `q`)."""
        texts = [("where", self.socrata.where if self.socrata else None),
                 ("where", self.opendatasoft.where if self.opendatasoft else None),
                 ("q", self.ngsi_ld.q if self.ngsi_ld else None),
                 ("q", self.ngsi_v2.q if self.ngsi_v2 else None)]
        return [(name, text) for name, text in texts if text]

    def _paged_json(self) -> bool:
        """Whether the kind lands JSON pages of records (read by the page reader)."""
        if self.kind in ("socrata", "worldbank", "ngsi_ld", "ngsi_v2", "openaq"):
            return True
        if self.ckan is not None:
            return self.ckan.mode == "datastore"
        if self.opendatasoft is not None:
            return self.opendatasoft.mode != "export"
        return False

    def _default_format(self) -> SourceFormat | None:
        if self.eurostat is not None:
            return self.eurostat.source_format
        if self.overpass is not None:
            return "json"
        if self.kind in API_KINDS and (self._paged_json() or self.kind == "opendatasoft"):
            return "json"
        fmt = _format_from_location(self.location) if self.kind not in API_KINDS else None
        if fmt == "gtfs" and self.target in ("areas", "points"):
            return "shapefile"  # a .zip feeding geometry holds a shapefile, not a GTFS feed
        return fmt

    @property
    def resolved_format(self) -> SourceFormat:
        fmt = self.format or self._default_format()
        assert fmt is not None  # guaranteed by validation
        return fmt

    @property
    def export_format(self) -> str:
        """The OpenDataSoft export endpoint's name for this source's format."""
        return _EXPORT_FORMATS[self.resolved_format]

    @property
    def is_url(self) -> bool:
        return bool(re.match(r"^[a-z][a-z0-9+.-]*://", self.location))


class AirQualityRules(_Strict):
    min_coverage_pct: Annotated[float, Field(ge=50, le=100)] = Field(default=75, description=(
        "Share of the year's hours (days, for daily samplers) a station needs for an annual mean: 75 "
        "(the usual rule, default) or e.g. 90 (the EU air-quality directive 2008/50/EC, Annex I, for "
        "fixed measurements). A station-year below it gives no annual mean; a city mean without any "
        "valid station is withheld, naming the rule."))


class CityConfig(_Strict):
    config_version: Literal[1] = CONFIG_VERSION
    city: CityInfo
    sources: list[SourceConfig] = Field(min_length=1)
    air_quality: AirQualityRules = Field(default_factory=AirQualityRules, description=(
        "Rules for the annual means of air-quality readings (warehouse/derive.py)."))
    allowed_roots: list[str] = Field(default_factory=list, description=(
        "Folders (relative to this file, or absolute) that `kind: file` sources may read besides the "
        "config's own folder. A file source must be a regular file under one of them (symlinks resolved); "
        "/proc, /sys and /dev are never allowed."))

    @field_validator("allowed_roots")
    @classmethod
    def _no_pseudo_roots(cls, roots: list[str]) -> list[str]:
        from sources.confine import forbidden

        for root in roots:
            if forbidden(Path(root).expanduser()) is not None:
                raise ValueError(f"{root!r} is a pseudo file system, not a data folder")
        return roots

    @field_validator("sources")
    @classmethod
    def _unique_ids(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        seen: set[str] = set()
        for source in sources:
            if source.id in seen:
                raise ValueError(f"duplicate source id {source.id!r}")
            seen.add(source.id)
        return sources


# A city's own target table sits beside its config: cities/oslo.yaml -> cities/oslo.targets.csv (CSV, not
# YAML: a folder of configs is read as every *.yaml in it). kpis.benchmarking.targets reads the table.
TARGETS_SUFFIX = ".targets.csv"


class LoadedConfig(BaseModel):
    """A validated config together with the file it came from (locations resolve against it)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path
    config: CityConfig

    @property
    def city_id(self) -> str:
        return self.config.city.id

    @property
    def targets_path(self) -> Path:
        """Where the city's own target table is, whether or not it exists: ``<config stem>.targets.csv``."""
        return self.path.with_name(self.path.stem + TARGETS_SUFFIX)

    def source_path(self, source: SourceConfig) -> Path:
        """Absolute path of a file source (relative locations resolve against the YAML's folder)."""
        location = Path(source.location).expanduser()
        return location if location.is_absolute() else (self.path.parent / location).resolve()


def _format_from_location(location: str) -> SourceFormat | None:
    suffix = Path(location.split("?")[0]).suffix.lower()
    return _EXTENSION_FORMATS.get(suffix)


def _key_path(loc: tuple[int | str, ...], raw: Any, *, missing: bool = False) -> str:
    """`sources[0].csv.delimiter` from a pydantic error location, following the input document.

    pydantic appends union members ('str', 'int') and markers ('[key]') that are not keys of the
    document; the path stops at the deepest key the document has (plus the key, if it is missing).
    """
    out = ""
    node = raw
    for index, part in enumerate(loc):
        is_index = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        is_key = isinstance(node, dict) and part in node
        if not (is_index or is_key):
            if missing and index == len(loc) - 1:
                out += f".{part}" if out else str(part)
            break
        out += f"[{part}]" if is_index else (f".{part}" if out else str(part))
        node = node[part]
    return out


_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path, parsed: Path | None = None) -> Any:
    """The config file's YAML data; with `parsed`, a folder of data kept between runs (sources/parsed_configs.py)."""
    if not path.is_file():
        raise ConfigError(path, "", "config file not found")
    from sources import parsed_configs

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, "", f"config file not readable: {exc.strerror or exc}") from None
    hit = parsed_configs.kept(parsed, data) if parsed is not None else None
    if hit is not None:
        return hit
    try:
        # libyaml's safe loader (about 10x faster than the pure-Python one; a run reads each config a few
        # times) where PyYAML was built with it; same safe constructors either way.
        raw: Any = yaml.load(data.decode("utf-8"), Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if "maximum nesting depth" in problem:  # libyaml's own limit (1,000 levels)
            raise ConfigError(path, where, f"YAML {TOO_DEEP}") from None
        raise ConfigError(path, where, f"not valid YAML: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "", "config must be UTF-8 text") from None
    except RecursionError:
        raise ConfigError(path, "", f"YAML {TOO_DEEP}") from None
    if not isinstance(raw, dict):
        raise ConfigError(path, "", "expected a mapping at the top level")
    if parsed is not None:
        parsed_configs.keep(parsed, data, raw)
    return raw


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The config model class that holds the last key of `loc` (for "did you mean" on unknown keys)."""
    import types
    import typing

    model: type[BaseModel] = CityConfig
    for part in loc[:-1]:
        if isinstance(part, int) or part not in model.model_fields:
            continue  # a list index, or a union member pydantic names
        annotation: Any = model.model_fields[part].annotation
        found: type[BaseModel] | None = None
        stack = [annotation]
        while stack:  # unwrap Optional, list[...], dict[str, ...], Annotated
            item = stack.pop()
            if isinstance(item, type) and issubclass(item, BaseModel):
                found = item
                break
            if typing.get_origin(item) in (typing.Union, types.UnionType, list, dict, typing.Annotated):
                stack.extend(typing.get_args(item))
        if found is None:
            return None
        model = found
    return model


def _unknown_key_message(loc: tuple[int | str, ...]) -> str:
    import difflib

    model = _model_at(loc)
    key = str(loc[-1]) if loc else ""
    if model is None:
        return "unknown key"
    close = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.6)
    return f"unknown key; did you mean {close[0]!r}?" if close else \
        f"unknown key; allowed here: {', '.join(sorted(model.model_fields))}"


def validation_problems(path: Path, raw: Any, exc: ValidationError) -> list[ConfigError]:
    """Every error of a config that failed validation, each with its key path (and a suggestion for typos)."""
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = _unknown_key_message(loc)
        elif error["type"] == "string_type" and isinstance(error.get("input"), bool):
            # YAML 1.1 reads unquoted yes/no/on/off (and Norway's code NO) as booleans.
            message = f"YAML read this value as {str(error['input']).lower()}; quote it, e.g. \"NO\" or \"yes\""
        elif loc and loc[-1] == "[key]":
            message = f"{message}: quote the key in the YAML, e.g. \"{loc[-2]}\""
        problems.append(ConfigError(path, _key_path(loc, raw, missing=error["type"] == "missing"), message))
    return problems


def config_problems(path: Path | str, *, check_files: bool = True, parsed: Path | None = None
                    ) -> tuple[LoadedConfig | None, list[ConfigError]]:
    """Every problem of a config file at once (what `citykpi validate` lists): keys, values, the
    canonical vocabulary and missing files. The config is returned when it parsed. `parsed`: a folder
    where the YAML data is kept between runs (sources/parsed_configs.py)."""
    path = Path(path)
    try:
        raw = _read_yaml(path, parsed)
    except ConfigError as exc:
        return None, [exc]
    try:
        config = CityConfig.model_validate(raw)
    except RecursionError:
        return None, [ConfigError(path, "", f"YAML {TOO_DEEP}")]
    except ValidationError as exc:
        return None, validation_problems(path, raw, exc) + (_raw_missing_files(path, raw) if check_files else [])
    loaded = LoadedConfig(path=path.resolve(), config=config)
    problems = _model_vocabulary_problems(loaded)
    if check_files:
        from sources.confine import OutsideRoots, confined_path

        for index, source in enumerate(config.sources):
            if not source.is_url and not loaded.source_path(source).exists():
                problems.append(ConfigError(path, f"sources[{index}].location",
                                            f"file not found: {loaded.source_path(source)}"))
            elif source.kind == "file" and not source.is_url:
                try:
                    confined_path(loaded, source)
                except (OutsideRoots, OSError) as exc:
                    problems.append(ConfigError(path, f"sources[{index}].location", str(exc)))
    return loaded, problems


def _raw_missing_files(path: Path, raw: dict[str, Any]) -> list[ConfigError]:
    """Missing local files of a config that did not validate (so one pass names them too)."""
    problems = []
    sources = raw.get("sources")
    for index, source in enumerate(sources if isinstance(sources, list) else []):
        location = source.get("location") if isinstance(source, dict) else None
        if not isinstance(location, str) or not location or re.match(r"^[a-z][a-z0-9+.-]*://", location):
            continue
        local = Path(location).expanduser()
        local = local if local.is_absolute() else path.resolve().parent / local
        if not local.exists():
            problems.append(ConfigError(path, f"sources[{index}].location", f"file not found: {local}"))
    return problems


def load_city_config(path: Path | str, *, check_files: bool = True, parsed: Path | None = None) -> LoadedConfig:
    """Read and validate a city config. Raises ConfigError naming the file and key path (the first
    problem; `config_problems` lists them all)."""
    loaded, problems = config_problems(path, check_files=check_files, parsed=parsed)
    if problems:
        raise problems[0]
    assert loaded is not None
    return loaded


def _model_vocabulary_problems(loaded: LoadedConfig) -> list[ConfigError]:
    """Every mapped variable must exist in the canonical model and its unit must convert."""
    import difflib

    from canonical.units import UnitError, conversion_factor
    from canonical.variables import VARIABLES

    problems = []
    for index, source in enumerate(loaded.config.sources):
        block = source.observations or source.readings
        if block is None:
            continue
        for key, mapping in block.variables.items():
            where = f"sources[{index}].{source.target}.variables.{key}"
            variable = VARIABLES.get(mapping.variable)
            if variable is None:
                close = difflib.get_close_matches(mapping.variable, list(VARIABLES), n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append(ConfigError(loaded.path, f"{where}.variable", f"unknown canonical variable "
                                            f"{mapping.variable!r}{hint} (see `citykpi variables`)"))
                continue
            try:
                conversion_factor(mapping.unit, variable.unit, variable=mapping.variable,
                                  data_point=mapping.data_point)
            except UnitError as exc:
                problems.append(ConfigError(loaded.path, f"{where}.unit", str(exc)))
    return problems


def config_json_schema() -> dict[str, Any]:
    schema = CityConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "citykpi city configuration"
    return schema


def write_json_schema(path: Path) -> None:
    path.write_text(json.dumps(config_json_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
