from __future__ import annotations

from pathlib import Path

import pytest

from confroute.engine import Engine, SamplingParams
from confroute.errors import InvalidInput
from confroute.uncertainty.sampling import sample_answers

USER = [{"role": "user", "content": "What is two plus two?"}]


def test_samples_from_one_prefill_equal_independent_seeded_generations(tiny_bundles: dict[str, Path]) -> None:
    engine = Engine(tiny_bundles["llama"])
    ids = engine.encode_chat(USER)
    samples = sample_answers(engine, ids, 4, temperature=1.0, top_p=0.9, max_new_tokens=12, seed=7)
    assert len(samples) == 4 and len({s.text for s in samples}) > 1
    for i, sample in enumerate(samples):
        alone = engine.generate(ids, SamplingParams(max_new_tokens=12, temperature=1.0, top_p=0.9, seed=7 + i))
        assert sample.text == alone.text
        assert sample.token_count == alone.completion_tokens
        assert sample.logprob_sum == pytest.approx(float(alone.logprobs.sum()), abs=1e-4)
        assert sample.logprob_sum <= 0.0
    assert sample_answers(engine, ids, 4, max_new_tokens=12, top_p=0.9, seed=7) == samples


def test_sampling_needs_a_positive_count_and_temperature(tiny_bundles: dict[str, Path]) -> None:
    engine = Engine(tiny_bundles["llama"])
    ids = engine.encode_chat(USER)
    with pytest.raises(InvalidInput):
        sample_answers(engine, ids, 0)
    with pytest.raises(InvalidInput):
        sample_answers(engine, ids, 2, temperature=0.0)
