"""The real SmolLM2-135M-Instruct exact 4-bit bundle (built once into the cache): its weights are the
GGUF's own Q4_1/Q8_0 grids, so against the fp32 dequantization of the same file only the int8 activation
rounding of ``accuracy_level=4`` remains. Bounds are on KL over many positions, which hold on every CPU
(AVX2, AVX-512/VNNI, ARM64 round activations alike, their kernels sum in different orders)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from confroute.bundle import load_bundle, needs_export
from confroute.engine import Engine, SamplingParams
from confroute.modelkit.cli import int4_bundle_dir
from confroute.modelkit.export import EDGE_INT4, ExportOptions, export_bundle
from confroute.paths import cache_dir

pytestmark = [pytest.mark.real_model, pytest.mark.slow]


@pytest.fixture(scope="module")
def int4_bundle() -> Path:
    from confroute.modelkit.sources import load_default

    dest = int4_bundle_dir(cache_dir(os.environ))
    if needs_export(dest) or load_bundle(dest, verify=False).quantization != EDGE_INT4:
        export_bundle(load_default(cache_dir(os.environ), lambda _m: None), dest,
                      ExportOptions(quantization=EDGE_INT4), lambda _m: None)
    return dest


def test_every_matmul_keeps_the_sources_grid(smollm2_gguf: Path) -> None:
    from confroute.modelkit.sources import load_default

    source = load_default(smollm2_gguf.parent.parent, lambda _m: None)
    kinds = {name: (g.source_type, g.bits, g.offsets is not None) for name, g in source.grids.items()}
    assert kinds.pop("embed") == ("Q8_0", 8, False)
    assert len(kinds) == 30 * 7 and set(kinds.values()) == {("Q4_1", 4, True)}


def test_the_export_reports_parity_with_the_dequantized_source(int4_bundle: Path) -> None:
    import json

    manifest = load_bundle(int4_bundle)
    assert manifest.model_id == "smollm2-135m-instruct-int4" and manifest.quantization == EDGE_INT4
    parity = json.loads((int4_bundle / "parity.json").read_text())
    assert parity["positions"] >= 128 and parity["mean_kl"] < 0.005


def test_kl_to_the_fp32_dequantization_over_many_positions(int4_bundle: Path, smollm2_bundle: Path) -> None:
    from confroute.modelkit.parity import compare_bundles

    report = compare_bundles(smollm2_bundle, int4_bundle, new_tokens=64)
    print(report)
    assert report.positions == 4 * 64
    assert report.mean_kl < 0.005 and report.max_kl < 0.1 and report.top1_agreement > 0.95


def test_probe_features_are_the_fp32_bundles_within_activation_rounding(int4_bundle: Path,
                                                                       smollm2_bundle: Path) -> None:
    ref, cand = Engine(smollm2_bundle), Engine(int4_bundle)
    ids = np.asarray([ref.encode_chat([{"role": "user", "content": "Why is the sky blue?"}])])
    a = ref.decoder.forward(ref.decoder.new_cache(), ids, features=True).features
    b = cand.decoder.forward(cand.decoder.new_cache(), ids, features=True).features
    assert a is not None and b is not None
    relative = float(np.linalg.norm(a - b) / np.linalg.norm(a))
    print(f"probe features: relative difference {relative:.4f}")
    assert relative < 0.05


def test_the_engine_generates_and_the_head_reads_the_int4_logits(int4_bundle: Path) -> None:
    """Greedy text is not compared: SmolLM2's first token for some prompts is a near tie in fp32 itself
    (0.152 vs 0.140 for "What is the capital of France?"), which any rounding may flip."""
    engine = Engine(int4_bundle)
    ids = engine.encode_chat([{"role": "user", "content": "Write a haiku about the sea."}])
    result = engine.generate(ids, SamplingParams(max_new_tokens=16, ignore_eos=True))
    assert len(result.token_ids) == 16 and result.text.strip()
    step = engine.decoder.forward(engine.decoder.new_cache(), np.asarray([ids]), logits=True)
    assert step.logits is not None
    logits = step.logits.astype(np.float64)
    logprobs = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
    assert step.next_token == int(logits.argmax())
    assert step.argmax_logprob == pytest.approx(logprobs.max(), abs=1e-4)
    assert step.entropy == pytest.approx(-(np.exp(logprobs) * logprobs).sum(), abs=1e-3)
