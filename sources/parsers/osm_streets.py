"""A walkable street graph from an OpenStreetMap extract (issue #15: walking distance).

Three inputs, one result:

- Overpass JSON (`[out:json]`): ways with `nodes` plus node elements with `lat`/`lon` (`out body; >;
  out skel qt;`), or ways with inline `geometry` (`out geom;`).
- OSM XML (`.osm`): streamed with expat's callbacks (sources/parsers/xml_stream.py: no DTD, no
  entities: the "billion laughs" bomb and external entities are refused; no element tree is built),
  so memory grows with the nodes kept (three numbers each, in arrays), not with the XML.
- `.osm.pbf`: read with pyosmium (the `osmium` wheel, libosmium) when it is installed; without it the
  file is refused with the alternatives named (convert with `osmium cat x.osm.pbf -o x.osm`, or
  fetch Overpass JSON).

Walkable ways (what a pedestrian may use), as OSMnx's "walk" network and the OSM access tags:

- `highway` in WALKABLE (footways, paths, steps, pedestrian and living streets, residential,
  service, tracks, unclassified up to primary roads and their links);
- `motorway`/`motorway_link` never, unless `foot=yes|designated|permissive`;
- `trunk`/`trunk_link` only with a sidewalk (`sidewalk=both|left|right|yes`) or an explicit foot tag;
- `cycleway` and `bridleway` only with an explicit foot tag (many countries forbid walking on them);
- excluded whatever the highway: `foot=no`, `access=private|no` (unless foot is explicitly allowed),
  `area=yes` (a pedestrian square's outline is not a street), and ways under construction or
  proposed (their highway value is not in WALKABLE).

Every consecutive node pair of a walkable way is an undirected edge (walking ignores `oneway`) whose
length is geodesic on the WGS84 ellipsoid (pyproj.Geod), in metres. Edges whose node is missing
from the extract (a way cut at the extract's boundary) are dropped and counted in the report.
"""

from __future__ import annotations

import json
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from canonical.errors import TOO_DEEP, SourceDataError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

WALKABLE = frozenset({
    "footway", "path", "pedestrian", "steps", "living_street", "residential", "service", "track", "corridor",
    "unclassified", "road", "tertiary", "tertiary_link", "secondary", "secondary_link", "primary", "primary_link",
})
NEEDS_FOOT_TAG = frozenset({"motorway", "motorway_link", "cycleway", "bridleway"})
NEEDS_SIDEWALK = frozenset({"trunk", "trunk_link"})
FOOT_ALLOWED = frozenset({"yes", "designated", "permissive", "official"})
SIDEWALK_PRESENT = frozenset({"both", "left", "right", "yes"})
ACCESS_CLOSED = frozenset({"private", "no"})

MAX_FILE_BYTES = 8 << 30  # an .osm of a metropolitan region is ~2-4 GB; beyond this, clip the extract
MAX_JSON_BYTES = 1 << 30  # Overpass JSON is read whole (json.loads): keep it to a city's streets
MAX_NODES = 100_000_000   # node coordinates kept while streaming (24 bytes each)
MAX_WAY_NODES = 2_000     # OSM's API limit per way; a longer way is a malformed or hostile file
PBF_ALTERNATIVE = ("convert it with osmium-tool (`osmium cat city.osm.pbf -o city.osm`) and set format: osm, "
                   "or fetch Overpass JSON for the city's highways")


@dataclass(frozen=True)
class StreetGraph:
    """Undirected walkable edges between OSM nodes; `u`/`v` index `node_id`, `lon`, `lat`."""

    node_id: IntArray
    lon: FloatArray
    lat: FloatArray
    u: IntArray
    v: IntArray
    length_m: FloatArray
    way_id: IntArray
    highway: list[str]
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        return int(self.node_id.size)

    @property
    def n_edges(self) -> int:
        return int(self.u.size)


def walk_exclusion(tags: dict[str, str]) -> str | None:
    """Why a way is not walkable (a short reason for the report), or None if a pedestrian may use it."""
    highway = tags.get("highway")
    if not highway:
        return "no highway tag"
    foot = tags.get("foot", "")
    if foot == "no":
        return "foot=no"
    if tags.get("area") == "yes":
        return "area=yes"
    explicit = foot in FOOT_ALLOWED
    if tags.get("access") in ACCESS_CLOSED and not explicit:
        return f"access={tags['access']}"
    if highway in NEEDS_FOOT_TAG and not explicit:
        return f"highway={highway} without a foot tag"
    if highway in NEEDS_SIDEWALK and not explicit and not _has_sidewalk(tags):
        return f"highway={highway} without a sidewalk"
    if highway not in WALKABLE | NEEDS_FOOT_TAG | NEEDS_SIDEWALK:
        return f"highway={highway}"
    return None


