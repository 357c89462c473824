"""Wiring: the plain pipeline steps, the Dagster definitions and the `citykpi` command line."""
