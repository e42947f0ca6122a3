"""Routing scores: the TBG probe before decoding, calibrated sequence confidence after it."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confroute.contract import CalibrationMap, RoutingMode
from confroute.errors import InvalidInput
from confroute.routing import Stage, logged_scores, post_score, pre_score, raw_post_score, stage_score
from tests.confroute.routing.policies import a_policy, generated

unit = st.floats(0.0, 1.0)
logprobs = st.floats(-20.0, 0.0)


def test_the_pre_confidence_is_the_tbg_probe() -> None:
    assert pre_score({"probe_tbg": 0.37}) == pytest.approx(0.37)
    assert pre_score({"probe_tbg": 1.2}) == 1.0


def test_without_a_trained_tbg_probe_there_is_no_pre_confidence() -> None:
    assert pre_score(generated(-0.1)) is None


def test_mode_post_reads_no_score_before_generation() -> None:
    signals = {"probe_tbg": 0.37}
    assert stage_score(Stage.PRE, signals, a_policy(mode=RoutingMode.POST)) is None
    assert stage_score(Stage.PRE, signals, a_policy(mode=RoutingMode.PRE)) == pytest.approx(0.37)


def test_the_raw_post_score_is_the_geometric_mean_token_probability() -> None:
    assert raw_post_score(generated(math.log(0.8))) == pytest.approx(0.8)


def test_a_trained_slt_probe_is_averaged_into_the_raw_post_score() -> None:
    assert raw_post_score(generated(math.log(0.8), probe_slt=0.4)) == pytest.approx(0.6)


def test_an_empty_calibration_map_takes_the_raw_score_as_calibrated() -> None:
    assert stage_score(Stage.POST, generated(math.log(0.7)), a_policy()) == pytest.approx(0.7)


def test_the_policy_calibration_map_is_applied_after_generation() -> None:
    policy = a_policy(calibration=CalibrationMap(x=(0.5, 0.9), y=(0.1, 0.5)))

    assert stage_score(Stage.POST, generated(math.log(0.7)), policy) == pytest.approx(0.3)
    assert stage_score(Stage.POST, generated(math.log(0.2)), policy) == pytest.approx(0.1)  # flat below the knots
    assert stage_score(Stage.POST, generated(0.0), policy) == pytest.approx(0.5)  # and above them


def test_a_finished_generation_must_carry_its_mean_logprob() -> None:
    with pytest.raises(InvalidInput) as caught:
        stage_score(Stage.POST, {"probe_slt": 0.5}, a_policy())
    assert caught.value.field == "signals.logprob_mean"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_signals_are_refused(bad: float) -> None:
    with pytest.raises(InvalidInput):
        pre_score({"probe_tbg": bad})
    with pytest.raises(InvalidInput):
        stage_score(Stage.POST, generated(bad), a_policy())


@given(a=logprobs, b=logprobs, slt=st.one_of(st.none(), unit))
def test_the_post_confidence_rises_with_the_mean_logprob(a: float, b: float, slt: float | None) -> None:
    extra = {} if slt is None else {"probe_slt": slt}
    policy = a_policy(calibration=CalibrationMap(x=(0.2, 0.5, 0.9), y=(0.0, 0.4, 0.95)))
    low, high = sorted((a, b))
    assert post_score(generated(low, **extra), policy.calibration) <= post_score(
        generated(high, **extra), policy.calibration)


@given(a=unit, b=unit, logprob=logprobs)
def test_the_post_confidence_rises_with_the_slt_probe(a: float, b: float, logprob: float) -> None:
    low, high = sorted((a, b))
    assert raw_post_score(generated(logprob, probe_slt=low)) <= raw_post_score(generated(logprob, probe_slt=high))


def test_the_post_score_is_the_raw_score_through_the_calibration_map() -> None:
    calibration = CalibrationMap(x=(0.5, 0.9), y=(0.1, 0.5))
    signals = generated(math.log(0.7), probe_slt=0.5)
    assert post_score(signals, calibration) == calibration(raw_post_score(signals)) == pytest.approx(0.2)


def test_logged_scores_are_the_raw_scores_and_leave_out_what_is_missing_or_not_finite() -> None:
    assert logged_scores(generated(math.log(0.8), probe_slt=0.4, probe_tbg=0.3)) == pytest.approx(
        {"post": 0.6, "pre": 0.3})
    assert logged_scores({"probe_tbg": math.nan, "logprob_mean": math.log(0.8), "probe_slt": math.inf}) == (
        pytest.approx({"post": 0.8}))
    assert logged_scores({"probe_tbg": 0.3}) == pytest.approx({"pre": 0.3})
