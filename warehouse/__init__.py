"""The DuckDB warehouse: home directory, migrations, loading, derivations and storage."""
