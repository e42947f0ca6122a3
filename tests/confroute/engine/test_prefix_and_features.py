from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from confroute.bundle.probe import write_probe
from confroute.engine import Engine, SamplingParams
from confroute.errors import InvalidInput, RuntimeFailure

USER = [{"role": "user", "content": "What is two plus two?"}]


def sampled(seed: int, tokens: int = 10) -> SamplingParams:
    return SamplingParams(max_new_tokens=tokens, temperature=1.2, top_p=0.95, seed=seed, ignore_eos=True)


def test_runs_resumed_from_one_prefill_match_runs_that_prefill_their_own(tiny_bundles: dict[str, Path]) -> None:
    engine = Engine(tiny_bundles["llama"])
    ids = engine.encode_chat(USER)
    prefix = engine.prefill(ids, sampled(0))
    for seed in (1, 2, 3, 1):
        resumed = engine.resume(prefix, sampled(seed)).result
        fresh = engine.start(ids, sampled(seed)).result
        assert resumed.token_ids == fresh.token_ids
        np.testing.assert_allclose(resumed.logprobs, fresh.logprobs, rtol=1e-5, atol=1e-6)


def test_a_greedy_run_can_resume_a_sampling_prefix_but_not_the_other_way(tiny_bundles: dict[str, Path]) -> None:
    engine = Engine(tiny_bundles["llama"])
    ids = engine.encode_chat(USER)
    greedy = SamplingParams(max_new_tokens=6, ignore_eos=True)
    assert engine.resume(engine.prefill(ids, sampled(0)), greedy).result.token_ids == \
        engine.generate(ids, greedy).token_ids
    with pytest.raises(InvalidInput, match="keeps the logits"):
        engine.resume(engine.prefill(ids, greedy), sampled(0, tokens=6))
    with pytest.raises(InvalidInput) as err:
        engine.resume(engine.prefill(ids, greedy), SamplingParams(max_new_tokens=7))
    assert err.value.field == "max_new_tokens"


def test_a_run_whose_prefix_was_taken_over_refuses_to_continue(tiny_bundles: dict[str, Path]) -> None:
    engine = Engine(tiny_bundles["llama"])
    prefix = engine.prefill(engine.encode_chat(USER), sampled(0))
    first = iter(engine.resume(prefix, sampled(1)))
    next(first)
    engine.resume(prefix, sampled(2)).result  # noqa: B018
    with pytest.raises(RuntimeFailure, match="decode them in turn"):
        next(first)


@pytest.mark.parametrize("finish", ["length", "stop"])
def test_the_slt_probe_reads_the_features_the_run_keeps(tiny_bundle: Path, finish: str) -> None:
    engine = Engine(tiny_bundle)
    dim = engine.manifest.probe.feature_dim
    weight = np.random.default_rng(0).standard_normal(dim).astype(np.float32) * 0.05
    write_probe(tiny_bundle, "slt", weight, -0.3, {"labels": "test"})
    write_probe(tiny_bundle, "tbg", -weight, 0.2, {"labels": "test"})
    engine = Engine(tiny_bundle)
    params = SamplingParams(max_new_tokens=5 if finish == "length" else 60, temperature=1.0, seed=4,
                            ignore_eos=finish == "length")
    run = engine.start(engine.encode_chat(USER), params, features=True)
    assert run.slt_features is None  # not known before the run ends
    gen = run.result
    assert gen.finish_reason == finish or finish == "stop"
    assert run.tbg_features is not None and run.slt_features is not None
    assert gen.slt == pytest.approx(1 / (1 + np.exp(-(run.slt_features @ weight - 0.3))), rel=1e-4)
    assert gen.tbg == pytest.approx(1 / (1 + np.exp(-(run.tbg_features @ -weight + 0.2))), rel=1e-4)


def test_runs_without_features_keep_none(tiny_bundles: dict[str, Path]) -> None:
    engine = Engine(tiny_bundles["llama"])
    run = engine.start(engine.encode_chat(USER), SamplingParams(max_new_tokens=3, ignore_eos=True))
    run.result  # noqa: B018
    assert run.tbg_features is None and run.slt_features is None
