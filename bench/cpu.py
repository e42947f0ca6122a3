"""Which CPU a benchmark's figures (or a parity test's) came from: its model and instruction-set level.

onnxruntime, numpy and torch pick their kernels by what CPUID tells the process, so the level that
matters is the one the process sees: numpy's CPUID reading (``__cpu_features__``) where it has the
feature, ``/proc/cpuinfo`` for the rest (AMX, AVX-VNNI, ARM's i8mm) and for the model name. Under an
emulator (``qemu-x86_64 -cpu Haswell``) ``/proc/cpuinfo`` still describes the host: its flags count only
where CPUID agrees on the AVX-512 family, and the model name says so.
"""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Mapping
from pathlib import Path

# x86-64 levels, best first: (name, features the process must see). AMX and AVX-VNNI come from the flags.
_X86_LEVELS = (
    ("AVX-512 VNNI + AMX", ("AVX512F", "AVX512VNNI", "amx_int8")),
    ("AVX-512 VNNI", ("AVX512F", "AVX512VNNI")),
    ("AVX-512", ("AVX512F",)),
    ("AVX2 + AVX-VNNI", ("AVX2", "FMA3", "avx_vnni")),
    ("AVX2", ("AVX2", "FMA3")),
)
_ARM_FEATURES = ("asimd", "asimddp", "i8mm", "bf16", "sve", "sve2")  # NEON, dot product, int8 matmul, ...


@dataclasses.dataclass(frozen=True)
class CpuInfo:
    model: str
    isa: str  # e.g. "x86-64 AVX2", "x86-64 AVX-512 VNNI + AMX", "arm64 asimd asimddp i8mm"
    features: tuple[str, ...]

    def to_json(self) -> dict[str, str]:
        """The keys every benchmark JSON carries."""
        return {"cpu_model": self.model, "cpu_isa": self.isa, "cpu_features": " ".join(self.features)}

    def label(self) -> str:
        return f"{self.model} ({self.isa})"


def this_cpu() -> CpuInfo:
    """The CPU this process runs on, as its kernels see it."""
    try:
        text = Path("/proc/cpuinfo").read_text("utf-8", errors="replace")
    except OSError:
        text = ""
    return read_cpu(text, platform.machine(), _numpy_features())


def read_cpu(cpuinfo: str, machine: str, seen: Mapping[str, bool]) -> CpuInfo:
    """``cpuinfo``: the text of /proc/cpuinfo; ``seen``: numpy's CPUID reading (feature -> present)."""
    fields = _first_block(cpuinfo)
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    if machine.lower() in ("aarch64", "arm64"):
        features = tuple(f for f in _ARM_FEATURES if f in flags or seen.get(f.upper(), False))
        model = fields.get("model name") or _arm_model(fields)
        return CpuInfo(model, " ".join(["arm64", *features]), features)
    emulated = "avx512f" in flags and not seen.get("AVX512F", True)
    visible = {name for name, present in seen.items() if present} | (set() if emulated else flags)
    features = tuple(f for f in ("AVX2", "FMA3", "avx_vnni", "AVX512F", "AVX512VNNI", "amx_int8") if f in visible)
    level = next((name for name, need in _X86_LEVELS if all(f in visible for f in need)), "SSE")
    model = fields.get("model name", machine or "unknown")
    if emulated:
        model = f"emulated on {model}"
    return CpuInfo(model, f"x86-64 {level}", features)


def _first_block(cpuinfo: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    return fields


def _arm_model(fields: Mapping[str, str]) -> str:
    parts = [f"{key} {fields[key]}" for key in ("cpu implementer", "cpu part") if key in fields]
    return "arm64 " + ", ".join(parts) if parts else "arm64"


def _numpy_features() -> dict[str, bool]:
    import importlib

    for name in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):  # numpy 2, numpy 1
        try:
            return dict(getattr(importlib.import_module(name), "__cpu_features__", {}))
        except ImportError:
            continue
    return {}
