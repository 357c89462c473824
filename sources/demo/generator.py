"""Deterministic generator for "Demoville", the synthetic demo city.

Demoville (country DE, id ``demo-city``) has about 500,000 inhabitants in 12 districts around
lon 10.0 / lat 51.0. The generator writes the raw files a real city portal would publish, each in
the awkward shape such portals use (Latin-1 CSV with decimal commas, UTF-8 CSV with a BOM, an Excel
sheet under a title row, GeoJSON, a GTFS zip, NGSI-LD entities and hourly sensor readings in
Parquet), plus the ``city.yaml`` that maps them to canonical variables.

Same ``seed`` and ``scale`` give byte-identical files: every random draw comes from a numpy
generator seeded with ``(seed, component[, index])``, timestamps inside files are fixed, and the
zip containers (xlsx, GTFS) carry fixed entry dates. ``scale`` only changes the number of air
quality stations (8 per unit of scale), which is what makes the readings table large.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
import shapely
import yaml
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.xml.functions import tostring
from shapely.geometry import LineString, Polygon

from canonical.units import conversion_factor
from canonical.variables import VARIABLES, Variable
from sources.demo.declared import (
    DECLARED_COMMENT,
    Bases,
    DeclaredSeries,
    declared_series,
    mapping_lines,
    to_generate,
)
from sources.demo.indicator_series import UTILITY_COLUMNS, CityTotals, statistics_series, utility_columns

DEFAULT_SEED = 20261124
CITY_NAME = "Demoville"
CITY_ID = "demo-city"
_CITY_ID = re.compile(r"[a-z0-9][a-z0-9-]*")
YEARS = list(range(2019, 2025))
READING_YEARS = (2022, 2023, 2024)
STATIONS_PER_SCALE = 8

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Point = tuple[float, float]
Latest = dict[str, float]  # pollutant code -> value of the last hour, in the published unit

# Geography: local kilometres east/north of the centre, converted to WGS84 when written.
CENTER_LON, CENTER_LAT = 10.0, 51.0
KM_PER_DEG_LAT = 111.2
KM_PER_DEG_LON = 111.32 * math.cos(math.radians(CENTER_LAT))
GRID_COLS, GRID_ROWS, CELL_KM = 4, 3, 4.1  # 16.4 km x 12.3 km, about 200 km2
HALF_W, HALF_H = GRID_COLS * CELL_KM / 2, GRID_ROWS * CELL_KM / 2
# Boundary jitter moves the outline inwards by at most ~0.65 km; stops and stations stay inside this box.
INNER_MARGIN_KM = 0.9
DISTRICT_NAMES = ("Lindenau", "Nordstadt", "Auenviertel", "Birkenfeld",
                  "Weststadt", "Altstadt", "Mitte", "Oststadt",
                  "Mühlbach", "Südstadt", "Rosenhöhe", "Eichwald")

# Fixed stamps so containers and metadata never depend on the clock.
ZIP_DATE = (2025, 3, 31, 8, 0, 0)
XLSX_DATE = datetime(2025, 3, 31, 8, 0, 0)
OBSERVED_AT = "2024-12-31T23:00:00Z"
SDM_CONTEXT = "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"

# Pollutant codes in the readings file, the NGSI-LD property for each, and the factor from the
# published unit to ug/m3 (the U4SSC ppb factors that canonical.units applies as well).
POLLUTANTS = ("PM2.5", "PM10", "NO2", "SO2", "O3")
NGSI_PROPERTY = {"PM2.5": "pm25", "PM10": "pm10", "NO2": "no2", "SO2": "so2", "O3": "o3"}
TO_UGM3 = {"PM2.5": 1.0, "PM10": 1.0, "NO2": 1.0, "SO2": 2.62, "O3": 1.96}

# Component ids for seeding: each part of the city draws from its own stream, so changing one
# part (or the number of stations) never shifts the numbers of another.
_RNG_GEOGRAPHY, _RNG_PEOPLE, _RNG_PARKS, _RNG_TRANSIT, _RNG_STATS, _RNG_UTILITIES, _RNG_STATION = range(7)
_RNG_STREETS = 7


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, *keys])


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def station_count(scale: float) -> int:
    """Number of air quality stations for a scale factor (8 at scale 1, at least 1)."""
    return max(1, round(STATIONS_PER_SCALE * scale))


def demo_dir_name(scale: float, seed: int) -> str:
    return f"sf{scale:g}-seed{seed}{_declarations_suffix()}"


def _declarations_suffix(variables: Mapping[str, Variable] | None = None) -> str:
    """'' while no variable is declared for the demo beyond the hand series, else '-d' + a hash of the
    declarations: a demo generated once into a home is reused, so a new or changed `demo:` declaration
    must lead to a new folder (the demo made before it would lack the variable)."""
    declared = to_generate(VARIABLES if variables is None else variables, _template_mapped_variables())
    if not declared:
        return ""
    text = json.dumps([(v.name, v.unit, v.aggregation, asdict(v.demo) if v.demo else None) for v in declared])
    return "-d" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def generate_demo_city(out_dir: Path, *, scale: float = 1.0, seed: int = DEFAULT_SEED,
                       city_id: str = CITY_ID, name: str = CITY_NAME,
                       variables: Mapping[str, Variable] | None = None) -> Path:
    """Write the demo city's raw files and its city.yaml into out_dir; return the city.yaml path.

    `city_id` and `name` only change the city block of city.yaml, so many demo cities (different
    seeds, different ids) can run side by side in one warehouse. `variables` (default: canonical
    variables.yaml) says which variables to generate from their `demo:` declarations
    (sources/demo/declared.py) beside the hand-written series."""
    if not scale > 0 or not math.isfinite(scale):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    if not _CITY_ID.fullmatch(city_id):
        raise ValueError(f"city_id must be a lowercase slug (a-z, 0-9, '-'), got {city_id!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    districts = _make_districts(_rng(seed, _RNG_GEOGRAPHY))
    people = _make_population(districts, _rng(seed, _RNG_PEOPLE))
    parks = _make_parks(districts, _rng(seed, _RNG_PARKS))
    feed = _make_transit(districts, _rng(seed, _RNG_TRANSIT))
    stations = _make_stations(districts, seed, station_count(scale))

    _write_districts_geojson(out_dir / "bezirke.geojson", districts)
    _write_parks_geojson(out_dir / "gruenflaechen.geojson", parks)
    _write_population_xlsx(out_dir / "bevoelkerung_bezirke.xlsx", districts, people)
    stats = _city_statistics(people, len(feed.stops), _rng(seed, _RNG_STATS))
    stats += _indicator_statistics(people, stats)
    declared = _declared_series(VARIABLES if variables is None else variables, people, stats)
    stats += [Statistic(s.label, s.unit, s.decimals, dict(zip(YEARS, s.values.tolist(), strict=True)))
              for s in declared if s.level == "city"]
    _write_statistics_csv(out_dir / "statistik_stadt.csv", stats)
    district_series = [s for s in declared if s.level == "district"]
    if district_series:
        _write_district_statistics_csv(out_dir / DISTRICT_STATISTICS, districts, district_series)
    _write_utilities_csv(out_dir / "versorgung.csv", people, _rng(seed, _RNG_UTILITIES))
    _write_gtfs(out_dir / "gtfs.zip", feed)
    _write_streets_osm(out_dir / "strassennetz.osm", _make_streets(_rng(seed, _RNG_STREETS)))
    latest = _write_readings_parquet(out_dir / "luftmessungen_stuendlich.parquet", stations, seed)
    _write_stations_ngsi_ld(out_dir / "luftmessstationen.jsonld", stations, latest)
    return _write_city_yaml(out_dir / "city.yaml", scale=scale, seed=seed, stations=len(stations),
                            city_id=city_id, name=name, declared=declared)


def demo_cities_dir_name(scale: float, seed: int, count: int) -> str:
    return f"cities{count}-sf{scale:g}-seed{seed}{_declarations_suffix()}"


def demo_city_id(index: int) -> str:
    """The id of the index-th (1-based) city of a many-city demo: demo-city-0001, demo-city-0002, ..."""
    return f"{CITY_ID}-{index:04d}"


def generate_demo_cities(out_dir: Path, *, count: int, scale: float = 1.0, seed: int = DEFAULT_SEED,
                         ) -> list[Path]:
    """Write `count` distinct demo cities into out_dir/<city id>/city.yaml; return the config paths.

    City i (1-based) uses seed `seed + i - 1`, so every city draws its own values; the folder is what
    `citykpi run <folder>` reads (pipelines/cities.py: `<name>/city.yaml`). A city whose city.yaml
    already exists is kept as it is (configs are written last, so an existing one means complete)."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count!r}")
    out_dir = Path(out_dir)
    paths = []
    for index in range(1, count + 1):
        city_id = demo_city_id(index)
        config = out_dir / city_id / "city.yaml"
        if not config.is_file():
            config = generate_demo_city(out_dir / city_id, scale=scale, seed=seed + index - 1,
                                        city_id=city_id, name=f"{CITY_NAME} {index:04d}")
        paths.append(config)
    return paths


