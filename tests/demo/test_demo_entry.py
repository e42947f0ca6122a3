"""The demo is a top-level package beside the device's: it runs, and it starts the cloud side as commands
rather than importing it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_python_m_demo_help_lists_the_options() -> None:
    result = subprocess.run([sys.executable, "-m", "demo", "--help"], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert "--questions" in result.stdout


def test_the_demo_imports_no_cloud_modules() -> None:
    probe = (
        "import sys, demo.run;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('cloud_service', 'redis', 'tritonclient')))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == "[]"
