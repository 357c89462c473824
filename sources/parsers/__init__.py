"""Parsers: read a landed snapshot into rows, never touching the network."""
