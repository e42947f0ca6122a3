"""The device's routing and cloud client load nothing of the cloud side (imports point one way:
``edge_agent -> confroute <- cloud_service``)."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("cloud_service", "redis", "tritonclient", "torch", "transformers")


def test_routing_and_the_cloud_client_load_no_cloud_side_modules() -> None:
    probe = (
        "import sys, edge_agent.routing, edge_agent.cloud;"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
