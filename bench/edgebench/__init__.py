"""Helpers of ``bench.edge_agent`` and ``bench.edge_generation``: the outbox write-throughput probe; the
peak-RSS and cold-start child (:mod:`bench.edgebench.footprint`)."""
