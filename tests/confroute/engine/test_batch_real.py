"""Continuous batching on the real 8-bit SmolLM2 bundle: rows decoded together match decoding alone up to
the batched kernels' rounding (KL on teacher-forced logits; greedy answers equal up to near ties)."""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import numpy as np
import pytest

from confroute.engine import Engine, Generation, SamplingParams
from confroute.engine.sampling import log_softmax

pytestmark = pytest.mark.slow

PROMPTS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "user", "content": "Write a haiku about the sea."}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Explain photosynthesis."}],
    [{"role": "user", "content": "List three prime numbers."}],
]
STEPS = 24


def _kl(p_logits: np.ndarray, q_logits: np.ndarray) -> float:
    p, q = log_softmax(p_logits.astype(np.float64)), log_softmax(q_logits.astype(np.float64))
    return float(np.sum(np.exp(p) * (p - q)))


def test_teacher_forced_batched_logits_match_each_row_alone(smollm2_int8_bundle: Path) -> None:
    engine = Engine(smollm2_int8_bundle)
    decoder = engine.decoder
    prompts = [engine.encode_chat(m) for m in PROMPTS]
    alone: list[list[np.ndarray]] = []
    tokens: list[list[int]] = []
    for ids in prompts:  # each row alone: greedy, with its logits at every step
        cache = decoder.new_cache(len(ids) + STEPS + 1)
        step = decoder.forward(cache, np.asarray([ids]), logits=True)
        rows, chosen = [step.logits], [step.next_token]
        for _ in range(STEPS):
            step = decoder.step(cache, chosen[-1], logits=True)
            rows.append(step.logits)
            chosen.append(step.next_token)
        alone.append([r for r in rows if r is not None])
        tokens.append(chosen)
    kv = decoder.new_batch(len(prompts), max(map(len, prompts)) + STEPS + 1)
    for row, ids in enumerate(prompts):
        cache = decoder.new_cache(len(ids) + STEPS + 1, arrays=True)
        decoder.forward(cache, np.asarray([ids]))
        kv.load(row, cache, len(ids))
    worst = 0.0
    for s in range(STEPS):  # the same tokens fed to all rows at once
        out = decoder.step_rows(kv, np.asarray([t[s] for t in tokens]), logits=True)
        kv.lengths[: len(prompts)] += 1
        worst = max(worst, *(_kl(alone[r][s + 1], out["logits"][r]) for r in range(len(prompts))))
    assert worst < 1e-3, worst


def test_concurrent_greedy_answers_equal_answers_alone_up_to_near_ties(smollm2_int8_bundle: Path) -> None:
    params = SamplingParams(max_new_tokens=STEPS, ignore_eos=True)
    alone_engine = Engine(smollm2_int8_bundle)
    alone = [alone_engine.chat(m, params) for m in PROMPTS]
    engine = Engine(smollm2_int8_bundle, max_batch=4)
    try:
        together: list[Generation | None] = [None] * len(PROMPTS)
        jobs = [functools.partial(engine.chat, m, params) for m in PROMPTS]

        def work(i: int) -> None:
            together[i] = jobs[i]()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(PROMPTS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert engine.batch is not None and engine.batch.stepped_rows > engine.batch.steps
    finally:
        engine.close()
    for a, b in zip(together, alone, strict=True):
        assert a is not None
        same = next((i for i, (x, y) in enumerate(zip(a.token_ids, b.token_ids, strict=True)) if x != y), STEPS)
        # before the first difference, the signals agree; a difference is a near tie (same top probability)
        np.testing.assert_allclose(a.entropies[:same], b.entropies[:same], atol=2e-3)
        np.testing.assert_allclose(a.max_probs[:same], b.max_probs[:same], atol=2e-3)
        if same < STEPS:
            assert abs(a.max_probs[same] - b.max_probs[same]) < 2e-3
            assert b.max_probs[same] < 0.6  # the winner was not clear
