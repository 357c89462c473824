"""The walkable street graph from OSM extracts: Overpass JSON, OSM XML, PBF; walk rules; hostile files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pyproj import Geod

from canonical.errors import SourceDataError
from sources.parsers import osm_streets
from sources.parsers.osm_streets import read_street_graph, walk_exclusion

# Four nodes on a line of longitude steps at the equator-ish latitude 40; node 5 is far away (unused).
NODES = {1: (0.0, 40.0), 2: (0.001, 40.0), 3: (0.002, 40.0), 4: (0.002, 40.001), 5: (1.0, 41.0)}
WAYS = [
    (10, {"highway": "residential", "name": "Main"}, [1, 2, 3]),
    (11, {"highway": "footway"}, [3, 4]),
    (12, {"highway": "motorway"}, [1, 4]),                     # excluded: motorway
    (13, {"highway": "residential", "access": "private"}, [2, 4]),  # excluded: private
    (14, {"building": "yes"}, [1, 2, 4, 1]),                   # not a street at all
    (15, {"highway": "service", "foot": "no"}, [1, 3]),        # excluded: foot=no
]


def _geod_m(a: int, b: int) -> float:
    (lon1, lat1), (lon2, lat2) = NODES[a], NODES[b]
    return float(Geod(ellps="WGS84").inv(lon1, lat1, lon2, lat2)[2])


def _overpass(path: Path, *, geom: bool = False) -> Path:
    elements: list[dict[str, object]] = []
    if not geom:
        elements += [{"type": "node", "id": i, "lon": lon, "lat": lat} for i, (lon, lat) in NODES.items()]
    for way_id, tags, refs in WAYS:
        way: dict[str, object] = {"type": "way", "id": way_id, "nodes": refs, "tags": tags}
        if geom:
            way["geometry"] = [{"lon": NODES[r][0], "lat": NODES[r][1]} for r in refs]
        elements.append(way)
    path.write_text(json.dumps({"version": 0.6, "elements": elements}))
    return path


def _osm_xml(path: Path) -> Path:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    lines += [f'  <node id="{i}" lon="{lon}" lat="{lat}"><tag k="x" v="y"/></node>' for i, (lon, lat) in NODES.items()]
    for way_id, tags, refs in WAYS:
        lines.append(f'  <way id="{way_id}">')
        lines += [f'    <nd ref="{r}"/>' for r in refs]
        lines += [f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items()]
        lines.append("  </way>")
    lines.append("</osm>")
    path.write_text("\n".join(lines))
    return path


def _check_graph(graph: osm_streets.StreetGraph) -> None:
    assert graph.n_edges == 3 and graph.n_nodes == 4
    pairs = {tuple(sorted((int(graph.node_id[a]), int(graph.node_id[b])))): float(m)
             for a, b, m in zip(graph.u, graph.v, graph.length_m, strict=True)}
    assert set(pairs) == {(1, 2), (2, 3), (3, 4)}
    for (a, b), metres in pairs.items():
        assert metres == pytest.approx(_geod_m(a, b), rel=1e-9)
    assert pairs[(1, 2)] == pytest.approx(85.4, abs=0.5)  # 0.001 deg of longitude at 40 N ~ 85.4 m
    assert graph.report["walkable_ways"] == 2
    assert graph.report["excluded_ways"] == {"access=private": 1, "foot=no": 1,
                                             "highway=motorway without a foot tag": 1}
    assert sorted(set(graph.highway)) == ["footway", "residential"]


def test_overpass_json_with_node_elements(tmp_path: Path) -> None:
    _check_graph(read_street_graph(_overpass(tmp_path / "streets.json"), "streets.json"))


def test_overpass_json_out_geom(tmp_path: Path) -> None:
    _check_graph(read_street_graph(_overpass(tmp_path / "streets.json", geom=True), "streets.json"))


def test_osm_xml(tmp_path: Path) -> None:
    _check_graph(read_street_graph(_osm_xml(tmp_path / "streets.osm"), "streets.osm"))


def test_osm_pbf(tmp_path: Path) -> None:
    osmium = pytest.importorskip("osmium", reason="pyosmium not installed: .osm.pbf is refused (tested below)")
    path = tmp_path / "streets.osm.pbf"
    with osmium.SimpleWriter(str(path)) as writer:
        for i, (lon, lat) in NODES.items():
            writer.add_node(osmium.osm.mutable.Node(id=i, location=(lon, lat), tags={}))
        for way_id, tags, refs in WAYS:
            writer.add_way(osmium.osm.mutable.Way(id=way_id, nodes=refs, tags=tags))
    _check_graph(read_street_graph(path, "streets.osm.pbf"))


def test_pbf_without_osmium_names_the_alternative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_osmium(name: str, *args: object, **kwargs: object) -> object:
        if name == "osmium":
            raise ImportError("no osmium")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_osmium)
    path = tmp_path / "city.osm.pbf"
    path.write_bytes(b"\0\0\0\x0dnot really pbf")
    with pytest.raises(SourceDataError, match=r"osmium cat city.osm.pbf -o city.osm.*Overpass JSON"):
        read_street_graph(path, "city.osm.pbf")


@pytest.mark.parametrize(("tags", "reason"), [
    ({"highway": "trunk"}, "highway=trunk without a sidewalk"),
    ({"highway": "trunk", "sidewalk": "both"}, None),
    ({"highway": "trunk", "sidewalk:left": "yes"}, None),
    ({"highway": "motorway", "foot": "yes"}, None),
    ({"highway": "cycleway"}, "highway=cycleway without a foot tag"),
    ({"highway": "cycleway", "foot": "designated"}, None),
    ({"highway": "pedestrian", "area": "yes"}, "area=yes"),
    ({"highway": "construction"}, "highway=construction"),
    ({"highway": "service", "access": "no", "foot": "yes"}, None),
    ({"highway": "steps"}, None),
])
def test_walk_rules(tags: dict[str, str], reason: str | None) -> None:
    assert walk_exclusion(tags) == reason


def test_way_cut_at_the_extract_edge_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text(json.dumps({"elements": [
        {"type": "node", "id": 1, "lon": 0.0, "lat": 40.0}, {"type": "node", "id": 2, "lon": 0.001, "lat": 40.0},
        {"type": "way", "id": 9, "nodes": [1, 2, 99], "tags": {"highway": "residential"}}]}))
    graph = read_street_graph(path, "cut.json")
    assert graph.n_edges == 1 and graph.report["edges_dropped_missing_node"] == 1


def test_no_walkable_street_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"elements": [
        {"type": "node", "id": 1, "lon": 0.0, "lat": 40.0}, {"type": "node", "id": 2, "lon": 0.001, "lat": 40.0},
        {"type": "way", "id": 9, "nodes": [1, 2], "tags": {"highway": "motorway"}}]}))
    with pytest.raises(SourceDataError, match=r"no walkable street.*motorway"):
        read_street_graph(path, "m.json")


def test_bad_coordinate_names_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"elements": [{"type": "node", "id": 1, "lon": "east", "lat": 40.0}]}))
    with pytest.raises(SourceDataError, match=r"bad.json.*row 1.*lon"):
        read_street_graph(path, "bad.json")


def test_billion_laughs_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.osm"
    path.write_text('<?xml version="1.0"?>\n<!DOCTYPE osm [<!ENTITY a "aaaaaaaaaa">'
                    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'
                    '<osm><node id="1" lon="0" lat="0"><tag k="n" v="&b;"/></node></osm>')
    with pytest.raises(SourceDataError, match="unsafe XML"):
        read_street_graph(path, "bomb.osm")


def test_external_entity_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "xxe.osm"
    path.write_text('<?xml version="1.0"?>\n<!DOCTYPE osm [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
                    '<osm><node id="1" lon="0" lat="0"><tag k="n" v="&x;"/></node></osm>')
    with pytest.raises(SourceDataError, match="unsafe XML"):
        read_street_graph(path, "xxe.osm")


def test_external_dtd_is_refused(tmp_path: Path) -> None:
    # A document type that only points at an outside DTD is refused too (nothing is fetched).
    path = tmp_path / "dtd.osm"
    path.write_text('<?xml version="1.0"?>\n<!DOCTYPE osm SYSTEM "http://127.0.0.1:9/osm.dtd">\n'
                    '<osm><node id="1" lon="0" lat="0"/></osm>')
    with pytest.raises(SourceDataError, match=r"unsafe XML \(DTDForbidden\)"):
        read_street_graph(path, "dtd.osm")


def test_malformed_xml_and_wrong_root(tmp_path: Path) -> None:
    broken = tmp_path / "broken.osm"
    broken.write_text('<osm><node id="1" lon="0" lat="0"></osm>')
    with pytest.raises(SourceDataError, match="not well-formed XML"):
        read_street_graph(broken, "broken.osm")
    html = tmp_path / "page.osm"
    html.write_text("<html><body>rate limited</body></html>")
    with pytest.raises(SourceDataError, match="expected an <osm> document"):
        read_street_graph(html, "page.osm")


def test_huge_files_are_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(osm_streets, "MAX_FILE_BYTES", 100)
    path = _osm_xml(tmp_path / "big.osm")
    with pytest.raises(SourceDataError, match="more than the 100 a street extract may have"):
        read_street_graph(path, "big.osm")
    monkeypatch.setattr(osm_streets, "MAX_FILE_BYTES", 1 << 30)
    monkeypatch.setattr(osm_streets, "MAX_NODES", 3)
    with pytest.raises(SourceDataError, match="more than 3 nodes"):
        read_street_graph(path, "big.osm")


def test_overlong_way_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(osm_streets, "MAX_WAY_NODES", 2)
    with pytest.raises(SourceDataError, match=r"more than 2 nodes"):
        read_street_graph(_osm_xml(tmp_path / "w.osm"), "w.osm")
    with pytest.raises(SourceDataError, match="has 3 nodes"):
        read_street_graph(_overpass(tmp_path / "w.json"), "w.json")


def test_streaming_memory_is_flat(tmp_path: Path) -> None:
    """20,000 ways on one line: the graph is a chain whose length is the sum of its edges."""
    n = 20_001
    lines = ['<osm version="0.6">']
    lines += [f'<node id="{i}" lon="{i * 1e-5:.5f}" lat="0"/>' for i in range(n)]
    lines += [f'<way id="{i}"><nd ref="{i}"/><nd ref="{i + 1}"/><tag k="highway" v="path"/></way>'
              for i in range(n - 1)]
    lines.append("</osm>")
    path = tmp_path / "chain.osm"
    path.write_text("\n".join(lines))
    graph = read_street_graph(path, "chain.osm")
    assert graph.n_edges == n - 1
    expected = Geod(ellps="WGS84").inv(0, 0, (n - 1) * 1e-5, 0)[2]
    assert float(np.sum(graph.length_m)) == pytest.approx(expected, rel=1e-9)


def test_corpus_config_loads_the_street_network(tmp_path: Path) -> None:
    """docs/city-config.md's worked example: the OSM XML lands in core_street_edges (migration 0011)."""
    from pipelines import steps
    from sources.config import load_city_config
    from warehouse.db import connect
    from warehouse.home import Home

    loaded = load_city_config(Path(__file__).parent / "corpus" / "streets" / "streets_osm.yaml")
    assert loaded.config.sources[0].resolved_format == "osm"
    home = Home.resolve(tmp_path / "home").ensure()
    steps.load_city(home, loaded, steps.fetch_city(home, loaded))
    con = connect(home.warehouse_path, read_only=True)
    try:
        edges = con.execute("SELECT highway, count(*), round(sum(length_m)) FROM core_street_edges "
                            "WHERE city_id = 'streets-town' GROUP BY ALL ORDER BY ALL").fetchall()
        report = con.execute("SELECT load_report FROM core_source_state WHERE source_id = 'calles'").fetchone()
    finally:
        con.close()
    # 3 residential rows x 2 segments of 0.001 deg longitude (~84.8 m at 40.42 N), 2 footway columns x 2
    # segments of 0.001 deg latitude (~111.0 m).
    assert edges == [("footway", 4, pytest.approx(444, abs=1)), ("residential", 6, pytest.approx(509, abs=1))]
    assert report is not None
    assert json.loads(report[0])["excluded_ways"] == {"access=private": 1, "highway=motorway without a foot tag": 1}