def _has_sidewalk(tags: dict[str, str]) -> bool:
    if tags.get("sidewalk") in SIDEWALK_PRESENT:
        return True
    return any(tags.get(f"sidewalk:{side}") in ("yes", "separate") for side in ("both", "left", "right"))


class _Collector:
    """Walkable ways as concatenated node-id arrays, plus the coordinates of the nodes seen."""

    def __init__(self, display_name: str, source_id: str | None) -> None:
        self.display_name = display_name
        self.source_id = source_id
        self.node_ids = array("q")
        self.node_lon = array("d")
        self.node_lat = array("d")
        self.way_nodes = array("q")
        self.way_offsets = array("q", [0])
        self.way_ids = array("q")
        self.highways: list[str] = []
        self.excluded: Counter[str] = Counter()
        self.ways_read = 0

    def error(self, message: str, row: int | None = None, row_field: str | None = None) -> SourceDataError:
        return SourceDataError(self.display_name, message, row=row, field=row_field, source_id=self.source_id)

    def node(self, node_id: int, lon: float, lat: float) -> None:
        if len(self.node_ids) >= MAX_NODES:
            raise self.error(f"more than {MAX_NODES:,} nodes: clip the extract to the city")
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            raise self.error(f"node {node_id} has coordinates outside WGS84 (lon {lon}, lat {lat})",
                             row_field="lon/lat")
        self.node_ids.append(node_id)
        self.node_lon.append(lon)
        self.node_lat.append(lat)

    def way(self, way_id: int, tags: dict[str, str], refs: list[int]) -> bool:
        """Keep the way if walkable; returns whether it was kept."""
        self.ways_read += 1
        if "highway" not in tags:
            return False  # buildings, parks, rivers: not part of the street network, not counted
        reason = walk_exclusion(tags)
        if reason is not None:
            self.excluded[reason] += 1
            return False
        if len(refs) >= MAX_WAY_NODES:
            raise self.error(f"way {way_id} has {len(refs):,} nodes (OSM allows {MAX_WAY_NODES:,})",
                             row_field="nd")
        if len(refs) < 2:
            self.excluded["fewer than 2 nodes"] += 1
            return False
        self.way_nodes.extend(refs)
        self.way_offsets.append(len(self.way_nodes))
        self.way_ids.append(way_id)
        self.highways.append(tags["highway"])
        return True

    def graph(self, fmt: str) -> StreetGraph:
        return _build_graph(self, fmt)


