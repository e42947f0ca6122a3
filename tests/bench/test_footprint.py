"""bench.edgebench.footprint: the peak-RSS child imports only the runtime it measures and prints one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.edgebench.footprint import main, peak_rss_mb


def test_the_peak_is_read_from_this_process() -> None:
    assert peak_rss_mb() > 1.0


def test_a_bundle_run_prints_cold_start_and_peak(tiny_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--bundle", str(tiny_bundle), "--prompt-tokens", "5"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(line) == {"cold_start_s", "peak_rss_mb"} and line["peak_rss_mb"] > 1.0


def test_the_child_loads_neither_onnx_nor_the_benchmark() -> None:
    code = ("import sys, bench.edgebench.footprint; "
            "print(sorted(m for m in ('onnx', 'bench.edge_generation', 'confroute.modelkit') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.strip() == "[]"
