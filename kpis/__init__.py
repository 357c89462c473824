"""KPI catalogue (U4SSC and SDG 11) and the engine that computes indicator values from observations."""
