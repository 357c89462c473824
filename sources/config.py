"""City configuration: one YAML file per city, validated on load.

The file names the city, its reporting years and its sources. Each source says how to fetch it
(`kind`), how to read it (`format`), what canonical table it feeds (`target`) and how its fields
map to canonical variables and units. Errors name the file and the key path, e.g.
``cities/demo.yaml at sources[1].observations.variables.Haushalte.unit: ...``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sources.errors import ConfigError

CONFIG_VERSION: Literal[1] = 1
SLUG = r"^[a-z0-9][a-z0-9_-]*$"
SourceFormat = Literal["csv", "excel", "parquet", "json", "geojson", "ngsi-ld", "gtfs"]
SourceTarget = Literal["observations", "areas", "points", "readings", "transit_feed"]
SourceKind = Literal["file", "http", "ckan", "socrata", "opendatasoft", "worldbank"]
# Kinds whose endpoint is built from their own options block, not from `location`.
API_KINDS: tuple[str, ...] = ("ckan", "socrata", "opendatasoft", "worldbank")
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


class ObservationsMapping(_Strict):
    """Tabular statistics: one value per (year, variable[, area]).

    `layout: wide` means one column per variable (keys of `variables` are column names);
    `layout: long` means a code column and a value column (keys of `variables` are codes).
    """

    layout: Literal["wide", "long"] = "wide"
    year_field: str
    area_field: str | None = None
    area_type: str = "district"
    variable_field: str | None = None
    value_field: str | None = None
    variables: dict[str, VariableMapping] = Field(min_length=1)

    @model_validator(mode="after")
    def _long_needs_fields(self) -> ObservationsMapping:
        if self.layout == "long" and (self.variable_field is None or self.value_field is None):
            raise ValueError("layout 'long' needs variable_field and value_field")
        if self.layout == "wide" and (self.variable_field or self.value_field):
            raise ValueError("variable_field/value_field only apply to layout 'long'")
        return self


class AreasMapping(_Strict):
    """Polygons (districts, green areas, built-up areas) from GeoJSON."""

    area_type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")] = "district"
    id_field: str
    name_field: str | None = None


class PointsMapping(_Strict):
    """Point features (monitoring stations, hotspots): an id and a location."""

    point_type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    id_field: str = "id"
    lon_field: str | None = Field(default=None,
                                  description="Only for tabular points; GeoJSON/NGSI-LD carry geometry.")
    lat_field: str | None = None


class ReadingsMapping(_Strict):
    """Time-stamped sensor readings in long form: station, time, variable code, value."""

    station_field: str
    time_field: str
    variable_field: str
    value_field: str
    variables: dict[str, VariableMapping] = Field(min_length=1)


class HttpOptions(_Strict):
    """How networked kinds talk HTTP. Defaults suit public portals; tests shrink the waits."""

    headers: dict[str, str] = Field(default_factory=dict, description=(
        "Request headers. Secrets are referenced as ${ENV_VAR} and read from the environment at fetch "
        "time, e.g. {X-App-Token: '${SOCRATA_APP_TOKEN}'}; they are sent only to the source's own host."))
    timeout: float = Field(default=60.0, gt=0, le=3600, description="Seconds to connect / wait for data.")
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


class CkanOptions(_Strict):
    """CKAN Action API: `package_show` finds the resource, then DataStore pages or the file."""

    base_url: Annotated[str, Field(pattern=HTTP_URL, description="Portal root, e.g. https://data.gov.uk")]
    package: str = Field(min_length=1, description="Dataset name or id.")
    resource: str = Field(min_length=1, description="Resource id or name within the dataset.")
    mode: Literal["datastore", "download"] = Field(
        default="datastore", description="datastore: page datastore_search; download: the resource file.")
    page_size: int = Field(default=1000, ge=1, le=32000, description="datastore_search `limit`.")
    filters: dict[str, str | int | float | bool] | None = Field(
        default=None, description="datastore_search `filters` (field equality).")


class SocrataOptions(_Strict):
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


class OpenDataSoftOptions(_Strict):
    """OpenDataSoft Explore v2.1: `records` pages (<= 10,000 rows) or the `exports` endpoint."""

    base_url: Annotated[str, Field(pattern=HTTP_URL, description="Portal root, e.g. https://data.opendatasoft.com")]
    dataset: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.@-]+$")
    mode: Literal["auto", "records", "export"] = Field(
        default="auto", description="auto: records, or the export when total_count > 10,000.")
    page_size: int = Field(default=100, ge=1, le=100, description="records `limit` (the API's max is 100).")
    where: str | None = Field(default=None, description="ODSQL `where`.")
    select: str | None = Field(default=None, description="ODSQL `select`.")
    order_by: str | None = Field(default=None, description="ODSQL `order_by` (keeps paging stable).")


class WorldBankOptions(_Strict):
    """World Bank Indicators API v2: `[meta, data]` pages of one indicator."""

    indicator: str = Field(pattern=r"^[A-Za-z0-9._]+$", description="Indicator code, e.g. SP.POP.TOTL.")
    country: str = Field(pattern=r"^([A-Za-z0-9]{2,3}(;[A-Za-z0-9]{2,3})*|all)$",
                         description="ISO2/ISO3 code(s) separated by ';', or 'all'.")
    date: str | None = Field(default=None, pattern=r"^[0-9]{4}(:[0-9]{4})?$", description="e.g. 2010:2024.")
    per_page: int = Field(default=1000, ge=1, le=32500)
    base_url: Annotated[str, Field(pattern=HTTP_URL)] = "https://api.worldbank.org/v2"


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


class SourceConfig(_Strict):
    id: Annotated[str, Field(pattern=SLUG)]
    kind: SourceKind = Field(description="How the source is fetched. See `citykpi sources`.")
    location: str = Field(default="", description=(
        "Path relative to the YAML file, or a URL. Left out for ckan, socrata, opendatasoft and worldbank: "
        "their endpoint is built from the block named like the kind."))
    format: SourceFormat | None = Field(default=None, description="Defaults from the file extension.")
    target: SourceTarget
    description: str = ""
    license: str | None = None
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
    observations: ObservationsMapping | None = None
    areas: AreasMapping | None = None
    points: PointsMapping | None = None
    readings: ReadingsMapping | None = None

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
        return self

    def _check_kind(self) -> None:
        kind_blocks = {"ckan": self.ckan, "socrata": self.socrata, "opendatasoft": self.opendatasoft,
                       "worldbank": self.worldbank}
        extra = [name for name, block in kind_blocks.items() if block is not None and name != self.kind]
        if extra:
            raise ValueError(f"block(s) {extra} do not match kind {self.kind!r}")
        if self.http is not None and self.kind not in NETWORK_KINDS:
            raise ValueError(f"'http' settings do not apply to kind {self.kind!r}")
        if "${" in self.location:
            raise ValueError("a location never holds a secret: reference it in http.headers as ${NAME}")
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
        paged = self._paged_json()
        if paged and self.format not in (None, "json"):
            raise ValueError(f"kind {self.kind!r} fetches JSON records; 'format' must be json")
        if paged and self.target != "observations":
            raise ValueError(f"kind {self.kind!r} pages JSON records, which feed target 'observations' only")
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
        assert self.worldbank is not None
        wb = self.worldbank
        return f"{wb.base_url.rstrip('/')}/country/{wb.country}/indicator/{wb.indicator}"

    def _paged_json(self) -> bool:
        """Whether the kind lands JSON pages of records (read by the page reader)."""
        if self.kind in ("socrata", "worldbank"):
            return True
        if self.ckan is not None:
            return self.ckan.mode == "datastore"
        if self.opendatasoft is not None:
            return self.opendatasoft.mode != "export"
        return False

    def _default_format(self) -> SourceFormat | None:
        if self.kind in API_KINDS and (self._paged_json() or self.kind == "opendatasoft"):
            return "json"
        return _format_from_location(self.location) if self.kind not in API_KINDS else None

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


class CityConfig(_Strict):
    config_version: Literal[1] = CONFIG_VERSION
    city: CityInfo
    sources: list[SourceConfig] = Field(min_length=1)

    @field_validator("sources")
    @classmethod
    def _unique_ids(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        seen: set[str] = set()
        for source in sources:
            if source.id in seen:
                raise ValueError(f"duplicate source id {source.id!r}")
            seen.add(source.id)
        return sources


class LoadedConfig(BaseModel):
    """A validated config together with the file it came from (locations resolve against it)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path
    config: CityConfig

    @property
    def city_id(self) -> str:
        return self.config.city.id

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


