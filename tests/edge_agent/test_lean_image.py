"""The device image stays lean: the edge agent's entry points load no cloud or export code."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("cloud_service", "redis", "tritonclient", "torch", "transformers", "onnx", "gguf")


def test_the_edge_agent_entry_point_loads_no_cloud_or_export_modules() -> None:
    probe = (
        "import sys, edge_agent.cli, edge_agent.model, edge_agent.demo.run, confroute.engine;"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
