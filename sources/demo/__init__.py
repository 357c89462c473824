"""Demoville: a deterministic synthetic city whose raw files exercise every source format citykpi reads."""

from sources.demo.generator import DEFAULT_SEED, ensure_demo_city, generate_demo_city, station_count

__all__ = ["DEFAULT_SEED", "ensure_demo_city", "generate_demo_city", "station_count"]
