-- 0009: how sure each value is and how it was made (issue #15), beside the value in every release.
-- confidence: the catalogue entry's `confidence` (formula_read, page_partly_read, name_unit_read,
--   metadata_read, corroborated, from_knowledge, inferred: how much of the official method was read).
-- method_variant: the derivations that made the row's inputs (e.g. 'city_annual_mean@2'), or
--   'as published' when every input came from a source as it is.
-- caveats: the formula's known deviation from the official method (catalogue `caveat`), if any.
ALTER TABLE kpi_values ADD COLUMN confidence VARCHAR;
ALTER TABLE kpi_values ADD COLUMN method_variant VARCHAR;
ALTER TABLE kpi_values ADD COLUMN caveats VARCHAR;
