"""The parity tests of ``test_real_smollm2.py`` again, in an x86-64 process that sees an AVX2-only CPU.

``qemu-x86_64 -cpu Haswell-noTSX`` (Debian's qemu-user) runs this interpreter with CPUID reporting AVX2 and
FMA but no AVX-512, VNNI or AMX, so onnxruntime, numpy and torch take their AVX2 kernels: the instruction
set of the smallest x86-64 CPU the product supports, on whatever machine runs the tests. Slow (TCG
emulates every AVX2 instruction), so opt-in: marked ``haswell``, which ``make test`` deselects; run it with
``make test-haswell``. Needs an x86-64 host and qemu-x86_64 (Debian's qemu-user). See docs/parity.md.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.cpu import this_cpu

QEMU = shutil.which("qemu-x86_64")
CPU = "Haswell-noTSX"  # Haswell without TSX: the same instruction set, and no warning that TCG lacks it
ROOT = Path(__file__).resolve().parents[3]
PARITY_TESTS = ("test_logits_match_transformers_to_a_thousandth",
                "test_greedy_answers_follow_transformers_up_to_a_near_tie",
                "test_the_8bit_bundle_keeps_the_next_token_distribution")

pytestmark = [
    pytest.mark.haswell, pytest.mark.real_model, pytest.mark.slow,
    pytest.mark.skipif(platform.machine() != "x86_64" or QEMU is None,
                       reason="needs an x86-64 host with qemu-x86_64 (Debian's qemu-user)"),
]


def emulated(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    assert QEMU is not None
    return subprocess.run([QEMU, "-cpu", CPU, sys.executable, *args], cwd=ROOT, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_the_emulated_process_sees_an_avx2_only_cpu() -> None:
    seen = emulated("-c", "from bench.cpu import this_cpu; print(this_cpu().isa)", timeout=120)
    assert seen.returncode == 0, seen.stderr
    assert seen.stdout.strip() == "x86-64 AVX2"


def test_onnxruntime_picks_its_int8_kernel_by_the_emulated_cpu(tmp_path: Path) -> None:
    from tests.confroute.modelkit.int8_kernel import run_kernel

    run = emulated("-m", "tests.confroute.modelkit.int8_kernel", str(tmp_path / "haswell.npy"), timeout=300)
    assert run.returncode == 0, run.stderr
    native, haswell = run_kernel(), np.load(tmp_path / "haswell.npy")
    np.testing.assert_allclose(haswell, native, rtol=1e-2, atol=1e-2)
    if this_cpu().isa == "x86-64 AVX2":
        assert np.array_equal(haswell, native)
    else:  # AVX-VNNI, AVX-512 VNNI or AMX here: another kernel, another rounding
        assert not np.array_equal(haswell, native)


@pytest.mark.timeout(3 * 3600)  # emulation: a prefill ~120 s of CPU, a decode step ~4.5 s (native: 0.2 s, 0.07 s)
def test_the_parity_tests_pass_on_an_avx2_only_cpu() -> None:
    run = emulated("-m", "pytest", "-p", "no:cacheprovider", "-q", "-s", "--timeout=0",
                   "tests/confroute/modelkit/test_real_smollm2.py", "-k", " or ".join(PARITY_TESTS), timeout=3 * 3600)
    print(run.stdout[-3000:])
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
