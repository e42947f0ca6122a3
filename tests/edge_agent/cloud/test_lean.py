"""The device's routing and cloud client load nothing of the cloud side (imports point one way:
``edge_agent -> confroute <- cloud_service``)."""

from __future__ import annotations

from tests.imports import loaded

FORBIDDEN = ("cloud_service", "redis", "tritonclient", "torch", "transformers")


def test_routing_and_the_cloud_client_load_no_cloud_side_modules() -> None:
    assert loaded(["confroute.routing", "edge_agent.routing", "edge_agent.cloud"], FORBIDDEN) == []