def ensure_demo_city(home: Path, *, scale: float = 1.0, seed: int = DEFAULT_SEED) -> Path:
    """Generate into <home>/demo/sf<scale>-seed<seed>/ once and return its city.yaml path.

    The files are written into a temporary folder beside the target and renamed into place, so
    a killed run never leaves a half-written demo that a later call would mistake for complete.
    """
    target = Path(home) / "demo" / demo_dir_name(scale, seed)
    config = target / "city.yaml"
    if config.is_file():
        return config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        generate_demo_city(staging, scale=scale, seed=seed)
        try:
            os.replace(staging, target)
        except OSError:
            # Another process finished first (the target is a non-empty folder now): use theirs.
            if not config.is_file():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return config


# --------------------------------------------------------------------------------------------
# Geography: districts and green areas
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class District:
    code: str
    name: str
    shape: Polygon  # local km coordinates
    centre_distance_km: float


def _make_districts(rng: np.random.Generator) -> list[District]:
    """A jittered 4x3 grid; neighbours share the very same edge points, so they never overlap."""
    xs = -HALF_W + CELL_KM * np.arange(GRID_COLS + 1)
    ys = HALF_H - CELL_KM * np.arange(GRID_ROWS + 1)  # row 0 is the northern edge
    corners = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1)
    corners += rng.uniform(-0.4, 0.4, corners.shape)
    edges: dict[tuple[str, int, int], list[Point]] = {}
    for i in range(GRID_COLS + 1):
        for j in range(GRID_ROWS + 1):
            if i < GRID_COLS:
                edges[("h", i, j)] = _wiggly_edge(corners[i, j], corners[i + 1, j], rng)
            if j < GRID_ROWS:
                edges[("v", i, j)] = _wiggly_edge(corners[i, j], corners[i, j + 1], rng)

    districts = []
    for row in range(GRID_ROWS):
        for col in range(GRID_COLS):
            # Counter-clockwise (RFC 7946): down the west edge, east along the south, up, west.
            ring = _join_edges([(edges[("v", col, row)], True), (edges[("h", col, row + 1)], True),
                                (edges[("v", col + 1, row)], False), (edges[("h", col, row)], False)])
            shape = Polygon(ring)
            index = row * GRID_COLS + col
            districts.append(District(code=f"{index + 1:02d}", name=DISTRICT_NAMES[index], shape=shape,
                                      centre_distance_km=float(shape.centroid.distance(shapely.Point(0, 0)))))
    return districts


def _wiggly_edge(start: npt.NDArray[np.float64], end: npt.NDArray[np.float64],
                 rng: np.random.Generator) -> list[Point]:
    """Edge from start to end with three inner points nudged sideways, like a real boundary."""
    direction = end - start
    normal = np.array([-direction[1], direction[0]]) / float(np.hypot(*direction))
    points = [(float(start[0]), float(start[1]))]
    for t in (0.25, 0.5, 0.75):
        p = start + t * direction + rng.uniform(-0.25, 0.25) * normal
        points.append((float(p[0]), float(p[1])))
    points.append((float(end[0]), float(end[1])))
    return points


def _join_edges(parts: Sequence[tuple[list[Point], bool]]) -> list[Point]:
    ring: list[Point] = []
    for points, forward in parts:
        ring.extend((points if forward else points[::-1])[:-1])
    ring.append(ring[0])
    return ring


@dataclass(frozen=True)
class Park:
    park_id: str
    name: str
    category: str
    shape: Polygon


_PARK_KINDS = ("Stadtpark", "Volkspark", "Bürgerpark", "Grünzug", "Anger", "Auenpark", "Schlosspark",
               "Waldpark", "Rosengarten", "Friedenspark", "Spielpark", "Wiesengrund")


def _make_parks(districts: Sequence[District], rng: np.random.Generator) -> list[Park]:
    """Two to four parks per district, each inside its district and clear of the others."""
    parks: list[Park] = []
    placed: list[Polygon] = []
    for district in districts:
        inner = district.shape.buffer(-0.08)
        kinds = rng.choice(len(_PARK_KINDS), size=int(rng.integers(2, 5)), replace=False)
        for kind_index in kinds:
            area_ha = float(np.clip(rng.lognormal(math.log(30.0), 0.9), 1.5, 220.0))
            shape = _place_park(inner, placed, area_ha, rng)
            if shape is None:
                continue
            placed.append(shape)
            kind = _PARK_KINDS[int(kind_index)]
            parks.append(Park(park_id=f"GF-{len(parks) + 1:04d}", name=f"{kind} {district.name}",
                              category="Friedhof" if kind == "Friedenspark" else "Parkanlage", shape=shape))
    return parks


