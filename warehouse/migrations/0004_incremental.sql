-- 0004: incremental loads (issue #8) and readings checks that do not rescan the hourly table (issue #5).

-- Fingerprint of the source's configuration (mapping, units, format options) and of the loader's
-- format version that produced the rows. A source is skipped when both its snapshot and this are
-- unchanged; NULL (rows loaded before 0004) means "unknown", so the next load replaces the source.
ALTER TABLE core_source_state ADD COLUMN config_sha256 VARCHAR;

-- One row per readings source, station, variable, data point and UTC year: the aggregates every
-- consumer of core_readings needs, maintained by the loader in the same transaction as the rows
-- (rebuilt from the rows on a full replace, merged with the appended rows on an append).
--   annual means:  n, exact_sum (values as DECIMAL(38, 12): an exact, order-independent sum; a
--                  group with a value the cast cannot hold counts it in `inexact` and falls back
--                  to avg() over its rows), hours (bitmap of the distinct hours of the year)
--   quality:       n vs hours (one reading per hour), off_grid (readings not on the full hour)
--   appends:       last_observed_at (the watermark of the series), checksum (sum of
--                  hash(observed_at, value): detects changed or vanished rows below the watermark)
-- Key columns are nullable on purpose: they mirror core_readings even when its constraints are broken.
CREATE TABLE core_readings_groups (
    city_id           VARCHAR NOT NULL,
    source_id         VARCHAR NOT NULL,
    station_id        VARCHAR,
    variable          VARCHAR,
    data_point        VARCHAR,
    year              INTEGER,
    n                 BIGINT NOT NULL,
    exact_sum         DECIMAL(38, 12) NOT NULL,
    inexact           BIGINT NOT NULL,
    hours             BIT,
    off_grid          BIGINT NOT NULL,
    first_observed_at TIMESTAMPTZ,
    last_observed_at  TIMESTAMPTZ,
    checksum          HUGEINT NOT NULL
);

-- What the city's derived observations were computed for (reporting years, derivation versions):
-- when neither this nor any source changed, a load has nothing to do.
CREATE TABLE core_derive_state (
    city_id     VARCHAR PRIMARY KEY,
    fingerprint VARCHAR NOT NULL,
    derived_at  TIMESTAMPTZ NOT NULL
);