def _build_graph(c: _Collector, fmt: str) -> StreetGraph:
    from pyproj import Geod

    refs = np.frombuffer(c.way_nodes, dtype=np.int64) if len(c.way_nodes) else np.zeros(0, dtype=np.int64)
    offsets = np.frombuffer(c.way_offsets, dtype=np.int64)
    n_ways = len(c.way_ids)
    # Edge k joins refs[k] and refs[k + 1] unless k is the last node of its way.
    starts = np.arange(max(refs.size - 1, 0))
    last_of_way = np.zeros(refs.size, dtype=bool)
    last_of_way[offsets[1:] - 1] = True
    pairs = starts[~last_of_way[:-1]] if refs.size else starts
    way_of_ref = np.repeat(np.arange(n_ways), np.diff(offsets)) if n_ways else np.zeros(0, dtype=np.int64)
    a, b, way_index = refs[pairs], refs[pairs + 1], way_of_ref[pairs]
    loops = a == b  # a way repeating a node (a closed ring's seam is not a loop: first != second)
    a, b, way_index = a[~loops], b[~loops], way_index[~loops]

    ids = np.frombuffer(c.node_ids, dtype=np.int64) if len(c.node_ids) else np.zeros(0, dtype=np.int64)
    lon = np.frombuffer(c.node_lon, dtype=np.float64) if len(c.node_lon) else np.zeros(0)
    lat = np.frombuffer(c.node_lat, dtype=np.float64) if len(c.node_lat) else np.zeros(0)
    ids, first = np.unique(ids, return_index=True)  # a node listed twice keeps its first position
    lon, lat = lon[first], lat[first]
    found_a, ia = _lookup(ids, a)
    found_b, ib = _lookup(ids, b)
    known = found_a & found_b
    dropped = int((~known).sum())
    ia, ib, way_index = ia[known], ib[known], way_index[known]
    used, inverse = np.unique(np.concatenate([ia, ib]), return_inverse=True)
    u, v = inverse[: ia.size].astype(np.int64), inverse[ia.size:].astype(np.int64)
    node_lon, node_lat = lon[used], lat[used]
    if u.size:
        _, _, length = Geod(ellps="WGS84").inv(node_lon[u], node_lat[u], node_lon[v], node_lat[v])
        length = np.asarray(length, dtype=np.float64)
    else:
        length = np.zeros(0)
    way_ids = np.frombuffer(c.way_ids, dtype=np.int64) if n_ways else np.zeros(0, dtype=np.int64)
    report: dict[str, Any] = {
        "format": fmt, "ways_read": c.ways_read, "walkable_ways": n_ways,
        "excluded_ways": dict(sorted(c.excluded.items())), "nodes": int(used.size), "edges": int(u.size),
        "length_km": round(float(length.sum()) / 1000.0, 3),
    }
    if dropped:
        report["edges_dropped_missing_node"] = dropped
        report["note"] = (f"{dropped} edge(s) reference nodes not in the extract (ways cut at its boundary) "
                          "and were dropped")
    if u.size == 0:
        raise c.error("no walkable street in the extract (need ways tagged highway=footway, residential, ...; "
                      f"excluded: {dict(c.excluded) or 'none'})")
    return StreetGraph(node_id=ids[used], lon=node_lon, lat=node_lat, u=u, v=v, length_m=length,
                       way_id=way_ids[way_index], highway=[c.highways[i] for i in way_index], report=report)


def _lookup(sorted_ids: IntArray, wanted: IntArray) -> tuple[npt.NDArray[np.bool_], IntArray]:
    position = np.searchsorted(sorted_ids, wanted)
    position = np.minimum(position, max(sorted_ids.size - 1, 0))
    found = sorted_ids[position] == wanted if sorted_ids.size else np.zeros(wanted.size, dtype=bool)
    return found, position.astype(np.int64)


# ---- readers -------------------------------------------------------------------------------------


def street_format(path: Path, declared: str | None = None) -> str:
    """'osm_json', 'osm' (XML) or 'osm_pbf', from the declared source format or the file name."""
    if declared == "osm" or (declared is None and path.name.lower().endswith(".osm")):
        return "osm"
    if declared == "osm_pbf" or (declared is None and path.name.lower().endswith(".pbf")):
        return "osm_pbf"
    return "osm_json"


def read_street_graph(path: Path, display_name: str, *, fmt: str | None = None,
                      source_id: str | None = None) -> StreetGraph:
    """The walkable street graph of an OSM extract. Raises SourceDataError on unusable input."""
    kind = street_format(path, fmt)
    size = path.stat().st_size
    limit = MAX_JSON_BYTES if kind == "osm_json" else MAX_FILE_BYTES
    if size > limit:
        raise SourceDataError(display_name, f"{size:,} bytes is more than the {limit:,} a street extract may have "
                              "(clip it to the city's boundary)", source_id=source_id)
    collector = _Collector(display_name, source_id)
    if kind == "osm":
        _read_xml(path, collector)
    elif kind == "osm_pbf":
        _read_pbf(path, collector)
    else:
        _read_overpass_json(path, collector)
    return collector.graph(kind)


def _number(value: Any, c: _Collector, what: str, row: int) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise c.error(f"{what} is not a number: {value!r}", row=row, row_field=what) from None
    if not np.isfinite(number):
        raise c.error(f"{what} is not finite: {value!r}", row=row, row_field=what)
    return number


