"""The outbox stays within the lean device image."""

from __future__ import annotations

from tests.imports import loaded


def test_the_outbox_loads_no_cloud_modules() -> None:
    assert loaded(["edge_agent.outbox"], ("cloud_service", "redis", "tritonclient")) == []