def test_config_refuses_osm_for_other_targets_and_other_formats_for_streets(tmp_path: Path) -> None:
    from sources.config import SourceConfig

    with pytest.raises(ValueError, match="feeds target 'street_network' only"):
        SourceConfig.model_validate({"id": "s", "kind": "file", "location": "x.osm", "target": "areas",
                                     "areas": {"area_type": "green_area", "id_field": "id"}})
    with pytest.raises(ValueError, match=r"format json .Overpass JSON., osm .OSM XML. or osm_pbf, not 'csv'"):
        SourceConfig.model_validate({"id": "s", "kind": "file", "location": "x.csv", "target": "street_network"})
    assert SourceConfig.model_validate({"id": "s", "kind": "file", "location": "city.osm.pbf",
                                        "target": "street_network"}).resolved_format == "osm_pbf"


_XML_HEAD = '<osm version="0.6">\n'


@pytest.mark.parametrize(("body", "message", "row", "row_field"), [
    ('<node id="1" lon="east" lat="40"/>', "lon is not a number: 'east'", 1, "lon"),
    ('<node id="1" lon="0" lat="inf"/>', "lat is not finite: 'inf'", 1, "lat"),
    ('<node id="1" lon="0" lat="nan"/>', "lat is not finite: 'nan'", 1, "lat"),
    ('<node id="1" lon="0"/>', "lat is not a number: None", 1, "lat"),
    ('<node id="1" lon="0" lat="0"/><node id="x2" lon="0" lat="0"/>', "id is not an integer id: 'x2'", 2, "id"),
    ('<node id="1" lon="0" lat="0"/><way id="1.5"><nd ref="1"/></way>', "id is not an integer id: '1.5'", 2, "id"),
    ('<way id="3"><nd ref="1"/><nd ref="abc"/><tag k="building" v="yes"/></way>',
     "nd ref is not an integer id: 'abc'", 1, "nd ref"),
    ('<relation id="4"><nd/></relation>', "nd ref is not an integer id: None", 1, "nd ref"),
    ('<node id="1" lon="0" lat="0"/><node id="7" lon="181.5" lat="0"/>',
     "node 7 has coordinates outside WGS84 (lon 181.5, lat 0.0)", None, "lon/lat"),
    # The first bad element in document order is the one reported, and before a later XML error.
    ('<node id="1" lon="0" lat="0"/><way id="3"><nd ref="z"/></way><node id="2" lon="x" lat="0"/>',
     "nd ref is not an integer id: 'z'", 2, "nd ref"),
    ('<node id="1" lon="0" lat="0"/>\n<node id="2" lon="q" lat="0"/>\n<node id="3">', "lon is not a number: 'q'", 2,
     "lon"),
    ('<node id="1" lon="0" lat="0"/>\n<node id="2" lon="1" lat="0"/>\n<node id="3">',
     "not well-formed XML: mismatched tag: line 4, column 15", 3, None),
])
def test_xml_errors_name_row_and_field(tmp_path: Path, body: str, message: str, row: int | None,
                                       row_field: str | None) -> None:
    path = tmp_path / "bad.osm"
    path.write_text(_XML_HEAD + body + "</osm>")
    with pytest.raises(SourceDataError) as caught:
        read_street_graph(path, "bad.osm", source_id="s")
    assert str(caught.value).endswith(message)
    assert (caught.value.row, caught.value.field) == (row, row_field)