def load_city_config(path: Path | str, *, check_files: bool = True) -> LoadedConfig:
    """Read and validate a city config. Raises ConfigError naming the file and key path."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, "", "config file not found")
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(path, where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "", "config must be UTF-8 text") from None
    if not isinstance(raw, dict):
        raise ConfigError(path, "", "expected a mapping at the top level")
    try:
        config = CityConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        elif first["loc"] and first["loc"][-1] == "[key]":
            message = f"{message}: quote the key in the YAML, e.g. \"{first['loc'][-2]}\""
        raise ConfigError(path, _key_path(tuple(first["loc"]), raw, missing=first["type"] == "missing"),
                          message) from None
    loaded = LoadedConfig(path=path.resolve(), config=config)
    _check_model_vocabulary(loaded)
    if check_files:
        for index, source in enumerate(config.sources):
            if not source.is_url and not loaded.source_path(source).exists():
                raise ConfigError(
                    path, f"sources[{index}].location", f"file not found: {loaded.source_path(source)}"
                )
    return loaded


def _check_model_vocabulary(loaded: LoadedConfig) -> None:
    """Every mapped variable must exist in the canonical model and its unit must convert."""
    from warehouse.units import UnitError, conversion_factor
    from warehouse.variables import VARIABLES

    for index, source in enumerate(loaded.config.sources):
        block = source.observations or source.readings
        if block is None:
            continue
        for key, mapping in block.variables.items():
            where = f"sources[{index}].{source.target}.variables.{key}"
            variable = VARIABLES.get(mapping.variable)
            if variable is None:
                raise ConfigError(loaded.path, f"{where}.variable", f"unknown canonical variable "
                                  f"{mapping.variable!r} (see `citykpi variables`)")
            try:
                conversion_factor(mapping.unit, variable.unit, variable=mapping.variable,
                                  data_point=mapping.data_point)
            except UnitError as exc:
                raise ConfigError(loaded.path, f"{where}.unit", str(exc)) from None


def config_json_schema() -> dict[str, Any]:
    schema = CityConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "citykpi city configuration"
    return schema


def write_json_schema(path: Path) -> None:
    path.write_text(json.dumps(config_json_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