def _place_park(inner: Polygon, placed: Sequence[Polygon], area_ha: float,
                rng: np.random.Generator) -> Polygon | None:
    """Rejection sampling; halves the size after every 50 failed tries."""
    minx, miny, maxx, maxy = inner.bounds
    for attempt in range(200):
        size = area_ha / 2 ** (attempt // 50)
        radius = math.sqrt(size / 100.0 / math.pi)  # ha -> km2 -> km
        cx, cy = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        angles = np.linspace(0, 2 * math.pi, 12, endpoint=False)
        radii = radius * rng.uniform(0.75, 1.2, angles.size)
        ring = [(cx + r * math.cos(a), cy + r * math.sin(a)) for r, a in zip(radii, angles, strict=True)]
        shape = Polygon(ring)
        if inner.contains(shape) and not any(shape.buffer(0.05).intersects(other) for other in placed):
            return shape
    return None


def _to_lonlat(x: float, y: float) -> list[float]:
    return [round(CENTER_LON + x / KM_PER_DEG_LON, 6), round(CENTER_LAT + y / KM_PER_DEG_LAT, 6)]


def _polygon_coordinates(shape: Polygon) -> list[list[list[float]]]:
    shape = shapely.geometry.polygon.orient(shape, sign=1.0)
    return [[_to_lonlat(x, y) for x, y in shape.exterior.coords]]


def _district_of(districts: Sequence[District], x: float, y: float) -> District:
    for district in districts:
        if district.shape.covers(shapely.Point(x, y)):
            return district
    return min(districts, key=lambda d: d.shape.distance(shapely.Point(x, y)))


def _write_districts_geojson(path: Path, districts: Sequence[District]) -> None:
    features = [{"type": "Feature",
                 "properties": {"bezirk_nr": d.code, "name": d.name},
                 "geometry": {"type": "Polygon", "coordinates": _polygon_coordinates(d.shape)}}
                for d in districts]
    _write_json(path, {"type": "FeatureCollection", "name": "Stadtbezirke Demoville", "features": features})


def _write_parks_geojson(path: Path, parks: Sequence[Park]) -> None:
    features = [{"type": "Feature",
                 "properties": {"gf_id": p.park_id, "name": p.name, "kategorie": p.category},
                 "geometry": {"type": "Polygon", "coordinates": _polygon_coordinates(p.shape)}}
                for p in parks]
    _write_json(path, {"type": "FeatureCollection", "name": "Öffentliche Grünflächen", "features": features})


def _write_json(path: Path, obj: Any) -> None:
    path.write_bytes((json.dumps(obj, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))


# --------------------------------------------------------------------------------------------
# Streets: an OSM-shaped walkable network (issue #15: walking distance)
# --------------------------------------------------------------------------------------------

BLOCK_KM = 0.15        # street spacing: 150 m blocks
STREET_GAP_SHARE = 0.12  # street segments left out: irregular blocks and dead ends
BRIDGE_X_KM = 0.0      # the one crossing of the river


def _river_y(x: FloatArray) -> FloatArray:
    """The river, flowing west to east north of the centre (km)."""
    return 1.6 + 0.6 * np.sin(np.asarray(x) / 2.5)


@dataclass(frozen=True)
class Streets:
    xy: FloatArray  # (n, 2) node coordinates in local km; node i has OSM id i + 1
    edges: npt.NDArray[np.int64]  # (m, 2) node indices
    highway: list[str]


def _make_streets(rng: np.random.Generator) -> Streets:
    """A 150 m street grid over the city's box with some segments left out (dead ends, irregular
    blocks); every street crossing the river is cut except one bridge; every 7th line is a
    secondary road; plus one motorway (not walkable, so the parser must leave it out)."""
    xs = np.arange(-HALF_W, HALF_W + 1e-9, BLOCK_KM)
    ys = np.arange(-HALF_H, HALF_H + 1e-9, BLOCK_KM)
    nx, ny = xs.size, ys.size
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    xy = np.column_stack([gx.ravel(), gy.ravel()])
    index = np.arange(nx * ny).reshape(ny, nx)
    horizontal = np.column_stack([index[:, :-1].ravel(), index[:, 1:].ravel()])
    vertical = np.column_stack([index[:-1, :].ravel(), index[1:, :].ravel()])
    edges = np.vstack([horizontal, vertical])
    keep = rng.random(len(edges)) >= STREET_GAP_SHARE
    a, b = xy[edges[:, 0]], xy[edges[:, 1]]
    side_a, side_b = a[:, 1] > _river_y(a[:, 0]), b[:, 1] > _river_y(b[:, 0])
    crossing = side_a != side_b
    bridge = crossing & (np.abs(a[:, 0] - BRIDGE_X_KM) < BLOCK_KM / 2) & (a[:, 0] == b[:, 0])
    keep &= ~crossing | bridge
    keep |= bridge  # the bridge is never a gap
    edges = edges[keep]
    row_a, col_a = np.divmod(edges[:, 0], nx)
    row_b, col_b = np.divmod(edges[:, 1], nx)
    major = ((row_a == row_b) & (row_a % 7 == 0)) | ((col_a == col_b) & (col_a % 7 == 0))
    highway = ["secondary" if m else "residential" for m in major.tolist()]
    return Streets(xy=xy, edges=edges.astype(np.int64), highway=highway)


def _write_streets_osm(path: Path, streets: Streets) -> None:
    """OSM XML as an extract from a planet dump: nodes, then one way per street segment."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<osm version="0.6" generator="citykpi demo (synthetic)">']
    lon = np.round(CENTER_LON + streets.xy[:, 0] / KM_PER_DEG_LON, 7)
    lat = np.round(CENTER_LAT + streets.xy[:, 1] / KM_PER_DEG_LAT, 7)
    lines += [f' <node id="{i + 1}" lat="{la:.7f}" lon="{lo:.7f}"/>'
              for i, (lo, la) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True))]
    for k, ((a, b), highway) in enumerate(zip(streets.edges.tolist(), streets.highway, strict=True)):
        lines.append(f' <way id="{k + 1}"><nd ref="{a + 1}"/><nd ref="{b + 1}"/>'
                     f'<tag k="highway" v="{highway}"/></way>')
    # A motorway along the southern edge: a pedestrian may not use it, so the parser drops it.
    south = [int(i) + 1 for i in np.flatnonzero(np.isclose(streets.xy[:, 1], streets.xy[:, 1].min()))]
    refs = "".join(f'<nd ref="{r}"/>' for r in south[:200])
    lines.append(f' <way id="{len(streets.edges) + 1}">{refs}<tag k="highway" v="motorway"/></way>')
    lines.append("</osm>")
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


# --------------------------------------------------------------------------------------------
# People: district population by year
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Population:
    """Integer counts per [district, year index]; the parts always add up to the totals."""

    total: npt.NDArray[np.int64]
    female: npt.NDArray[np.int64]
    age_0_14: npt.NDArray[np.int64]
    age_65_plus: npt.NDArray[np.int64]
    households: npt.NDArray[np.int64]

    @property
    def male(self) -> npt.NDArray[np.int64]:
        return self.total - self.female

    @property
    def age_15_64(self) -> npt.NDArray[np.int64]:
        return self.total - self.age_0_14 - self.age_65_plus

    def city(self, values: npt.NDArray[np.int64]) -> FloatArray:
        return values.sum(axis=0).astype(np.float64)


def _make_population(districts: Sequence[District], rng: np.random.Generator) -> Population:
    """Dense centre, greener edges; ~497,000 people in 2019 growing slowly (flat in 2020-21)."""
    distance = np.array([d.centre_distance_km for d in districts])
    area = np.array([d.shape.area for d in districts])
    density = 1500 + 5500 * np.exp(-((distance / 5.0) ** 2))
    weight = density * area * rng.lognormal(0.0, 0.1, len(districts))
    base = 497_000 * weight / weight.sum()

    years = np.array(YEARS)
    rate = rng.uniform(0.0, 0.01, len(districts))[:, None] - np.isin(years, [2020, 2021]) * 0.003
    rate[:, 0] = 0.0  # 2019 is the base year
    total = np.rint(base[:, None] * np.cumprod(1 + rate, axis=1)).astype(np.int64)

    t = (years - YEARS[0])[None, :]
    central = (distance < 4.0)[:, None]
    female_share = rng.uniform(0.500, 0.516, (len(districts), 1))
    child_share = rng.uniform(0.115, 0.150, (len(districts), 1)) - 0.0008 * t
    old_share = rng.uniform(0.17, 0.25, (len(districts), 1)) + 0.0012 * t
    household_size = np.where(central, rng.uniform(1.70, 1.85, (len(districts), 1)),
                              rng.uniform(1.90, 2.10, (len(districts), 1))) - 0.004 * t
    return Population(
        total=total,
        female=np.rint(total * female_share).astype(np.int64),
        age_0_14=np.rint(total * child_share).astype(np.int64),
        age_65_plus=np.rint(total * old_share).astype(np.int64),
        households=np.rint(total / household_size).astype(np.int64),
    )


_POPULATION_HEADER = ("Bezirk-Nr.", "Bezirk", "Jahr", "Einwohner insgesamt", "weiblich", "männlich",
                      "0 bis 14 Jahre", "15 bis 64 Jahre", "65 Jahre und älter", "Privathaushalte")


def _write_population_xlsx(path: Path, districts: Sequence[District], people: Population) -> None:
    """Notes sheet first, data sheet second with a merged title row above the header (row 2)."""
    wb = Workbook()
    notes = wb.active
    assert notes is not None
    notes.title = "Erläuterungen"
    for line in ("Bevölkerung und Haushalte nach Stadtbezirken, Demoville",
                 "Stand: jeweils 31.12.; Einwohner mit Hauptwohnsitz.",
                 "Quelle: Amt für Statistik und Wahlen Demoville (synthetische Demodaten).",
                 "Lizenz: CC0-1.0"):
        notes.append([line])
    sheet = wb.create_sheet("Bevoelkerung")
    sheet.append([f"Bevölkerung nach Stadtbezirken {YEARS[0]}-{YEARS[-1]} (Stand jeweils 31.12.)"])
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(_POPULATION_HEADER))
    sheet["A1"].font = Font(bold=True, size=12)
    sheet.append(list(_POPULATION_HEADER))
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for y, year in enumerate(YEARS):
        for d, district in enumerate(districts):
            counts = (people.total, people.female, people.male, people.age_0_14, people.age_15_64,
                      people.age_65_plus, people.households)
            sheet.append([district.code, district.name, year, *(int(c[d, y]) for c in counts)])
    sheet.freeze_panes = "A3"
    for column, width in zip("ABCDEFGHIJ", (11, 14, 7, 19, 11, 11, 15, 16, 19, 15), strict=True):
        sheet.column_dimensions[column].width = width
    wb.properties.creator = "Amt für Statistik und Wahlen Demoville"
    wb.properties.lastModifiedBy = "Amt für Statistik und Wahlen Demoville"
    wb.properties.created = XLSX_DATE
    buffer = io.BytesIO()
    wb.save(buffer)
    # Saving stamps "now" as the modified date and into every zip entry: pin both afterwards.
    wb.properties.modified = XLSX_DATE
    core = tostring(wb.properties.to_tree())
    path.write_bytes(_restamp_zip(buffer.getvalue(), {"docProps/core.xml": core}))


def _restamp_zip(data: bytes, replace: dict[str, bytes]) -> bytes:
    """Rewrite a zip with fixed entry dates and attributes, swapping in the `replace` entries."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            _write_zip_entry(dst, info.filename, replace.get(info.filename) or src.read(info))
    return out.getvalue()


def _write_zip_entry(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    archive.writestr(info, data, compresslevel=6)


# --------------------------------------------------------------------------------------------
# City-level statistics (long, Latin-1 CSV) and utilities (wide, UTF-8 CSV with BOM)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statistic:
    label: str  # "Merkmal" as published; the key in city.yaml
    unit_label: str  # "Einheit" column, informational only
    decimals: int
    values: dict[int, float]


def _city_statistics(people: Population, n_stops: int, rng: np.random.Generator) -> list[Statistic]:
    """City-level annual statistics derived from the population so that ratios stay plausible."""
    pop = people.city(people.total)
    hh = people.city(people.households)
    working_age = people.city(people.age_15_64)
    years = np.array(YEARS, dtype=np.float64)
    t = years - YEARS[0]

    def ramp(start: float, end: float) -> FloatArray:
        return start + (end - start) * t / t[-1]

    def noisy(values: FloatArray, sd: float = 0.005) -> FloatArray:
        return values * rng.lognormal(0.0, sd, values.size)

    covid = np.where(np.isin(years, [2020, 2021]), 1.0, 0.0)
    labour = noisy(working_age * 0.79)
    unemployment_rate = np.array([0.062, 0.071, 0.068, 0.061, 0.063, 0.066])
    youth_labour = noisy(labour * 0.081)
    enterprises = noisy(21_500 * 1.01**t)
    water_meters = np.rint(61_300 * 1.004**t)  # meter stocks only grow: no noise
    electricity_meters = np.rint(hh * ramp(1.12, 1.125))
    energy_total = noisy(11_800_000 * 0.985**t * (1 - 0.04 * covid))
    school_age = noisy(pop * 0.112)
    eligible = pop * 0.83

    series: list[tuple[str, str, int, FloatArray]] = [
        ("Haushalte mit Internetzugang", "Haushalte", 0, hh * ramp(0.89, 0.95)),
        ("Festnetz-Breitbandanschlüsse", "Anzahl", 0, hh * ramp(0.80, 0.87)),
        ("Mobile Breitbandverträge (aktiv)", "Anzahl", 0, noisy(pop * ramp(1.02, 1.18))),
        ("Wasserzähler insgesamt", "Anzahl", 0, water_meters),
        ("Wasserzähler mit Fernauslesung", "Anzahl", 0, water_meters * ramp(0.06, 0.28)),
        ("Stromzähler insgesamt", "Anzahl", 0, electricity_meters),
        ("Intelligente Stromzähler (Smart Meter)", "Anzahl", 0, electricity_meters * ramp(0.02, 0.14)),
        ("Haltestellen mit dynamischer Fahrgastinformation", "Anzahl", 0, n_stops * ramp(0.22, 0.41)),
        ("Erwerbspersonen", "Personen", 0, labour),
        ("Arbeitslose", "Personen", 0, labour * unemployment_rate),
        ("Erwerbspersonen 15 bis 24 Jahre", "Personen", 0, youth_labour),
        ("Arbeitslose 15 bis 24 Jahre", "Personen", 0, youth_labour * (unemployment_rate + 0.012)),
        ("Unternehmen insgesamt", "Anzahl", 0, enterprises),
        ("Kleine und mittlere Unternehmen (< 250 Beschäftigte)", "Anzahl", 0, enterprises * 0.9935),
        ("Haushalte mit Trinkwasserversorgung", "Haushalte", 0, hh * 0.9995),
        ("Haushalte mit Abwasserentsorgung", "Haushalte", 0, hh * ramp(0.9968, 0.9985)),
        ("Haushalte mit Stromanschluss", "Haushalte", 0, hh * 0.9998),
        ("Länge der Radverkehrsanlagen", "km", 1, 318.4 * 1.03**t),
        ("Länge des ÖPNV-Liniennetzes", "km", 1, 412.6 + 2.7 * t),
        ("Stromverbrauch", "MWh", 1, noisy(2_550_000 * 0.992**t * (1 - 0.03 * covid))),
        ("Endenergieverbrauch insgesamt", "MWh", 1, energy_total),
        ("Endenergieverbrauch aus erneuerbaren Quellen", "MWh", 1, energy_total * ramp(0.14, 0.22)),
        ("Treibhausgasemissionen", "t CO2-Äq.", 1, noisy(3_350_000 * 0.97**t * (1 - 0.05 * covid))),
        ("Schülerinnen und Schüler", "Personen", 0, school_age * 0.981),
        ("Bevölkerung im schulpflichtigen Alter (6 bis 18 Jahre)", "Personen", 0, school_age),
        ("Ärzte", "Personen", 0, noisy(pop * ramp(4.55, 4.8) / 1000)),
        ("Krankenhausbetten", "Betten", 0, noisy(np.full(t.size, 3650.0), 0.01)),
        ("Lebenserwartung bei Geburt", "Jahre", 1, np.array([80.8, 80.6, 80.3, 80.9, 81.1, 81.3])),
        ("Personen unterhalb der Armutsgefährdungsschwelle", "Personen", 0,
         pop * np.array([0.165, 0.171, 0.169, 0.163, 0.161, 0.158])),
        ("Polizeivollzugsbeamte (Vollzeitäquivalente)", "VZÄ", 1, 958.5 + 5.3 * t),
        ("Berufsfeuerwehr (Vollzeitäquivalente)", "VZÄ", 1, 417.0 + 3.6 * t),
        ("Gewaltdelikte", "Fälle", 0, noisy(1_310 * (1 - 0.08 * covid), 0.04)),
        ("Verkehrstote", "Personen", 0, rng.poisson(9.0, t.size).astype(np.float64)),
        # Land use survey (no random draws, so the series above keep their numbers): the settlement
        # and transport area grows a little faster than the population (SDG 11.3.1 LCRPGR > 1).
        ("Siedlungs- und Verkehrsfläche", "ha", 1, 9_860.0 * (1 + 0.0028 * t)),
        ("Verkehrsfläche (Straße, Weg, Platz)", "ha", 1, 2_150.0 + 6.0 * t),
        ("Bodenfläche", "km²", 1, np.full(t.size, 201.7)),  # the city's land area (EC:I:UP:1A, EN:EN:PSN:3A)
    ]
    stats = [Statistic(label, unit, decimals, {int(y): float(v) for y, v in zip(YEARS, values, strict=True)})
             for label, unit, decimals, values in series]
    # Municipal elections (Stadtratswahl) only took place in 2019 and 2024.
    turnout = {2019: 0.524, 2024: 0.581}
    election_years = [YEARS.index(year) for year in turnout]
    stats.append(Statistic("Wählerinnen und Wähler (Stadtratswahl)", "Personen", 0,
                           {YEARS[i]: float(eligible[i] * turnout[YEARS[i]]) for i in election_years}))
    stats.append(Statistic("Wahlberechtigte (Stadtratswahl)", "Personen", 0,
                           {YEARS[i]: float(eligible[i]) for i in election_years}))
    return stats


def _indicator_statistics(people: Population, earlier: Sequence[Statistic]) -> list[Statistic]:
    """The rows for the rest of the indicator set (sources/demo/indicator_series.py), after the others."""
    totals = CityTotals(
        population=people.city(people.total), households=people.city(people.households),
        adults=people.city(people.age_15_64) + people.city(people.age_65_plus),
        children_0_14=people.city(people.age_0_14),
        earlier={stat.label: np.array([stat.values[year] for year in YEARS]) for stat in earlier
                 if set(stat.values) == set(YEARS)})
    series = [*statistics_series(totals),
              # Not mapped in city.yaml: shows that extra rows in a long table are fine (counted as unmapped).
              ("Einwohnerdichte", "Einwohner je km²", 1, totals.population / 201.7)]
    return [Statistic(label, unit, decimals, {int(y): float(v) for y, v in zip(YEARS, values, strict=True)})
            for label, unit, decimals, values in series]


def german_number(value: float, decimals: int) -> str:
    """1234567.5 -> '1.234.567,5' (German thousands dots and decimal comma)."""
    text = f"{value:,.{decimals}f}"
    return text.translate(str.maketrans(",.", ".,"))


def _write_statistics_csv(path: Path, stats: Sequence[Statistic]) -> None:
    """Long layout, ';' separated, CRLF, Latin-1: the classic German statistics office export."""
    lines = ["Jahr;Merkmal;Wert;Einheit"]
    for stat in stats:
        for year, value in stat.values.items():
            lines.append(f"{year};{stat.label};{german_number(value, stat.decimals)};{stat.unit_label}")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))


# ---- series declared in canonical/variables.yaml (`demo:`) ----------------------------------------

DISTRICT_STATISTICS = "statistik_bezirke.csv"


def _declared_series(variables: Mapping[str, Variable], people: Population,
                     stats: Sequence[Statistic]) -> list[DeclaredSeries]:
    """The series of every declared variable the hand series do not give (sources/demo/declared.py)."""
    declared = to_generate(variables, _template_mapped_variables())
    if not declared:
        return []
    counts = {"population": people.total, "population_female": people.female, "population_male": people.male,
              "population_age_0_14": people.age_0_14, "population_age_15_64": people.age_15_64,
              "population_age_65_plus": people.age_65_plus, "households_total": people.households}
    district = {variable: values.astype(np.float64) for variable, values in counts.items()}
    city = {variable: values.sum(axis=0) for variable, values in district.items()}
    # The hand series of statistik_stadt.csv as printed, in canonical units (one series per variable).
    for stat in stats:
        mapping = _template_statistics_mapping().get(stat.label)
        if (mapping is None or mapping[2] is not None or set(stat.values) != set(YEARS) or mapping[0] in city
                or mapping[0] not in variables):
            continue
        variable, unit, _ = mapping
        factor = conversion_factor(unit, variables[variable].unit, variable=variable)
        city[variable] = np.array([round(stat.values[year], stat.decimals) * factor for year in YEARS])
    bases = Bases(city=city, district=district, districts=len(people.total))
    return declared_series(declared, bases, len(YEARS), {s.label for s in stats})


def _write_district_statistics_csv(path: Path, districts: Sequence[District],
                                   series: Sequence[DeclaredSeries]) -> None:
    """Long layout by district, in the statistics office's format (as statistik_stadt.csv)."""
    lines = ["Jahr;Bezirk-Nr.;Merkmal;Wert;Einheit"]
    for item in series:
        for d, district in enumerate(districts):
            lines.extend(f"{year};{district.code};{item.label};"
                         f"{german_number(float(item.values[d, y]), item.decimals)};{item.unit}"
                         for y, year in enumerate(YEARS))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))


