"""bench.edge_serving's load-robust parts: the API's CPU cost per streamed token is measured and small; the
graph alone is timed and gives the c=4 bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.edge_serving import api_cpu_per_token, graph_costs
from confroute.engine import Engine


def test_the_api_streams_a_token_in_well_under_a_millisecond_of_cpu() -> None:
    assert 0 < api_cpu_per_token(n=500, rounds=2) < 1000


def test_the_graph_alone_is_timed_and_bounds_the_c4_speedup(tiny_bundles: dict[str, Path]) -> None:
    costs = graph_costs(Engine(tiny_bundles["llama"]), tokens=8, rounds=1)
    assert set(costs) == {"graph_prefill_ms", "graph_step_ms_r1", "graph_step_ms_r4", "graph_ceiling_c4"}
    assert all(v > 0 for v in costs.values())
    prefill, one, four = costs["graph_prefill_ms"], costs["graph_step_ms_r1"], costs["graph_step_ms_r4"]
    assert costs["graph_ceiling_c4"] == pytest.approx(4 * (prefill + 7 * one) / (4 * prefill + 7 * four))
