"""A walkable street graph from an OpenStreetMap extract (issue #15: walking distance).

Three inputs, one result:

- Overpass JSON (`[out:json]`): ways with `nodes` plus node elements with `lat`/`lon` (`out body; >;
  out skel qt;`), or ways with inline `geometry` (`out geom;`).
- OSM XML (`.osm`): streamed with expat's callbacks (sources/parsers/xml_stream.py: no DTD, no
  entities: the "billion laughs" bomb and external entities are refused; no element tree is built),
  so memory grows with the nodes kept (three numbers each, in arrays), not with the XML. The callbacks
  only keep attribute strings, converted and checked in bulk after each 1 MB chunk; a file with a bad
  value is read again element by element, for the exact error (row, field) of the first one.
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
_KNOWN_HIGHWAYS = WALKABLE | NEEDS_FOOT_TAG | NEEDS_SIDEWALK  # built once, not per way

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
    if highway not in _KNOWN_HIGHWAYS:
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
        self.reset()

    def reset(self) -> None:
        """Forget what was collected (the fast XML reader gave up: the reference reader starts over)."""
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


class _GiveUp(Exception):
    """The fast XML reader met something it leaves to the reference reader (a limit, an odd structure)."""


# What makes the fast reader give up: its own signal, what the bulk conversions raise on a bad value
# (ValueError: not a number; TypeError: a missing attribute, None; OverflowError: an id beyond int64)
# and the XML errors (ValueError subclasses), which the reference reader reports with their row.
_FAST_XML_DOUBTS = (_GiveUp, ValueError, TypeError, OverflowError)
_VERDICTS_KEPT = 4096  # tag sets whose outcome is remembered across chunks (real ways' names make many)

# A way's tags as they came, "k1\0v1\0k2\0v2..." (XML cannot hold a NUL character, so the split is
# unambiguous): a str, which the garbage collector does not track, unlike a tuple of pairs.
TagSet = str


def _read_xml(path: Path, c: _Collector) -> None:
    """Read OSM XML with the fast reader; on any bad value, limit, odd structure or XML error, start over
    with the reference reader, which stops at the first problem in document order with today's exact
    error (message, row, field). A valid file is read once."""
    try:
        _read_xml_fast(path, c)
    except _FAST_XML_DOUBTS:
        c.reset()
        _read_xml_reference(path, c)


class _WayOutcomes:
    """What `_Collector.way` does with a way, by tag set, as small integer codes numpy can index.

    Code 0: not a street (no highway tag, not counted); 1: walkable but fewer than 2 nodes; then one
    code per distinct (exclusion reason, walkable highway) pair met."""

    FEWER_THAN_2 = 1

    def __init__(self) -> None:
        self.reasons: list[str | None] = [None, "fewer than 2 nodes"]
        self.highways: list[str | None] = [None, None]
        self._code: dict[tuple[str | None, str | None], int] = {}
        self._by_tags: dict[TagSet, int] = {}

    def codes(self, tag_sets: list[TagSet]) -> IntArray:
        if len(self._by_tags) > _VERDICTS_KEPT:
            self._by_tags.clear()
        for tag_set in set(tag_sets).difference(self._by_tags):
            pairs = tag_set.split("\0")
            self._by_tags[tag_set] = self._outcome(dict(zip(pairs[::2], pairs[1::2], strict=False)))
        return np.fromiter(map(self._by_tags.__getitem__, tag_sets), np.int64, len(tag_sets))

    def _outcome(self, tags: dict[str, str]) -> int:
        if "highway" not in tags:
            return 0
        reason = walk_exclusion(tags)
        key = (reason, None if reason is not None else tags["highway"])
        if key not in self._code:
            self._code[key] = len(self.reasons)
            self.reasons.append(key[0])
            self.highways.append(key[1])
        return self._code[key]


def _read_xml_fast(path: Path, c: _Collector) -> None:
    """What `_read_xml_reference` collects from a valid file, with the per-element work done in bulk.

    The same events (the attributes of the last node/way/relation opened; tags and nd refs gathered
    until one closes), but the callbacks only keep attribute values as strings; once per chunk they are
    converted with the same int()/float(), checked by numpy, and the ways sorted by their tag set's
    outcome (computed once per distinct set). Strings rather than the attribute dicts: kept dicts are
    tracked by the garbage collector, whose passes over them cost more than the bulk work saves.

    Raises one of _FAST_XML_DOUBTS at the first doubt, without saying which: the reference reader names
    it. Doubts include a node or relation holding <nd> refs (not OSM; the reference reader's
    bookkeeping of it is left to it)."""
    from sources.parsers.xml_stream import feed_file, safe_parser

    max_way_nodes = MAX_WAY_NODES  # read at call time (tests lower the limits)
    element: dict[str, str] = {}   # the attributes of the open node/way/relation
    tags: list[str] = []           # k, v, k, v, ... of the open element (a later duplicate k wins, as in a dict)
    # Since the last chunk: id, lon, lat of the nodes closed; id, tag set and where its nds stop of the
    # ways closed; every <nd>'s ref. None where an attribute is missing: int(None) fails, a doubt.
    node_ids: list[str | None] = []
    node_lons: list[str | None] = []
    node_lats: list[str | None] = []
    way_ids: list[str | None] = []
    way_tags: list[TagSet] = []
    way_stops: list[int] = []
    nds: list[str | None] = []
    closed = 0  # nds[:closed] belong to closed ways, the rest to the open element
    outcomes = _WayOutcomes()
    ways_read = 0

    def start(tag: str, attributes: dict[str, str]) -> None:
        nonlocal element
        if tag == "nd":
            nds.append(attributes.get("ref"))
        elif tag == "tag":
            tags.append(attributes.get("k", ""))
            tags.append(attributes.get("v", ""))
        elif tag == "node" or tag == "way" or tag == "relation":
            element = attributes

    def end(tag: str) -> None:
        nonlocal closed
        if tag == "way":
            way_ids.append(element.get("id"))
            way_tags.append("\0".join(tags))
            closed = len(nds)
            way_stops.append(closed)
            tags.clear()
        elif tag == "node" or tag == "relation":
            if len(nds) != closed:
                raise _GiveUp
            if tag == "node":
                node_ids.append(element.get("id"))
                node_lons.append(element.get("lon"))
                node_lats.append(element.get("lat"))
            if tags:
                tags.clear()

    def convert() -> None:
        """Move what was gathered into the collector (after each chunk: memory stays bounded)."""
        nonlocal closed, ways_read
        if node_ids:
            n = len(node_ids)
            node_id = np.fromiter(map(int, node_ids), np.int64, n)  # type: ignore[arg-type]
            lon = np.fromiter(map(float, node_lons), np.float64, n)  # type: ignore[arg-type]
            lat = np.fromiter(map(float, node_lats), np.float64, n)  # type: ignore[arg-type]
            # Inside WGS84, which also refuses inf and nan (every comparison with nan is false).
            if not ((lon >= -180.0) & (lon <= 180.0) & (lat >= -90.0) & (lat <= 90.0)).all():
                raise _GiveUp
            if len(c.node_ids) + n > MAX_NODES:
                raise _GiveUp
            c.node_ids.frombytes(node_id.tobytes())
            c.node_lon.frombytes(lon.tobytes())
            c.node_lat.frombytes(lat.tobytes())
            node_ids.clear()
            node_lons.clear()
            node_lats.clear()
        if way_ids:
            _keep_ways(c, outcomes, max_way_nodes, way_ids, way_tags, way_stops, nds[:closed])
            ways_read += len(way_ids)
            way_ids.clear()
            way_tags.clear()
            way_stops.clear()
        del nds[:closed]  # the open element's nds stay for the next chunk
        closed = 0
        if len(nds) > max_way_nodes:
            raise _GiveUp

    parser = safe_parser()

    def root(tag: str, _attributes: dict[str, str]) -> None:
        if tag != "osm":
            raise _GiveUp
        parser.StartElementHandler = start  # the root is checked once, not in every start()

    parser.StartElementHandler = root
    parser.EndElementHandler = end
    feed_file(parser, path, after_chunk=convert)
    convert()
    if nds:  # nd refs after the last way (outside any element): checked as the reference reader does
        np.fromiter(map(int, nds), np.int64, len(nds))  # type: ignore[arg-type]
    c.ways_read = ways_read


def _keep_ways(c: _Collector, outcomes: _WayOutcomes, max_way_nodes: int, way_ids: list[str | None],
               way_tags: list[TagSet], way_stops: list[int], nds: list[str | None]) -> None:
    """`_Collector.way` for a chunk's ways at once: way i's refs are nds[way_stops[i - 1]:way_stops[i]].
    Raises _GiveUp (or a conversion error) where the reference reader raises."""
    refs = np.fromiter(map(int, nds), np.int64, len(nds))  # type: ignore[arg-type]
    way_id = np.fromiter(map(int, way_ids), np.int64, len(way_ids))  # type: ignore[arg-type]
    stops = np.asarray(way_stops, dtype=np.int64)
    starts = np.concatenate(([0], stops[:-1]))
    lengths = stops - starts
    code = outcomes.codes(way_tags)
    walkable = np.asarray([h is not None for h in outcomes.highways])[code]
    if (lengths > max_way_nodes).any() or (walkable & (lengths >= max_way_nodes)).any():
        raise _GiveUp
    code[walkable & (lengths < 2)] = _WayOutcomes.FEWER_THAN_2
    keep = walkable & (lengths >= 2)
    # Exclusions counted in document order of first occurrence: the Counter's order shows in the
    # "no walkable street" message.
    excluded = code[np.asarray([r is not None for r in outcomes.reasons])[code]]
    if excluded.size:
        kinds, first, counts = np.unique(excluded, return_index=True, return_counts=True)
        for i in np.argsort(first):
            reason = outcomes.reasons[kinds[i]]
            assert reason is not None
            c.excluded[reason] += int(counts[i])
    if keep.any():
        lengths, starts = lengths[keep], starts[keep]
        ends = np.cumsum(lengths)
        # refs[start:stop] of each kept way, concatenated: output position p of way k comes from
        # starts[k] + p - (where way k begins in the output).
        take = np.arange(int(ends[-1]), dtype=np.int64) + np.repeat(starts - (ends - lengths), lengths)
        c.way_offsets.frombytes((ends + len(c.way_nodes)).tobytes())
        c.way_nodes.frombytes(refs[take].tobytes())
        c.way_ids.frombytes(way_id[keep].tobytes())
        c.highways.extend(map(outcomes.highways.__getitem__, code[keep].tolist()))  # type: ignore[arg-type]


def _read_xml_reference(path: Path, c: _Collector) -> None:
    """The element-by-element reader: the arbiter of every error (and of the result, in the tests)."""
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
