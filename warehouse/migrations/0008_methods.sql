-- 0008: methods as the UN and ITU define them (issue #15).
-- GTFS departures are counted on one resolved service date (calendar.txt + calendar_dates.txt), stated
-- with the rule that chose it; departures_06_20 is the count the frequency filter reads.
ALTER TABLE core_transit_stops ADD COLUMN departures_06_20 INTEGER;
ALTER TABLE core_transit_stops ADD COLUMN service_date DATE;
ALTER TABLE core_transit_stops ADD COLUMN service_rule VARCHAR;
