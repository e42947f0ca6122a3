"""bench.edge_serving's load-robust part: the API's CPU cost per streamed token is measured and small."""

from __future__ import annotations

from bench.edge_serving import api_cpu_per_token


def test_the_api_streams_a_token_in_well_under_a_millisecond_of_cpu() -> None:
    assert 0 < api_cpu_per_token(n=500, rounds=2) < 1000
