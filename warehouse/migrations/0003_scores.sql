-- 0003: benchmarking (issue #9). U4SSC scores against targets, their roll-ups, and progress
-- towards the targets. Written by kpis/benchmarking/store.py:store_scores, which replaces one
-- city's rows in all three tables in one transaction. Targets are citykpi defaults or the
-- city's own table (target_source), never the official U4SSC benchmarks (not public).

-- One row per city, year, U4SSC KPI and data point: scored (share of target, points 1-4, band)
-- or excluded (status_reason says why: no computed value, no target, no worst value).
CREATE TABLE kpi_scores (
    city_id                  VARCHAR NOT NULL,
    year                     INTEGER NOT NULL,
    indicator_id             VARCHAR NOT NULL,
    data_point               VARCHAR,
    dimension                VARCHAR NOT NULL,
    subdimension             VARCHAR NOT NULL,
    category                 VARCHAR NOT NULL,
    value                    DOUBLE,
    unit                     VARCHAR,
    target                   DOUBLE,
    direction                VARCHAR CHECK (direction IN ('higher', 'lower')),
    worst                    DOUBLE,
    deadline                 INTEGER,
    share_pct                DOUBLE,            -- uncapped share of target, %
    share_capped_pct         DOUBLE,            -- clamped to [0, 100], the value banded
    points                   INTEGER CHECK (points BETWEEN 1 AND 4),
    band                     VARCHAR,           -- '<33' | '33-66' | '66-95' | '95+'
    band_label               VARCHAR,
    official_u4ssc_benchmark BOOLEAN,
    target_source            VARCHAR,           -- 'default: kpis/targets/default.csv' | 'city: <path>'
    target_citation          VARCHAR,
    status                   VARCHAR NOT NULL CHECK (status IN ('scored', 'excluded')),
    status_reason            VARCHAR,
    run_id                   VARCHAR NOT NULL,
    computed_at              TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX kpi_scores_key ON kpi_scores (city_id, year, indicator_id, data_point);

-- Sum of points / (4 x scored KPIs) per city, year, level (dimension | subdimension | category)
-- and group (path of names, e.g. 'Economy / ICT / Water and Sanitation'); score null when no
-- KPI of the group was scored.
CREATE TABLE kpi_rollups (
    city_id              VARCHAR NOT NULL,
    year                 INTEGER NOT NULL,
    level                VARCHAR NOT NULL CHECK (level IN ('dimension', 'subdimension', 'category')),
    group_path           VARCHAR NOT NULL,
    dimension            VARCHAR NOT NULL,
    subdimension         VARCHAR,
    category             VARCHAR,
    n_kpis               INTEGER NOT NULL,
    n_scored_kpis        INTEGER NOT NULL,
    n_scored_data_points INTEGER NOT NULL,
    points_sum           DOUBLE,
    max_points           INTEGER NOT NULL,
    score_pct            DOUBLE,
    band                 VARCHAR,
    band_label           VARCHAR,
    run_id               VARCHAR NOT NULL,
    computed_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (city_id, year, level, group_path)
);

-- Progress towards the target per city, indicator, data point and method ('un' | 'eurostat'),
-- from the first year since 2015 to the latest year with a computed value.
CREATE TABLE kpi_progress (
    city_id        VARCHAR NOT NULL,
    framework      VARCHAR NOT NULL,
    indicator_id   VARCHAR NOT NULL,
    data_point     VARCHAR,
    method         VARCHAR NOT NULL CHECK (method IN ('un', 'eurostat')),
    base_year      INTEGER,
    base_value     DOUBLE,
    latest_year    INTEGER,
    latest_value   DOUBLE,
    n_years        INTEGER NOT NULL,
    target         DOUBLE,
    direction      VARCHAR,
    deadline       INTEGER,
    target_source  VARCHAR,
    cagr_actual    DOUBLE,
    cagr_required  DOUBLE,
    ratio          DOUBLE,
    trend          VARCHAR,                     -- 'up' | 'down' | 'flat'
    status         VARCHAR NOT NULL CHECK (status IN ('on_track', 'acceleration_needed', 'limited_progress',
                                                      'deterioration', 'target_achieved', 'trend_only',
                                                      'not_assessed')),
    label          VARCHAR,
    reason         VARCHAR,
    run_id         VARCHAR NOT NULL,
    computed_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX kpi_progress_key ON kpi_progress (city_id, indicator_id, data_point, method);