def test_xml_way_at_the_node_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A walkable way of exactly MAX_WAY_NODES nodes is refused; other ways of that length are not."""
    monkeypatch.setattr(osm_streets, "MAX_WAY_NODES", 3)
    path = tmp_path / "limit.osm"
    nodes = "".join(f'<node id="{i}" lon="{lon}" lat="{lat}"/>' for i, (lon, lat) in NODES.items())
    river = '<way id="8"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="waterway" v="river"/></way>'
    street = '<way id="9"><nd ref="1"/><nd ref="2"/><tag k="highway" v="path"/></way>'
    path.write_text(_XML_HEAD + nodes + river + street + "</osm>")
    assert read_street_graph(path, "limit.osm").n_edges == 1
    path.write_text(_XML_HEAD + nodes + street.replace('<tag', '<nd ref="4"/><tag') + "</osm>")
    with pytest.raises(SourceDataError, match=r"way 9 has 3 nodes \(OSM allows 3\)") as caught:
        read_street_graph(path, "limit.osm")
    assert (caught.value.row, caught.value.field) == (None, "nd")
    path.write_text(_XML_HEAD + river.replace('<tag', '<nd ref="4"/><tag') + "</osm>")
    with pytest.raises(SourceDataError, match="a way has more than 3 nodes") as caught:
        read_street_graph(path, "limit.osm")
    assert (caught.value.row, caught.value.field) == (1, "nd")


# Everything the XML reader treats specially, in one valid document: walk rules (foot/access/sidewalk/
# area), a node listed twice, ways cut at the extract's edge, a way repeating a node, one-node and
# untagged ways, a duplicate tag key (the last wins), tags on nodes and relations, a stray top-level
# <tag> (it goes to the next element), negative ids, <bounds>, a comment, entities in values and a
# non-ASCII name.
_VARIED_XML = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="test">
 <bounds minlat="39.9" minlon="-0.1" maxlat="40.1" maxlon="0.1"/>
 <node id="1" lat="40.0" lon="0.0"/>
 <node id="2" version="3" lat="40.0" lon="0.001"><tag k="highway" v="crossing"/></node>
 <node id="3" lon="0.002" lat="40.0" user="a &amp; b"/>
 <node id="2" lat="41.0" lon="1.0"/>
 <!-- <node id="9" lat="0" lon="0"/> -->
 <node id="4" lat="40.001" lon="0.002"/>
 <node id="-5" lat="-39.5" lon="-0.5"/>
 <node id="6" lat="90" lon="-180"/>
 <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/>
  <tag k="highway" v="residential"/><tag k="name" v="Stra&#223;e"/></way>
 <way id="11"><tag k="highway" v="footway"/><nd ref="3"/><nd ref="4"/><nd ref="99"/></way>
 <way id="12"><nd ref="1"/><nd ref="4"/><tag k="highway" v="motorway"/></way>
 <way id="13"><nd ref="1"/><nd ref="4"/><tag k="highway" v="motorway"/><tag k="foot" v="yes"/></way>
 <way id="14"><nd ref="2"/><nd ref="4"/><tag k="highway" v="service"/><tag k="access" v="private"/></way>
 <way id="15"><nd ref="2"/><nd ref="4"/>
  <tag k="highway" v="service"/><tag k="access" v="no"/><tag k="foot" v="designated"/></way>
 <way id="16"><nd ref="1"/><nd ref="3"/><tag k="highway" v="trunk"/></way>
 <way id="17"><nd ref="1"/><nd ref="3"/><tag k="highway" v="trunk"/><tag k="sidewalk:right" v="separate"/></way>
 <way id="18"><nd ref="1"/><nd ref="2"/><nd ref="4"/><nd ref="1"/>
  <tag k="highway" v="pedestrian"/><tag k="area" v="yes"/></way>
 <way id="19"><nd ref="4"/><nd ref="-5"/><tag k="highway" v="path"/><tag k="highway" v="cycleway"/></way>
 <way id="20"><nd ref="4"/><tag k="highway" v="path"/></way>
 <way id="21"><nd ref="1"/><nd ref="2"/><nd ref="4"/><nd ref="1"/><tag k="building" v="yes"/></way>
 <way id="22"><nd ref="6"/><nd ref="6"/><nd ref="-5"/><nd ref="6"/><tag k="highway" v="steps"/></way>
 <way id="23"><nd ref="3"/><nd ref="4"/></way>
 <tag k="highway" v="living_street"/>
 <way id="24"><nd ref="98"/><nd ref="97"/><nd ref="3"/><nd ref="1"/></way>
 <way id="25"><nd ref="1"/><nd ref="3"/><tag k="highway" v="construction"/><tag k="foot" v="no"/></way>
 <relation id="30"><member type="way" ref="10" role=""/><tag k="type" v="route"/></relation>
 <way id="26"><nd ref="2"/><nd ref="3"/><tag k="highway" v="cycleway"/><tag k="foot" v="permissive"/></way>
</osm>
"""


