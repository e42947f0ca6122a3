"""Confidence scores: the TBG probe before decoding, calibrated sequence confidence after it."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confroute.calibration import IsotonicMap, fit_isotonic
from confroute.contract import CalibrationMap
from confroute.errors import InvalidInput
from edge_agent.routing import calibrate, confidence_post, confidence_pre, raw_post_score
from tests.edge_agent.routing.policies import a_policy, generated

unit = st.floats(0.0, 1.0)
logprobs = st.floats(-20.0, 0.0)


def test_the_pre_confidence_is_the_tbg_probe() -> None:
    assert confidence_pre({"probe_tbg": 0.37}, a_policy()) == pytest.approx(0.37)


def test_without_a_trained_tbg_probe_there_is_no_pre_confidence() -> None:
    assert confidence_pre(generated(-0.1), a_policy()) is None


def test_the_raw_post_score_is_the_geometric_mean_token_probability() -> None:
    assert raw_post_score(generated(math.log(0.8))) == pytest.approx(0.8)


def test_a_trained_slt_probe_is_averaged_into_the_raw_post_score() -> None:
    assert raw_post_score(generated(math.log(0.8), probe_slt=0.4)) == pytest.approx(0.6)


def test_an_empty_calibration_map_takes_the_raw_score_as_calibrated() -> None:
    assert confidence_post(generated(math.log(0.7)), a_policy()) == pytest.approx(0.7)


def test_the_policy_calibration_map_is_applied_after_generation() -> None:
    policy = a_policy(calibration=CalibrationMap(x=(0.5, 0.9), y=(0.1, 0.5)))

    assert confidence_post(generated(math.log(0.7)), policy) == pytest.approx(0.3)
    assert confidence_post(generated(math.log(0.2)), policy) == pytest.approx(0.1)  # flat below the knots
    assert confidence_post(generated(0.0), policy) == pytest.approx(0.5)  # and above them


def test_a_finished_generation_must_carry_its_mean_logprob() -> None:
    with pytest.raises(InvalidInput) as caught:
        confidence_post({"probe_slt": 0.5}, a_policy())
    assert caught.value.field == "signals.logprob_mean"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_signals_are_refused(bad: float) -> None:
    with pytest.raises(InvalidInput):
        confidence_pre({"probe_tbg": bad}, a_policy())
    with pytest.raises(InvalidInput):
        confidence_post(generated(bad), a_policy())


@given(a=logprobs, b=logprobs, slt=st.one_of(st.none(), unit))
def test_the_post_confidence_rises_with_the_mean_logprob(a: float, b: float, slt: float | None) -> None:
    extra = {} if slt is None else {"probe_slt": slt}
    policy = a_policy(calibration=CalibrationMap(x=(0.2, 0.5, 0.9), y=(0.0, 0.4, 0.95)))
    low, high = sorted((a, b))
    assert confidence_post(generated(low, **extra), policy) <= confidence_post(generated(high, **extra), policy)


@given(a=unit, b=unit, logprob=logprobs)
def test_the_post_confidence_rises_with_the_slt_probe(a: float, b: float, logprob: float) -> None:
    low, high = sorted((a, b))
    assert raw_post_score(generated(logprob, probe_slt=low)) <= raw_post_score(generated(logprob, probe_slt=high))


@given(scores=st.lists(st.floats(-5.0, 5.0), min_size=2, max_size=40), raw=st.floats(-10.0, 10.0))
def test_calibration_matches_the_isotonic_library(scores: list[float], raw: float) -> None:
    correct = [1.0 if i % 3 else 0.0 for i in range(len(scores))]
    fitted = fit_isotonic(scores, correct)

    ours = calibrate(raw, CalibrationMap(x=fitted.x, y=fitted.y))

    assert ours == pytest.approx(IsotonicMap(fitted.x, fitted.y)(raw), abs=1e-12)
    assert 0.0 <= ours <= 1.0
