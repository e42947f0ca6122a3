"""Transparent huge pages for the model's weights, through glibc's malloc tunable.

Every decoded token reads every weight once (~130 MB for SmolLM2-135M at 8 bits), a stream that crosses
tens of thousands of 4 KiB pages per token. onnxruntime takes its weight and prepacked buffers from glibc's
malloc; with ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` (glibc >= 2.35) malloc asks the kernel for
transparent huge pages on its large blocks, which matters where the kernel's THP mode is ``madvise`` (the
Debian/Ubuntu default: only memory that asks gets huge pages). ``bench.edge_generation`` times ours with
and without it in one run: on the 2-core development machine fp32 decoding gained 2-4% across runs and
8-bit 0-4% (within that machine's run-to-run noise), for ~2 MB more peak RSS.

glibc reads its tunables once, at process start, so :func:`reexec_with_huge_pages` re-executes the
process (same PID, same command line) with the tunable added. It does nothing when the tunable is
already set, where the kernel has no THP or has it ``never``, or where the C library is not glibc.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path

TUNABLE = "glibc.malloc.hugetlb=1"
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
    """``environ`` with the tunable added to ``GLIBC_TUNABLES``, or None when there is nothing to do: the
    kernel has no THP (``mode`` None or ``never``) or the process already chose (any ``glibc.malloc.hugetlb``
    setting, 0 included, is left alone)."""
    current = environ.get("GLIBC_TUNABLES", "")
    if mode in (None, "never") or "glibc.malloc.hugetlb=" in current:
        return None
    return {**environ, "GLIBC_TUNABLES": f"{current}:{TUNABLE}" if current else TUNABLE}


def active(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this process started with malloc asking for huge pages."""
    return TUNABLE in environ.get("GLIBC_TUNABLES", "").split(":")


def reexec_with_huge_pages() -> None:
    """Re-executes this process with huge-page malloc, once; returns where nothing is to be done."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return
    environ = environment_with_huge_pages(os.environ, thp_mode())
    if environ is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, sys.orig_argv, environ)