def _collected(path: Path, read: Callable[[Path, osm_streets._Collector], None]) -> dict[str, object]:
    collector = osm_streets._Collector("varied.osm", None)
    read(path, collector)
    return {"node_ids": collector.node_ids.tobytes(), "node_lon": collector.node_lon.tobytes(),
            "node_lat": collector.node_lat.tobytes(), "way_nodes": collector.way_nodes.tobytes(),
            "way_offsets": collector.way_offsets.tobytes(), "way_ids": collector.way_ids.tobytes(),
            "highways": collector.highways, "excluded": list(collector.excluded.items()),
            "ways_read": collector.ways_read}


@pytest.mark.parametrize("chunk_bytes", [1 << 20, 97, 5])
def test_fast_xml_reader_collects_what_the_reference_reader_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int) -> None:
    """The bulk reader is bit for bit the element-by-element one (also with chunks cutting elements),
    and reads a valid file itself, without falling back."""
    from sources.parsers import xml_stream

    monkeypatch.setattr(xml_stream, "CHUNK_BYTES", chunk_bytes)
    path = tmp_path / "varied.osm"
    path.write_text(_VARIED_XML, encoding="utf-8")
    fast = _collected(path, osm_streets._read_xml_fast)
    assert fast == _collected(path, osm_streets._read_xml_reference)
    assert fast["excluded"] == [("highway=motorway without a foot tag", 1), ("access=private", 1),
                                ("highway=trunk without a sidewalk", 1), ("area=yes", 1),
                                ("highway=cycleway without a foot tag", 1), ("fewer than 2 nodes", 1),
                                ("foot=no", 1)]
    assert fast["highways"] == ["residential", "footway", "motorway", "service", "trunk", "steps",
                                "living_street", "cycleway"]
    graph = read_street_graph(path, "varied.osm")
    assert graph.report["edges_dropped_missing_node"] == 3 and graph.report["ways_read"] == 17


@pytest.mark.parametrize("body", [
    '<node id="1" lon="east" lat="40"/>', '<node id="1" lon="0" lat="inf"/>', '<node id="1" lon="0"/>',
    '<node id="x2" lon="0" lat="0"/>', '<way id="1.5"><nd ref="1"/></way>', '<way id="3"><nd ref="abc"/></way>',
    '<relation id="4"><nd ref="1"/></relation>', '<node id="7" lon="181.5" lat="0"/>',
    '<node id="99999999999999999999" lon="0" lat="0"/>', '<way id="3"><nd/></way>',
    '<nd ref="1"/><node id="1" lon="0" lat="0"/>',
    '<way id="3"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="5"/></way>', '<node id="3">',
])
def test_fast_xml_reader_leaves_bad_input_to_the_reference_reader(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    monkeypatch.setattr(osm_streets, "MAX_WAY_NODES", 4)
    path = tmp_path / "bad.osm"
    path.write_text(_XML_HEAD + body + "</osm>")
    with pytest.raises(osm_streets._FAST_XML_DOUBTS):
        osm_streets._read_xml_fast(path, osm_streets._Collector("bad.osm", None))
