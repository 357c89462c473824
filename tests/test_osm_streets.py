"""The walkable street graph from OSM extracts: Overpass JSON, OSM XML, PBF; walk rules; hostile files."""

from __future__ import annotations

import json
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
