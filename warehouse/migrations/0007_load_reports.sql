-- 0007: each source's load report kept with its state (issue #13: every publish path writes the
-- `loads` section of manifest.json from the warehouse, not from what one process happened to see).
-- The report of the load that wrote the source's rows: rows read, duplicates, empty cells,
-- unmapped codes, rejected rows and why. An unchanged source keeps the report of its last load.
ALTER TABLE core_source_state ADD COLUMN load_report JSON;
ALTER TABLE core_derive_state ADD COLUMN report JSON;  -- what the last derivation did (counts per derivation)
