-- 0001: the canonical model. Layers follow PUDL's naming: raw (landing zone, files on disk),
-- core (canonical, source-independent tables), out (published indicator values).

-- Every fetched source: what, when, from where, with which content hash. One row per distinct
-- content; an unchanged source reuses its snapshot.
CREATE TABLE source_snapshots (
    snapshot_id     VARCHAR PRIMARY KEY,      -- '<city_id>/<source_id>/<sha256[:16]>'
    city_id         VARCHAR NOT NULL,
    source_id       VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL,
    location        VARCHAR NOT NULL,
    format          VARCHAR NOT NULL,
    content_sha256  VARCHAR NOT NULL,
    size_bytes      BIGINT NOT NULL,
    path            VARCHAR NOT NULL,         -- relative to the home directory
    fetched_at      TIMESTAMPTZ NOT NULL,
    request         JSON
);

-- Pipeline runs, for provenance of everything written.
CREATE TABLE runs (
    run_id       VARCHAR PRIMARY KEY,
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    status       VARCHAR NOT NULL,            -- running | succeeded | failed
    configs      JSON,
    code_version VARCHAR NOT NULL
);

-- Which snapshot of each source the warehouse currently reflects, per city.
CREATE TABLE core_source_state (
    city_id     VARCHAR NOT NULL,
    source_id   VARCHAR NOT NULL,
    snapshot_id VARCHAR NOT NULL,
    loaded_at   TIMESTAMPTZ NOT NULL,
    row_count   BIGINT NOT NULL,
    PRIMARY KEY (city_id, source_id)
);

-- Canonical observations: one value per city, year, variable, data point and area.
-- area_type 'city' with area_id = city_id is the whole city. Derived values (annual means,
-- district sums, polygon areas) carry derivation = '<name>@<version>'.
CREATE TABLE observations (
    city_id        VARCHAR NOT NULL,
    year           INTEGER NOT NULL,
    variable       VARCHAR NOT NULL,
    data_point     VARCHAR,
    area_type      VARCHAR NOT NULL,
    area_id        VARCHAR NOT NULL,
    value          DOUBLE NOT NULL,
    unit           VARCHAR NOT NULL,
    source_value   DOUBLE,                    -- as published, before unit conversion
    source_unit    VARCHAR,
    source_id      VARCHAR NOT NULL,
    snapshot_id    VARCHAR,
    source_record  VARCHAR NOT NULL,          -- e.g. 'statistik.csv row 14' or the derivation inputs
    derivation     VARCHAR
);
CREATE UNIQUE INDEX observations_key ON observations (city_id, year, variable, data_point, area_type, area_id);

-- Polygons (districts, green areas): geometry as WKB in WGS84, area computed on an equal-area projection.
CREATE TABLE core_areas (
    city_id      VARCHAR NOT NULL,
    area_type    VARCHAR NOT NULL,
    area_id      VARCHAR NOT NULL,
    name         VARCHAR,
    area_ha      DOUBLE NOT NULL,
    geometry_wkb BLOB NOT NULL,
    source_id    VARCHAR NOT NULL,
    snapshot_id  VARCHAR NOT NULL,
    source_record VARCHAR NOT NULL,
    PRIMARY KEY (city_id, area_type, area_id)
);

-- Point features (monitoring stations, hotspots) with the district that contains them.
CREATE TABLE core_points (
    city_id      VARCHAR NOT NULL,
    point_type   VARCHAR NOT NULL,
    point_id     VARCHAR NOT NULL,
    name         VARCHAR,
    lon          DOUBLE NOT NULL,
    lat          DOUBLE NOT NULL,
    district_id  VARCHAR,
    source_id    VARCHAR NOT NULL,
    snapshot_id  VARCHAR NOT NULL,
    source_record VARCHAR NOT NULL,
    PRIMARY KEY (city_id, point_type, point_id)
);

-- Time-stamped sensor readings in canonical units (hourly air quality etc.).
CREATE TABLE core_readings (
    city_id     VARCHAR NOT NULL,
    station_id  VARCHAR NOT NULL,
    observed_at TIMESTAMPTZ NOT NULL,
    variable    VARCHAR NOT NULL,
    data_point  VARCHAR,
    value       DOUBLE NOT NULL,
    source_id   VARCHAR NOT NULL,
    snapshot_id VARCHAR NOT NULL
);

-- Public transport stops from GTFS, with the number of departures on a typical weekday.
CREATE TABLE core_transit_stops (
    city_id        VARCHAR NOT NULL,
    stop_id        VARCHAR NOT NULL,
    name           VARCHAR,
    lon            DOUBLE NOT NULL,
    lat            DOUBLE NOT NULL,
    location_type  INTEGER NOT NULL,
    route_types    VARCHAR,                   -- comma-separated GTFS route_type codes serving the stop
    departures     INTEGER NOT NULL,
    source_id      VARCHAR NOT NULL,
    snapshot_id    VARCHAR NOT NULL,
    PRIMARY KEY (city_id, stop_id)
);

-- Indicator values: one row per city, year, indicator and data point, whatever the status.
CREATE TABLE kpi_values (
    city_id         VARCHAR NOT NULL,
    year            INTEGER NOT NULL,
    indicator_id    VARCHAR NOT NULL,
    framework       VARCHAR NOT NULL CHECK (framework IN ('u4ssc', 'sdg11')),
    data_point      VARCHAR,
    value           DOUBLE,
    unit            VARCHAR NOT NULL,
    status          VARCHAR NOT NULL CHECK (status IN ('computed', 'missing', 'failed_check', 'not_applicable')),
    status_reason   VARCHAR,
    numerator       DOUBLE,
    denominator     DOUBLE,
    missing_inputs  VARCHAR[],
    inputs          JSON NOT NULL,
    formula         VARCHAR,
    formula_version VARCHAR,
    run_id          VARCHAR NOT NULL,
    computed_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX kpi_values_key ON kpi_values (city_id, year, indicator_id, data_point);

-- Published releases (the directories under <home>/releases are the source of truth).
CREATE TABLE releases (
    release_id      VARCHAR PRIMARY KEY,
    created_at      TIMESTAMPTZ NOT NULL,
    path            VARCHAR NOT NULL,
    run_id          VARCHAR,
    cities          VARCHAR[] NOT NULL,
    years           INTEGER[] NOT NULL,
    kpi_rows        BIGINT NOT NULL,
    manifest_sha256 VARCHAR NOT NULL,
    code_version    VARCHAR NOT NULL
);
