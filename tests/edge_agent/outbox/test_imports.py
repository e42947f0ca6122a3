"""The outbox stays within the lean device image."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("cloud_service", "redis", "tritonclient")


def test_the_outbox_loads_no_cloud_modules() -> None:
    probe = (
        "import sys, edge_agent.outbox;"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