_WASTE_SHARES = {"abfall_deponie_t": (0.006, 0.004), "abfall_verbrennung_t": (0.335, 0.305),
                 "abfall_verwertung_t": (0.642, 0.676)}


def _write_utilities_csv(path: Path, people: Population, rng: np.random.Generator) -> None:
    """Wide layout, one row per year, UTF-8 with BOM, ',' separator, '.' decimals.

    Billed < consumption < supplied (non-revenue water ~8 %); the waste treatment columns add up
    exactly to the total. The columns after `abfall_sonstige_t` (sources/demo/indicator_series.py)
    draw nothing from `rng`, so the earlier columns keep their values.
    """
    pop = people.city(people.total)
    t = np.arange(len(YEARS), dtype=np.float64) / (len(YEARS) - 1)
    billed = pop * 0.168 * 365 * rng.lognormal(0.0, 0.01, len(YEARS))  # m3 at 168 l per person and day
    supplied = billed / (1 - (0.085 - 0.01 * t))
    consumption_ml = billed * 1.017 / 1000.0  # megalitres
    waste_total = pop * rng.normal(0.452, 0.006, len(YEARS))  # tonnes at ~450 kg per person
    header = ["Jahr", "wasser_eingespeist_m3", "wasser_abgerechnet_m3", "wasserverbrauch_ML",
              "abfall_gesamt_t", *_WASTE_SHARES, "abfall_sonstige_t", *UTILITY_COLUMNS]
    rows = [header]
    for i, year in enumerate(YEARS):
        total = round(float(waste_total[i]), 1)
        parts = [round(total * (a + (b - a) * float(t[i])), 1) for a, b in _WASTE_SHARES.values()]
        other = round(total - sum(parts), 1)
        extra = utility_columns(i, len(YEARS), total, parts, float(consumption_ml[i]), float(billed[i]))
        rows.append([str(year), f"{supplied[i]:.0f}", f"{billed[i]:.0f}", f"{consumption_ml[i]:.1f}",
                     f"{total:.1f}", *(f"{p:.1f}" for p in parts), f"{other:.1f}", *extra])
    text = "".join(",".join(row) + "\r\n" for row in rows)
    path.write_bytes(text.encode("utf-8-sig"))