def _integer(value: Any, c: _Collector, what: str, row: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise c.error(f"{what} is not an integer id: {value!r}", row=row, row_field=what)
    try:
        return int(value)
    except ValueError:
        raise c.error(f"{what} is not an integer id: {value!r}", row=row, row_field=what) from None


def _read_overpass_json(path: Path, c: _Collector) -> None:
    try:
        payload = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise c.error(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise c.error(TOO_DEEP) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("elements"), list):
        raise c.error("expected Overpass JSON with an 'elements' list")
    remark = payload.get("remark")
    if isinstance(remark, str) and "error" in remark.lower():
        raise c.error(f"Overpass reported: {remark}")
    for row, element in enumerate(payload["elements"], start=1):
        if not isinstance(element, dict):
            continue
        kind = element.get("type")
        if kind == "node" and "lon" in element and "lat" in element:
            c.node(_integer(element.get("id"), c, "id", row), _number(element["lon"], c, "lon", row),
                   _number(element["lat"], c, "lat", row))
        elif kind == "way":
            _json_way(element, c, row)


def _json_way(element: dict[str, Any], c: _Collector, row: int) -> None:
    tags = element.get("tags") or {}
    if not isinstance(tags, dict):
        raise c.error("tags is not an object", row=row, row_field="tags")
    refs = element.get("nodes") or []
    if not isinstance(refs, list):
        raise c.error("nodes is not a list", row=row, row_field="nodes")
    node_ids = [_integer(r, c, "nodes", row) for r in refs]
    kept = c.way(_integer(element.get("id"), c, "id", row), {str(k): str(v) for k, v in tags.items()}, node_ids)
    geometry = element.get("geometry")
    if kept and isinstance(geometry, list):  # `out geom;`: the coordinates come with the way
        if len(geometry) != len(node_ids):
            raise c.error(f"way has {len(node_ids)} nodes but {len(geometry)} geometry points", row=row,
                          row_field="geometry")
        for node_id, point in zip(node_ids, geometry, strict=True):
            if not isinstance(point, dict):  # null: a node outside the query's bounding box
                continue
            c.node(node_id, _number(point.get("lon"), c, "geometry.lon", row),
                   _number(point.get("lat"), c, "geometry.lat", row))


def _read_xml(path: Path, c: _Collector) -> None:
    from sources.parsers.xml_stream import MalformedXmlError, UnsafeXmlError, stream_xml

    row = 0
    tags: dict[str, str] = {}
    refs: list[int] = []
    element: dict[str, str] = {}   # the attributes of the open node/way/relation
    seen_root = False

    def start(tag: str, attributes: dict[str, str]) -> None:
        nonlocal seen_root, element
        if not seen_root:
            seen_root = True
            if tag != "osm":
                raise c.error(f"expected an <osm> document, found <{tag}>")
            return
        if tag == "tag":
            tags[attributes.get("k", "")] = attributes.get("v", "")
        elif tag == "nd":
            if len(refs) >= MAX_WAY_NODES:
                raise c.error(f"a way has more than {MAX_WAY_NODES:,} nodes", row=row + 1, row_field="nd")
            refs.append(_integer(attributes.get("ref"), c, "nd ref", row + 1))
        elif tag in ("node", "way", "relation"):
            element = attributes

    def end(tag: str) -> None:
        nonlocal row, tags, refs
        if tag not in ("node", "way", "relation"):
            return
        row += 1
        if tag == "node":
            c.node(_integer(element.get("id"), c, "id", row), _number(element.get("lon"), c, "lon", row),
                   _number(element.get("lat"), c, "lat", row))
        elif tag == "way":
            c.way(_integer(element.get("id"), c, "id", row), tags, refs)
        tags, refs = {}, []

    try:
        stream_xml(path, start, end)
    except UnsafeXmlError as exc:
        raise c.error(f"refused unsafe XML ({exc.kind}): DTDs and entities are not allowed") from None
    except MalformedXmlError as exc:
        raise c.error(f"not well-formed XML: {exc}", row=row + 1 if row else None) from None


def _read_pbf(path: Path, c: _Collector) -> None:
    try:
        import osmium
    except ImportError:
        raise c.error(f".osm.pbf needs the 'osmium' Python package (pyosmium), which is not installed: "
                      f"install it, or {PBF_ALTERNATIVE}") from None
    try:
        processor = osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY).with_locations()
        for obj in processor:
            if isinstance(obj, osmium.osm.Way):
                tags = {t.k: t.v for t in obj.tags}
                refs = [n.ref for n in obj.nodes]
                if c.way(int(obj.id), tags, refs):
                    for n in obj.nodes:
                        if n.location.valid():
                            c.node(int(n.ref), float(n.location.lon), float(n.location.lat))
                        # a node without a location is outside the extract: its edges are dropped, counted
    except RuntimeError as exc:  # libosmium's errors (a truncated or corrupt file)
        raise c.error(f"not a readable OSM PBF file: {exc}") from None
