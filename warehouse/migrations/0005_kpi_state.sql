-- 0005: what each city's indicator values and scores were last computed from (issue #4: an
-- unchanged source triggers no recomputation downstream). A whole-city computation writes the
-- fingerprint of its inputs; the next one with the same fingerprint keeps the stored rows. A
-- city-year partition run deletes the city's rows here (its tables then mix runs).
CREATE TABLE kpi_state (
    city_id        VARCHAR NOT NULL,
    stage          VARCHAR NOT NULL CHECK (stage IN ('kpi_values', 'scores')),
    inputs_sha256  VARCHAR NOT NULL,   -- observations (values, provenance, quality marks), the kpis package, targets, years
    run_id         VARCHAR,
    computed_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (city_id, stage)
);