# --------------------------------------------------------------------------------------------
# Public transport: a GTFS static feed
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stop:
    stop_id: str
    name: str
    x: float
    y: float


@dataclass(frozen=True)
class Route:
    route_id: str
    short_name: str
    long_name: str
    route_type: int  # 0 tram, 2 rail, 3 bus
    stops: list[Stop]
    speed_kmh: float


@dataclass(frozen=True)
class Feed:
    stops: list[Stop]
    routes: list[Route]


_PLACES = ("Markt", "Rathaus", "Kirche", "Schule", "Friedhof", "Lindenstraße", "Bahnhofstraße", "Post",
           "Sportplatz", "Schwimmhalle", "Gartenweg", "Mühle", "Klinikum", "Brücke", "Gymnasium",
           "Hauptstraße", "Am Anger", "Bergstraße", "Feldweg", "Kastanienallee", "Turnhalle",
           "Goetheplatz", "Schillerstraße", "Wasserturm", "Gewerbegebiet", "Ringstraße", "Stadion",
           "Universität", "Theater", "Museum", "Park", "Wendeschleife")

_HEADWAYS: dict[int, dict[str, tuple[int, int]]] = {  # (peak, off-peak) minutes per service
    3: {"WT": (10, 20), "SA": (20, 20), "SO": (30, 30)},
    0: {"WT": (7, 10), "SA": (10, 10), "SO": (15, 15)},
    2: {"WT": (30, 30), "SA": (30, 30), "SO": (60, 60)},
}


