"""docs/configuration.md says what the code reads: the generator finds nothing to change."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_configuration_page_matches_the_settings_in_the_code() -> None:
    result = subprocess.run([sys.executable, "scripts/gen_config_doc.py", "--check"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
