"""Transparent huge pages for the model's weights, through glibc's malloc tunables.

Every decoded token reads every weight once (~130 MB for SmolLM2-135M at 8 bits), a stream that crosses
tens of thousands of 4 KiB pages per token. onnxruntime takes its weight and prepacked buffers from glibc's
malloc, one block per weight. Two tunables (glibc >= 2.35) put them on huge pages where the kernel's THP
mode is ``madvise`` (the Debian/Ubuntu default: only memory that asks gets huge pages):

- ``glibc.malloc.hugetlb=1``: malloc asks for transparent huge pages on the memory it takes from the kernel;
- ``glibc.malloc.mmap_threshold=33554432``: blocks up to 32 MiB come from malloc's heap instead of a
  mapping of their own. Without it most weights (0.3-3.5 MB each, the whole model at 8 bits) get their own
  mapping, too small or misaligned for a 2 MiB page: a loaded 8-bit SmolLM2 had 60 MB of its 245 MB on
  huge pages with the first tunable alone, 180 MB with both (``AnonHugePages``, read ad hoc).

``bench.edge_generation`` times ours with and without them in one run (rows ``ours_*`` and
``ours_*_default_malloc``); see docs/benchmarks.md for what they gave. Peak RSS is unchanged; loading takes
~0.15 s longer (the kernel clears 2 MiB pages as they are first touched).

glibc reads its tunables once, at process start, so :func:`reexec_with_huge_pages` re-executes the
process (same PID, same command line) with the tunables added. It does nothing when ``hugetlb`` is
already set, where the kernel has no THP or has it ``never``, or where the C library is not glibc.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path

HUGETLB = "glibc.malloc.hugetlb=1"
MMAP_THRESHOLD = "glibc.malloc.mmap_threshold=33554432"
#: What ``GLIBC_TUNABLES`` gets (added to any tunables already set).
TUNABLE = f"{HUGETLB}:{MMAP_THRESHOLD}"
THP_ENABLED = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def thp_mode(path: Path = THP_ENABLED) -> str | None:
    """The kernel's THP mode (``always``, ``madvise`` or ``never``); None where the kernel shows none."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1:end] if 0 <= start < end else None


def environment_with_huge_pages(environ: Mapping[str, str], mode: str | None) -> dict[str, str] | None:
    """``environ`` with the tunables added to ``GLIBC_TUNABLES``, or None when there is nothing to do: the
    kernel has no THP (``mode`` None or ``never``) or the process already chose (any ``glibc.malloc.hugetlb``
    setting, 0 included, is left alone). An ``mmap_threshold`` already set is kept."""
    current = environ.get("GLIBC_TUNABLES", "")
    if mode in (None, "never") or "glibc.malloc.hugetlb=" in current:
        return None
    added = HUGETLB if "glibc.malloc.mmap_threshold=" in current else TUNABLE
    return {**environ, "GLIBC_TUNABLES": f"{current}:{added}" if current else added}


def active(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this process started with malloc asking for huge pages."""
    return HUGETLB in environ.get("GLIBC_TUNABLES", "").split(":")


def reexec_with_huge_pages() -> None:
    """Re-executes this process with huge-page malloc, once; returns where nothing is to be done."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return
    environ = environment_with_huge_pages(os.environ, thp_mode())
    if environ is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, sys.orig_argv, environ)
