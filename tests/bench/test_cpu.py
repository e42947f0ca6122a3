"""The CPU a benchmark names: model and instruction-set level, as the process's kernels see it."""

from __future__ import annotations

from bench.cpu import read_cpu, this_cpu
from bench.readme_block import measured_on

SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse sse2 avx avx2 fma avx512f avx512_vnni avx_vnni amx_tile amx_int8 amx_bf16

processor\t: 1
model name\t: another block is not read
"""
HASWELL_FLAGS = "model name\t: Intel(R) Core(TM) i7-4770\nflags\t\t: fpu sse sse2 avx avx2 fma f16c\n"
GRAVITON = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32 asimddp sve i8mm bf16\nCPU implementer\t: 0x41\n" \
           "CPU part\t: 0xd40\n"
ALL_SEEN = {"AVX2": True, "FMA3": True, "AVX512F": True, "AVX512VNNI": True}
AVX2_SEEN = {"AVX2": True, "FMA3": True, "AVX512F": False, "AVX512VNNI": False}


def test_an_amx_xeon_is_named_with_its_top_level() -> None:
    cpu = read_cpu(SAPPHIRE_RAPIDS, "x86_64", ALL_SEEN)
    assert cpu.model == "Intel(R) Xeon(R) Platinum 8480+"
    assert cpu.isa == "x86-64 AVX-512 VNNI + AMX"
    assert cpu.to_json()["cpu_features"] == "AVX2 FMA3 avx_vnni AVX512F AVX512VNNI amx_int8"


def test_an_avx2_cpu_is_avx2() -> None:
    assert read_cpu(HASWELL_FLAGS, "x86_64", AVX2_SEEN).isa == "x86-64 AVX2"


def test_an_emulated_avx2_cpu_ignores_the_hosts_flags_and_says_so() -> None:
    cpu = read_cpu(SAPPHIRE_RAPIDS, "x86_64", AVX2_SEEN)
    assert cpu.isa == "x86-64 AVX2" and cpu.features == ("AVX2", "FMA3")
    assert cpu.model.startswith("emulated on Intel")


def test_an_arm64_cpu_lists_its_int8_features() -> None:
    cpu = read_cpu(GRAVITON, "aarch64", {})
    assert cpu.isa == "arm64 asimd asimddp i8mm bf16 sve"
    assert cpu.model == "arm64 cpu implementer 0x41, cpu part 0xd40"


def test_this_machine_has_a_model_and_a_level() -> None:
    info = this_cpu().to_json()
    assert info["cpu_model"] and info["cpu_isa"].split()[0] in ("x86-64", "arm64")


def test_a_generated_block_names_the_cpu_of_its_json() -> None:
    report = read_cpu(HASWELL_FLAGS, "x86_64", AVX2_SEEN).to_json()
    assert measured_on(report) == "CPU: Intel(R) Core(TM) i7-4770 (x86-64 AVX2)."
    assert measured_on({}) == "CPU: not recorded (a run from before benchmarks named it)."
