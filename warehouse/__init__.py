"""The canonical model: the DuckDB warehouse, its migrations, storage and releases."""
