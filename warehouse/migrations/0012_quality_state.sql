-- 0012: what each city's quality checks of a stage last judged (issue #16: a run over many cities
-- checks again only the cities whose checked tables, settings or code changed). Written with the
-- stage's results, in the same transaction; quality/state.py computes the fingerprint.
CREATE TABLE quality_state (
    city_id        VARCHAR NOT NULL,
    stage          VARCHAR NOT NULL CHECK (stage IN ('core', 'kpis', 'scores')),
    inputs_sha256  VARCHAR NOT NULL,   -- the city's rows of the tables the stage reads, its suite context, the code
    run_id         VARCHAR NOT NULL,   -- the run whose quality_results rows hold the stage's results
    checked_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (city_id, stage)
);
