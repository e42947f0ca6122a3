from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from confroute.engine.sampling import log_softmax, sample_token
from confroute.engine.stops import StopMatcher


def test_top_p_samples_only_from_the_nucleus() -> None:
    logits = np.log(np.array([0.6, 0.3, 0.05, 0.05]))
    rng = np.random.default_rng(0)
    drawn = {sample_token(logits, 1.0, 0.85, rng)[0] for _ in range(300)}
    assert drawn == {0, 1}


def test_sampled_log_probability_is_under_the_untempered_distribution() -> None:
    logits = np.array([2.0, 1.0, 0.0])
    token, logprob = sample_token(logits, 0.5, 1.0, np.random.default_rng(1))
    assert logprob == log_softmax(logits)[token]


@given(st.text(max_size=40), st.lists(st.integers(0, 5), max_size=12), st.sampled_from(["ab", "END", "x"]))
def test_stop_matching_emits_exactly_the_text_before_the_first_stop(text: str, cuts: list[int], stop: str) -> None:
    matcher = StopMatcher((stop,))
    out, pos = [], 0
    for size in [*cuts, len(text)]:
        out.append(matcher.feed(text[pos: pos + size]))
        pos += size
    out.append(matcher.flush())
    expected = text[: text.find(stop)] if stop in text else text
    assert "".join(out) == expected


@pytest.mark.parametrize("temperature", [1e-300, 5e-324, 1e-30])
def test_a_vanishing_temperature_picks_the_argmax_without_overflow(temperature: float) -> None:
    logits = np.array([1.0, 3.0, 2.0, -1e30], dtype=np.float32)  # found by the device API's fuzzing: a 500
    token, logprob = sample_token(logits, temperature, 0.9, np.random.default_rng(0))
    assert token == 1
    assert logprob == pytest.approx(float(log_softmax(logits.astype(np.float64))[1]))
