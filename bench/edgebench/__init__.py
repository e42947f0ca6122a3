"""Helpers of ``bench.edge_agent``: the outbox write-throughput probe."""
