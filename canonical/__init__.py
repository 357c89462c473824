"""The shared vocabulary: canonical variables, units, SQL text quoting and user-facing errors.

The bottom layer (docs/architecture.md): every other package may import it; it imports none of them."""
