"""How much a device's disk can take, behind a one-function interface (tests fake a short disk), and the
refusal made before a download starts rather than when the disk fills half-way through one."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from confroute.errors import InsufficientDisk

FreeSpace = Callable[[Path], int]  # free bytes on the file system that holds the path
RESERVE_BYTES = 64 << 20  # left free beyond what a download needs: the outbox and logs keep working


def free_bytes(path: Path) -> int:
    """Free bytes for this user on the file system of ``path`` (or of its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def require_space(path: Path, needed: int, free_space: FreeSpace, what: str) -> None:
    """InsufficientDisk unless ``needed`` bytes (plus :data:`RESERVE_BYTES`) are free where ``path`` lives."""
    free = free_space(path)
    wanted = needed + RESERVE_BYTES
    if free < wanted:
        raise InsufficientDisk(
            f"{what} needs {_mb(needed)} MB on {path} (+{_mb(RESERVE_BYTES)} MB kept free), "
            f"but only {_mb(free)} MB are free: nothing was downloaded; free some space and run it again",
            needed_bytes=wanted, free_bytes=free)


def _mb(count: int) -> str:
    return f"{count / 1e6:.1f}"
