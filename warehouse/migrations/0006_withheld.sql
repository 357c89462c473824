-- 0006: why a derived value is absent (issue #13). A derivation that withholds a value it could
-- have computed (e.g. an annual mean whose stations all miss the 75 % rule) records the key, the rule
-- and the figures here, in the same transaction as the derived observations; the KPI engine names
-- the reason in a `missing` row's status_reason. Replaced together with the city's derived rows.
CREATE TABLE core_withheld (
    city_id    VARCHAR NOT NULL,
    year       INTEGER NOT NULL,
    variable   VARCHAR NOT NULL,
    data_point VARCHAR,
    area_type  VARCHAR NOT NULL,
    area_id    VARCHAR NOT NULL,
    derivation VARCHAR NOT NULL,   -- e.g. city_annual_mean@1
    rule       VARCHAR NOT NULL,   -- e.g. min_coverage
    reason     VARCHAR NOT NULL,   -- one sentence with the stations and the figures
    details    VARCHAR             -- JSON: the figures per station
);