def _make_transit(districts: Sequence[District], rng: np.random.Generator) -> Feed:
    """Four tram lines through the centre, 18 bus lines and one S-Bahn line across the city."""
    box_x, box_y = HALF_W - INNER_MARGIN_KM, HALF_H - INNER_MARGIN_KM
    counter = iter(range(1, 100_000))
    routes: list[Route] = []

    def add(route_id: str, short: str, route_type: int, path: list[Point], spacing: float,
            speed: float) -> None:
        stops = _stops_along(path, spacing, districts, counter, rng, rail=route_type == 2)
        long_name = f"{stops[0].name} - {stops[-1].name}"
        routes.append(Route(route_id, short, long_name, route_type, stops, speed))

    for k in range(4):
        angle = k * math.pi / 4 + rng.uniform(-0.2, 0.2)
        reach = min(box_x / max(abs(math.cos(angle)), 1e-9), box_y / max(abs(math.sin(angle)), 1e-9))
        a = (reach * math.cos(angle), reach * math.sin(angle))
        via = (rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6))
        add(f"T{k + 1}", str(k + 1), 0, [a, via, (-a[0], -a[1])], 0.55, 20.0)
    for k in range(18):
        a, b = _far_apart_points(rng, box_x, box_y, 5.0)
        mid = ((a[0] + b[0]) / 2 + rng.uniform(-2, 2), (a[1] + b[1]) / 2 + rng.uniform(-2, 2))
        via = (float(np.clip(mid[0], -box_x, box_x)), float(np.clip(mid[1], -box_y, box_y)))
        add(f"B{k + 10}", str(k + 10), 3, [a, via, b], 0.5, 18.0)
    add("S1", "S1", 2, [(-box_x, -3.0), (0.0, 0.3), (box_x, 2.6)], 2.0, 55.0)
    return Feed(stops=[stop for route in routes for stop in route.stops], routes=routes)


def _far_apart_points(rng: np.random.Generator, box_x: float, box_y: float,
                      min_km: float) -> tuple[Point, Point]:
    while True:
        a = (float(rng.uniform(-box_x, box_x)), float(rng.uniform(-box_y, box_y)))
        b = (float(rng.uniform(-box_x, box_x)), float(rng.uniform(-box_y, box_y)))
        if math.dist(a, b) >= min_km:
            return a, b


def _stops_along(path: list[Point], spacing: float, districts: Sequence[District], counter: Iterator[int],
                 rng: np.random.Generator, *, rail: bool) -> list[Stop]:
    """Evenly spaced stops along a polyline that lies inside the (convex) inner box."""
    line = LineString(path)
    n = max(2, round(line.length / spacing) + 1)
    points = shapely.line_interpolate_point(line, np.linspace(0.0, line.length, n))
    stops = []
    for point in points:
        x, y = float(point.x), float(point.y)
        district = _district_of(districts, x, y)
        if rail:
            name = "Demoville Hbf" if math.hypot(x, y) < 1.2 else f"Demoville-{district.name}"
        else:
            name = f"{district.name}, {_PLACES[int(rng.integers(len(_PLACES)))]}"
        stops.append(Stop(f"de:16999:{next(counter):05d}", name, x, y))
    return stops


def _departures(route_type: int, service: str) -> list[int]:
    """Departure seconds after midnight: 05:00-23:30, denser in the morning and evening peaks."""
    peak, off_peak = _HEADWAYS[route_type][service]
    times, minute = [], 5 * 60
    while minute <= 23 * 60 + 30:
        times.append(minute * 60)
        hour = minute // 60
        minute += peak if service == "WT" and (6 <= hour < 9 or 15 <= hour < 19) else off_peak
    return times


def _stop_offsets(route: Route) -> npt.NDArray[np.int64]:
    """Seconds from the first stop, rounded to whole minutes as timetables print them."""
    xy = np.array([(s.x, s.y) for s in route.stops])
    seconds = np.hypot(*np.diff(xy, axis=0).T) / route.speed_kmh * 3600 + 20  # 20 s dwell
    return (np.rint(np.concatenate([[0.0], np.cumsum(seconds)]) / 60) * 60).astype(np.int64)


def _gtfs_tables(feed: Feed) -> dict[str, list[list[str]]]:
    stops = [["stop_id", "stop_name", "stop_lat", "stop_lon", "location_type", "wheelchair_boarding"]]
    for stop in feed.stops:
        lon, lat = _to_lonlat(stop.x, stop.y)
        stops.append([stop.stop_id, stop.name, f"{lat:.6f}", f"{lon:.6f}", "0", "1"])
    routes = [["route_id", "agency_id", "route_short_name", "route_long_name", "route_type"]]
    trips = [["route_id", "service_id", "trip_id", "trip_headsign", "direction_id"]]
    stop_times = [["trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence"]]
    clock = [f"{m // 60:02d}:{m % 60:02d}:00" for m in range(30 * 60)]
    for route in feed.routes:
        routes.append([route.route_id, "DVV", route.short_name, route.long_name, str(route.route_type)])
        offsets = _stop_offsets(route)
        for direction in (0, 1):
            stops_in_order = route.stops if direction == 0 else route.stops[::-1]
            leg = offsets if direction == 0 else offsets[-1] - offsets[::-1]
            for service in ("WT", "SA", "SO"):
                starts = np.array(_departures(route.route_type, service)) + direction * 300
                minutes = (starts[:, None] + leg[None, :]) // 60
                for k in range(starts.size):
                    trip_id = f"{route.route_id}-{service}-{direction}-{k + 1:03d}"
                    trips.append([route.route_id, service, trip_id, stops_in_order[-1].name, str(direction)])
                    stop_times.extend([trip_id, clock[m], clock[m], stop.stop_id, str(seq)]
                                      for seq, (m, stop) in enumerate(zip(minutes[k], stops_in_order,
                                                                          strict=True), start=1))
    return {
        "agency.txt": [["agency_id", "agency_name", "agency_url", "agency_timezone", "agency_lang"],
                       ["DVV", "Demoviller Verkehrsbetriebe", "https://verkehr.demoville.example",
                        "Europe/Berlin", "de"]],
        "stops.txt": stops,
        "routes.txt": routes,
        "trips.txt": trips,
        "stop_times.txt": stop_times,
        "calendar.txt": [["service_id", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                          "sunday", "start_date", "end_date"],
                         ["WT", "1", "1", "1", "1", "1", "0", "0", "20240101", "20241231"],
                         ["SA", "0", "0", "0", "0", "0", "1", "0", "20240101", "20241231"],
                         ["SO", "0", "0", "0", "0", "0", "0", "1", "20240101", "20241231"]],
        "feed_info.txt": [["feed_publisher_name", "feed_publisher_url", "feed_lang", "feed_start_date",
                           "feed_end_date", "feed_version"],
                          ["Demoviller Verkehrsbetriebe", "https://verkehr.demoville.example", "de",
                           "20240101", "20241231", "2024.1"]],
    }


