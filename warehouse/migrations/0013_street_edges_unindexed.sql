-- 0013: core_street_edges without its (city_id, source_id) ART index (issue #16).
-- Every checkpoint rewrote the whole index (duckdb/duckdb#24848): at 1,000 demo cities 15.8M entries,
-- paid again by every load batch. A city's edges are found by their zone maps instead.
DROP INDEX core_street_edges_city;
