from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from confroute.bundle.probe import write_probe
from confroute.engine import Engine, SamplingParams
from confroute.errors import InvalidInput, PromptTooLong

USER = [{"role": "user", "content": "What is two plus two?"}]


def test_greedy_generation_is_deterministic_and_stops_at_the_token_budget(tiny_bundles: dict[str, Path]) -> None:
    engine = Engine(tiny_bundles["llama"])
    first = engine.chat(USER, SamplingParams(max_new_tokens=9, ignore_eos=True))
    second = engine.chat(USER, SamplingParams(max_new_tokens=9, ignore_eos=True))
    assert first.token_ids == second.token_ids
    assert first.completion_tokens == 9
    assert first.finish_reason == "length"


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_every_family_generates_with_per_token_signals(tiny_bundles: dict[str, Path], arch: str) -> None:
    gen = Engine(tiny_bundles[arch]).chat(USER, SamplingParams(max_new_tokens=6, ignore_eos=True))
    assert gen.entropies.shape == gen.max_probs.shape == gen.logprobs.shape == (6,)
    assert np.all((gen.max_probs > 0) & (gen.max_probs <= 1))
    assert np.all(gen.entropies >= 0)
    np.testing.assert_allclose(gen.logprobs, np.log(gen.max_probs), rtol=1e-5)  # greedy picks the argmax


def test_sampling_with_a_seed_is_reproducible_and_differs_across_seeds(tiny_bundles: dict[str, Path]) -> None:
    engine = Engine(tiny_bundles["llama"])

    def sample(seed: int) -> tuple[int, ...]:
        params = SamplingParams(max_new_tokens=12, temperature=1.5, top_p=0.95, seed=seed, ignore_eos=True)
        return engine.chat(USER, params).token_ids

    assert sample(1) == sample(1)
    assert len({sample(s) for s in range(4)}) > 1


def test_streamed_text_concatenates_to_the_result_text(tiny_bundles: dict[str, Path]) -> None:
    engine = Engine(tiny_bundles["llama"])
    run = engine.start(engine.encode_chat(USER), SamplingParams(max_new_tokens=16, temperature=1.0, seed=3))
    streamed = "".join(event.text for event in run)
    assert streamed == run.result.text


def test_a_stop_string_ends_the_output_before_it(tiny_bundles: dict[str, Path]) -> None:
    engine = Engine(tiny_bundles["llama"])
    params = SamplingParams(max_new_tokens=40, temperature=1.0, seed=5, ignore_eos=True)
    full = engine.chat(USER, params).text
    assert len(full) > 4
    stop = full[2:4]
    cut = engine.chat(USER, SamplingParams(**{**params.__dict__, "stop": (stop,)}))
    assert cut.text == full[: full.find(stop)]
    assert cut.finish_reason == "stop"


def test_a_prompt_longer_than_the_context_is_rejected_unless_truncation_is_asked(
        tiny_bundles: dict[str, Path]) -> None:
    engine = Engine(tiny_bundles["llama"])
    ids = [5] * (engine.context_length - 3)
    with pytest.raises(PromptTooLong, match="context is 256 tokens"):
        engine.generate(ids, SamplingParams(max_new_tokens=8))
    gen = engine.generate(ids, SamplingParams(max_new_tokens=8, truncate_prompt=True, ignore_eos=True))
    assert gen.prompt_tokens == engine.context_length - 8
    assert gen.completion_tokens == 8


def test_empty_messages_and_bad_parameters_name_the_field(tiny_bundles: dict[str, Path]) -> None:
    engine = Engine(tiny_bundles["llama"])
    with pytest.raises(InvalidInput) as empty:
        engine.chat([], SamplingParams())
    assert empty.value.field == "messages"
    for bad, field in (({"max_new_tokens": 0}, "max_new_tokens"), ({"temperature": float("nan")}, "temperature"),
                       ({"top_p": 0.0}, "top_p"), ({"stop": ("",)}, "stop")):
        with pytest.raises(InvalidInput) as err:
            SamplingParams(**bad)  # type: ignore[arg-type]
        assert err.value.field == field


def test_untrained_probes_report_no_score_and_trained_ones_do(tiny_bundle: Path) -> None:
    gen = Engine(tiny_bundle).chat(USER, SamplingParams(max_new_tokens=4))
    assert gen.tbg is None and gen.slt is None
    engine = Engine(tiny_bundle)
    dim = engine.manifest.probe.feature_dim
    write_probe(tiny_bundle, "tbg", np.zeros(dim), 2.0, {"labels": "test"})
    write_probe(tiny_bundle, "slt", np.zeros(dim), -2.0, {"labels": "test"})
    gen = Engine(tiny_bundle).chat(USER, SamplingParams(max_new_tokens=4))
    assert gen.tbg == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert gen.slt == pytest.approx(1 / (1 + np.exp(2.0)))


def test_the_probe_reads_the_features_it_exposes(tiny_bundle: Path) -> None:
    engine = Engine(tiny_bundle)
    ids = engine.encode_chat(USER)
    features = engine.start(ids, SamplingParams(max_new_tokens=1), features=True).prefill.features
    assert features is not None and features.shape == (engine.manifest.probe.feature_dim,)
    weight = np.random.default_rng(0).standard_normal(features.size).astype(np.float32) * 0.01
    write_probe(tiny_bundle, "tbg", weight, 0.1, {"labels": "test"})
    tbg = Engine(tiny_bundle).start(ids, SamplingParams(max_new_tokens=1)).tbg
    assert tbg == pytest.approx(1 / (1 + np.exp(-(features @ weight + 0.1))), rel=1e-4)
