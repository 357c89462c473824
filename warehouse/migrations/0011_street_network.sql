-- 0011: the walkable street graph of an OpenStreetMap extract (issue #15: walking distance).
-- One row per undirected edge between two OSM nodes of a walkable way (sources/parsers/osm_streets.py),
-- with both ends' WGS84 coordinates and the geodesic length; warehouse/derive_spatial.py rebuilds the
-- graph from it when the city config names a source with target street_network.
CREATE TABLE core_street_edges (
    city_id      VARCHAR NOT NULL,
    source_id    VARCHAR NOT NULL,
    snapshot_id  VARCHAR NOT NULL,
    way_id       BIGINT NOT NULL,
    highway      VARCHAR NOT NULL,
    u_node       BIGINT NOT NULL,
    v_node       BIGINT NOT NULL,
    u_lon        DOUBLE NOT NULL,
    u_lat        DOUBLE NOT NULL,
    v_lon        DOUBLE NOT NULL,
    v_lat        DOUBLE NOT NULL,
    length_m     DOUBLE NOT NULL
);
CREATE INDEX core_street_edges_city ON core_street_edges (city_id, source_id);