def _write_gtfs(path: Path, feed: Feed) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, rows in _gtfs_tables(feed).items():
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerows(rows)
            _write_zip_entry(archive, name, text.getvalue().encode("utf-8"))


# --------------------------------------------------------------------------------------------
# Air quality: stations (NGSI-LD) and hourly readings (Parquet)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Station:
    index: int
    code: str
    kind: str  # traffic, background or suburban
    x: float
    y: float
    district: District

    @property
    def entity_id(self) -> str:
        return f"urn:ngsi-ld:AirQualityObserved:{self.code}"


_STATION_KIND_LABEL = {"traffic": "Verkehr", "background": "städtischer Hintergrund",
                       "suburban": "vorstädtisch"}


def _make_stations(districts: Sequence[District], seed: int, count: int) -> list[Station]:
    """Each station draws its place from its own stream: station i is the same at every scale."""
    stations = []
    for i in range(count):
        rng = _rng(seed, _RNG_STATION, i, 0)
        x = float(rng.uniform(-(HALF_W - INNER_MARGIN_KM), HALF_W - INNER_MARGIN_KM))
        y = float(rng.uniform(-(HALF_H - INNER_MARGIN_KM), HALF_H - INNER_MARGIN_KM))
        kind = ("traffic", "background", "background", "suburban")[i % 4]
        stations.append(Station(i, f"DEDV{i + 1:03d}", kind, x, y, _district_of(districts, x, y)))
    return stations


@dataclass(frozen=True)
class Clock:
    """Hourly UTC time axis for the readings and the calendar features the patterns need."""

    timestamps: npt.NDArray[np.datetime64]
    local_hour: FloatArray  # CET, no daylight saving: good enough for diurnal shapes
    season: FloatArray  # +1 mid-January .. -1 mid-July
    weekend: BoolArray
    years_since_start: FloatArray

    @classmethod
    def build(cls) -> Clock:
        start = np.datetime64(f"{READING_YEARS[0]}-01-01T00", "h")
        end = np.datetime64(f"{READING_YEARS[-1] + 1}-01-01T00", "h")
        hours = np.arange(start, end, dtype="datetime64[h]")
        n = np.arange(hours.size)
        days = n // 24
        return cls(
            timestamps=hours.astype("datetime64[us]"),
            local_hour=((n + 1) % 24).astype(np.float64),
            season=np.cos(2 * np.pi * (days - 15) / 365.25),
            weekend=((days + 5) % 7) >= 5,  # 2022-01-01 was a Saturday
            years_since_start=(hours.astype("datetime64[Y]").astype(np.int64) + 1970 - READING_YEARS[0])
            .astype(np.float64),
        )


def _smooth_noise(rng: np.random.Generator, n: int, tau_hours: int) -> FloatArray:
    """Unit-variance noise with an exponential memory of tau hours (weather episodes)."""
    kernel = np.exp(-np.arange(5 * tau_hours) / tau_hours)
    white = rng.standard_normal(n + kernel.size - 1)
    smooth: FloatArray = np.convolve(white, kernel, mode="valid") / math.sqrt(float(np.sum(kernel**2)))
    return smooth


def _lognormal(z: FloatArray, sigma: float) -> FloatArray:
    """Mean-one multiplicative factor from standard-normal noise."""
    factor: FloatArray = np.exp(sigma * z - sigma**2 / 2)
    return factor


def _station_series(station: Station, clock: Clock, rng: np.random.Generator) -> dict[str, FloatArray]:
    """Hourly values in the published units: ug/m3 for PM and NO2, ppb for SO2 and O3."""
    n = clock.timestamps.size
    h, season = clock.local_hour, clock.season
    episode = _smooth_noise(rng, n, 72)  # shared by all pollutants: stagnant weather lifts them all
    rush = (1 + 0.45 * np.exp(-(((h - 7.5) / 1.6) ** 2)) + 0.35 * np.exp(-(((h - 17.5) / 2.2) ** 2))
            - 0.3 * np.exp(-(((h - 3.5) / 2.5) ** 2)))
    rush = rush / rush[:24].mean()
    level = {"traffic": 1.15, "background": 1.0, "suburban": 0.85}[station.kind] * rng.uniform(0.92, 1.08)
    no2_base = {"traffic": 36.0, "background": 24.0, "suburban": 18.0}[station.kind]
    o3_base = {"traffic": 22.0, "background": 26.0, "suburban": 29.0}[station.kind]

    pm25 = (10.5 * level * 0.97**clock.years_since_start * (1 + 0.3 * season) * (1 + 0.08 * (rush - 1))
            * np.where(clock.weekend, 0.95, 1.0) * _lognormal(episode, 0.45)
            * _lognormal(_smooth_noise(rng, n, 3), 0.25))
    pm10 = pm25 * rng.uniform(1.6, 1.8) + 2.0 * level * _lognormal(_smooth_noise(rng, n, 4), 0.5)
    no2 = (no2_base * rng.uniform(0.92, 1.08) * 0.96**clock.years_since_start * (1 + 0.2 * season) * rush
           * np.where(clock.weekend, 0.78, 1.0) * _lognormal(0.8 * episode, 0.5)
           * _lognormal(_smooth_noise(rng, n, 3), 0.3))
    so2 = (1.0 * rng.uniform(0.8, 1.2) * (1 + 0.3 * season) * _lognormal(episode, 0.3)
           * _lognormal(_smooth_noise(rng, n, 6), 0.4))
    afternoon = 1 + 0.35 * np.cos(2 * np.pi * (h - 15) / 24)  # photochemistry peaks mid-afternoon
    o3 = (o3_base * rng.uniform(0.92, 1.08) * (1 - 0.3 * season) * afternoon
          * _lognormal(-0.5 * episode, 0.3) * _lognormal(_smooth_noise(rng, n, 6), 0.25))
    series = {"PM2.5": pm25, "PM10": pm10, "NO2": no2, "SO2": so2, "O3": o3}
    return {code: np.maximum(np.round(values, 1), 0.1) for code, values in series.items()}


def _outage_mask(rng: np.random.Generator, n: int, count: int, lengths: npt.NDArray[np.int64]) -> BoolArray:
    """True where an outage of the given lengths (starting at random hours) covers the hour."""
    starts = rng.integers(0, n, count)
    edges = np.zeros(n + 1, dtype=np.int64)
    np.add.at(edges, starts, 1)
    np.add.at(edges, np.minimum(starts + lengths, n), -1)
    mask: BoolArray = np.cumsum(edges[:n]) > 0
    return mask


def _station_gaps(station: Station, n: int, rng: np.random.Generator) -> dict[str, BoolArray]:
    """Missing hours: short per-instrument faults (~2.5 %), station-wide outages, one long outage."""
    count = int(rng.poisson(6))
    station_wide = _outage_mask(rng, n, count, rng.integers(6, 72, count))
    if station.index % STATIONS_PER_SCALE == 1:  # one station in eight is down for 5-7 weeks in 2023
        start = int(rng.integers(365 * 24, 2 * 365 * 24 - 50 * 24))
        station_wide[start:start + 24 * int(rng.integers(35, 50))] = True
    gaps = {}
    for code in POLLUTANTS:
        count = int(rng.poisson(70))
        gaps[code] = station_wide | _outage_mask(rng, n, count, rng.geometric(1 / 9, count))
        gaps[code][-1] = False  # the NGSI-LD snapshot reports the last hour
    return gaps


