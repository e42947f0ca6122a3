"""Benchmarks for confroute (run as ``python -m bench.<name>``)."""
