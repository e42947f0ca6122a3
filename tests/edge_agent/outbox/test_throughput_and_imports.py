"""The queue's write-throughput probe runs, and the outbox stays within the lean device image."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from edge_agent.outbox.throughput import measure_put_rate

FORBIDDEN = ("cloud_service", "redis", "tritonclient")


def test_the_put_rate_probe_times_durable_puts_into_a_fresh_file(tmp_path: Path) -> None:
    rate = measure_put_rate(tmp_path / "bench.sqlite", puts=50, synchronous="NORMAL")

    assert rate.puts == 50 and rate.seconds > 0 and rate.per_s > 0


def test_the_outbox_loads_no_cloud_modules() -> None:
    probe = (
        "import sys, edge_agent.outbox, edge_agent.outbox.throughput;"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