_READINGS_SCHEMA = pa.schema([("station_id", pa.string()), ("zeitpunkt_utc", pa.timestamp("us", tz="UTC")),
                              ("komponente", pa.string()), ("messwert", pa.float64())])


def _station_table(station: Station, clock: Clock, seed: int) -> tuple[pa.Table, Latest]:
    rng = _rng(seed, _RNG_STATION, station.index, 1)
    series = _station_series(station, clock, rng)
    gaps = _station_gaps(station, clock.timestamps.size, rng)
    keep = [np.flatnonzero(~gaps[code]) for code in POLLUTANTS]
    sizes = [k.size for k in keep]
    values = np.concatenate([series[code][k] for code, k in zip(POLLUTANTS, keep, strict=True)])
    table = pa.table({
        "station_id": pa.repeat(pa.scalar(station.entity_id), sum(sizes)),
        "zeitpunkt_utc": pa.array(clock.timestamps[np.concatenate(keep)], type=pa.timestamp("us", tz="UTC")),
        "komponente": pa.array(POLLUTANTS).take(pa.array(np.repeat(np.arange(len(POLLUTANTS)), sizes))),
        "messwert": pa.array(values),
    }, schema=_READINGS_SCHEMA)
    latest = {code: float(series[code][-1]) for code in POLLUTANTS}
    return table, latest


def _write_readings_parquet(path: Path, stations: Sequence[Station], seed: int) -> dict[str, Latest]:
    """One row group per station so memory stays flat at any scale; returns each station's last hour."""
    clock = Clock.build()
    latest: dict[str, Latest] = {}
    with pq.ParquetWriter(path, _READINGS_SCHEMA, compression="zstd", compression_level=3,
                          use_dictionary=True, write_statistics=True, version="2.6") as writer:
        for station in stations:
            table, latest[station.code] = _station_table(station, clock, seed)
            writer.write_table(table, row_group_size=table.num_rows)
    return latest


def _property(value: Any, unit_code: str | None = None) -> dict[str, Any]:
    prop: dict[str, Any] = {"type": "Property", "value": value}
    if unit_code is not None:
        prop["unitCode"] = unit_code
    return prop


def _station_entity(station: Station, latest: Latest) -> dict[str, Any]:
    """NGSI-LD normalized AirQualityObserved, values in ug/m3 (UN/CEFACT code GQ)."""
    entity: dict[str, Any] = {
        "id": station.entity_id,
        "type": "AirQualityObserved",
        "name": _property(f"{CITY_NAME}-{station.district.name} ({_STATION_KIND_LABEL[station.kind]})"),
        "dateObserved": _property(OBSERVED_AT),
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": _to_lonlat(station.x, station.y)}},
        "address": _property({"addressCountry": "DE", "addressLocality": CITY_NAME, "type": "PostalAddress"}),
        "areaServed": _property(station.district.name),
        "typeofLocation": _property("outdoor"),
        "source": _property("https://umwelt.demoville.example/luft"),
    }
    for code in POLLUTANTS:
        entity[NGSI_PROPERTY[code]] = _property(round(latest[code] * TO_UGM3[code], 1), "GQ")
    entity["@context"] = [SDM_CONTEXT]
    return entity


def _write_stations_ngsi_ld(path: Path, stations: Sequence[Station], latest: dict[str, Latest]) -> None:
    _write_json(path, [_station_entity(station, latest[station.code]) for station in stations])


# --------------------------------------------------------------------------------------------
# city.yaml
# --------------------------------------------------------------------------------------------


def template_text() -> str:
    """The commented city.yaml template shipped with the package."""
    return resources.files("sources.demo").joinpath("city.yaml").read_text(encoding="utf-8")


def _replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise ValueError(f"the demo city.yaml template must contain {old.strip()!r} exactly once")
    return text.replace(old, new)


def _render(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", value)
    return template


@cache
def _template_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(_render(template_text(), {"scale": "1", "seed": "0", "stations": "1"}))
    return config


@cache
def _template_statistics_mapping() -> dict[str, tuple[str, str, str | None]]:
    """statistik_stadt.csv code -> (variable, published unit, data point), from the template."""
    source = next(s for s in _template_config()["sources"] if s["id"] == "statistik-stadt")
    return {code: (m["variable"], m["unit"], m.get("data_point"))
            for code, m in source["observations"]["variables"].items()}


@cache
def _template_mapped_variables() -> frozenset[str]:
    """Every variable the template maps: the hand series give these, declarations never replace them."""
    return frozenset(m["variable"] for source in _template_config()["sources"]
                     for target in ("observations", "readings") if source.get(target)
                     for m in source[target]["variables"].values())


# Where the template's statistik-stadt mapping ends: declared city series are mapped just before it.
_STATISTICS_END = "\n\n  # 2. Utility figures"
_DISTRICT_SOURCE = f"""
  # 9. District figures of the variables declared with `demo:` in canonical/variables.yaml (written
  #    by the generator, sources/demo/declared.py): long layout by district, in the format of source 1.
  - id: statistik-bezirke
    kind: file
    location: {DISTRICT_STATISTICS}
    format: csv
    target: observations
    description: Bezirksstatistik Demoville, Jahreswerte 2019-2024 (synthetic demo data)
    license: CC0-1.0
    data_quality: accurate_measurement
    data_origin: "Municipal statistics office (registers and administrative data)"
    csv:
      delimiter: ";"
      decimal: ","
      thousands: "."
      encoding: latin-1
    observations:
      layout: long
      year_field: Jahr
      area_field: Bezirk-Nr.
      area_type: district
      variable_field: Merkmal
      value_field: Wert
      variables:
"""


def _with_declared(text: str, declared: Sequence[DeclaredSeries]) -> str:
    """The template text with a mapping entry for every declared series (unchanged without any)."""
    city = [s for s in declared if s.level == "city"]
    district = [s for s in declared if s.level == "district"]
    if city:
        lines = [f"        # {DECLARED_COMMENT}:", *mapping_lines(city, " " * 8)]
        text = _replace_once(text, _STATISTICS_END, "\n" + "\n".join(lines) + _STATISTICS_END)
    if district:
        text = text.rstrip("\n") + "\n" + _DISTRICT_SOURCE + "\n".join(mapping_lines(district, " " * 8)) + "\n"
    return text


def _write_city_yaml(path: Path, *, scale: float, seed: int, stations: int,
                     city_id: str = CITY_ID, name: str = CITY_NAME,
                     declared: Sequence[DeclaredSeries] = ()) -> Path:
    text = _render(template_text(), {"scale": f"{scale:g}", "seed": str(seed), "stations": str(stations)})
    text = _with_declared(text, declared)
    # The template is the documented example, so it names Demoville literally; rewrite its city block.
    # The name goes in as a JSON string, which YAML reads as the same text whatever it contains.
    text = _replace_once(text, f"  id: {CITY_ID} ", f"  id: {city_id} ")
    if name != CITY_NAME:
        text = _replace_once(text, f"  name: {CITY_NAME}\n", f"  name: {json.dumps(name)}\n")
    path.write_bytes(text.encode("utf-8"))
    return path


__all__ = [
    "DEFAULT_SEED",
    "demo_cities_dir_name",
    "demo_city_id",
    "demo_dir_name",
    "ensure_demo_city",
    "generate_demo_cities",
    "generate_demo_city",
    "german_number",
    "station_count",
    "template_text",
]
