"""What importing some modules loads, asked of a fresh interpreter (the lean-image tests use it)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def loaded(modules: Sequence[str], roots: Sequence[str]) -> list[str]:
    """The modules under any of ``roots`` that importing ``modules`` in a fresh interpreter loads."""
    probe = (
        f"import sys, {', '.join(modules)};"
        f"print(__import__('json').dumps(sorted(m for m in sys.modules if m.split('.')[0] in {tuple(roots)!r})))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    found: list[str] = json.loads(result.stdout)
    return found
