"""The demo is a top-level package beside the device's: it runs, and it starts the cloud side as commands
rather than importing it."""

from __future__ import annotations

import subprocess
import sys

from tests.imports import ROOT, loaded


def test_python_m_demo_help_lists_the_options() -> None:
    result = subprocess.run([sys.executable, "-m", "demo", "--help"], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert "--questions" in result.stdout


def test_the_demo_imports_no_cloud_modules() -> None:
    assert loaded(["demo.run"], ("cloud_service", "redis", "tritonclient")) == []
