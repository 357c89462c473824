-- 0010: exposure from the right stations (issue #15).
-- A monitoring station's type as the EU air-quality directive classes it (background, traffic,
-- industrial; NULL = unknown), read from a configured field or a per-station list in the city config.
-- The city annual mean and the district (11.6.2) means use background stations when types are known.
ALTER TABLE core_points ADD COLUMN station_type VARCHAR;
-- How often a readings source samples (hourly | daily; NULL for other sources): an annual mean's
-- completeness is judged per hour for hourly monitors and per day for daily samplers (gravimetric PM).
ALTER TABLE core_source_state ADD COLUMN readings_sampling VARCHAR;
-- The station a GTFS platform-level stop belongs to (stops.txt parent_station): EC:ICT:T:1C counts stops
-- and stations at the level travellers see them, one per station, not one per platform.
ALTER TABLE core_transit_stops ADD COLUMN parent_station VARCHAR;
-- Validity of a spatial source (areas, points, GTFS feed): the days its data describe, declared in the
-- config (valid_from / valid_to) or read from the data (a GTFS feed's feed_info / calendar dates); NULL =
-- unknown. A spatial value of a reporting year outside it is withheld (core_withheld, rule 'validity')
-- unless the source opts in with assume_valid, which the value's record then says.
ALTER TABLE core_source_state ADD COLUMN valid_from DATE;
ALTER TABLE core_source_state ADD COLUMN valid_to DATE;
ALTER TABLE core_source_state ADD COLUMN validity_basis VARCHAR;
ALTER TABLE core_source_state ADD COLUMN assume_valid BOOLEAN;
