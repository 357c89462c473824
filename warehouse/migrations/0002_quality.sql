-- 0002: data quality (issue #5). Results of every check of every run, and the mark that carries a
-- blocking failure from an observation to the indicators computed from it.

-- Name(s) of the blocking quality checks this observation failed in the latest quality run of its
-- city ('; '-separated), NULL when it passed. Written by warehouse/quality after each load; the KPI
-- engine turns any indicator using a marked observation into status 'failed_check' with the reason.
ALTER TABLE observations ADD COLUMN failed_check VARCHAR;

-- One row per run, city, table and check. A run covers several cities, so the city is part of the key.
CREATE TABLE quality_results (
    run_id          VARCHAR NOT NULL,
    city_id         VARCHAR NOT NULL,
    table_name      VARCHAR NOT NULL,          -- warehouse table checked ('city' for config-level checks)
    check_name      VARCHAR NOT NULL,
    severity        VARCHAR NOT NULL CHECK (severity IN ('error', 'warning')),
    status          VARCHAR NOT NULL CHECK (status IN ('passed', 'failed', 'warned', 'skipped')),
    failing_count   BIGINT,                    -- rows (or units the check counts) failing; NULL when skipped
    evaluated_count BIGINT,                    -- rows (or units) the check looked at
    sample          JSON NOT NULL,             -- a few failing rows, with their keys and provenance
    description     VARCHAR NOT NULL,
    expectation     JSON,                      -- the Great Expectations validation result (NULL when skipped)
    evaluated_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, city_id, table_name, check_name)
);
