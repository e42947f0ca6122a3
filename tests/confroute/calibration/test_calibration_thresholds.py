"""Thresholds for a target escalation rate, a quality-cost trade-off and a certified risk."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confroute.calibration import (
    effective_sample_size,
    threshold_for_rate,
    threshold_for_risk,
    threshold_for_tradeoff,
)

FAST = settings(max_examples=150, deadline=None)
# Small value pools make ties common.
confidences = st.one_of(
    st.lists(st.floats(0, 1), min_size=1, max_size=80),
    st.lists(st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9]), min_size=1, max_size=80),
)


@FAST
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=80, unique=True), st.floats(0, 1))
def test_threshold_for_rate_escalates_the_requested_share(scores: list[float], rate: float) -> None:
    threshold = threshold_for_rate(scores, rate)
    share = float(np.mean(np.array(scores) < threshold))
    assert abs(share - rate) <= 1 / len(scores)


@FAST
@given(confidences, st.floats(0, 1))
def test_threshold_for_rate_with_ties_escalates_the_closest_achievable_share(
    scores: list[float], rate: float
) -> None:
    s = np.array(scores)
    escalated = int(np.sum(s < threshold_for_rate(s, rate)))
    achievable = [int(np.sum(s < v)) for v in np.unique(s)] + [len(s)]
    best = min(abs(k - rate * len(s)) for k in achievable)
    assert abs(escalated - rate * len(s)) == pytest.approx(best)


def test_threshold_for_rate_covers_none_and_all() -> None:
    scores = [0.2, 0.4, 0.6]
    assert not any(s < threshold_for_rate(scores, 0.0) for s in scores)
    assert all(s < threshold_for_rate(scores, 1.0) for s in scores)


def test_threshold_for_tradeoff_escalates_where_the_cloud_gain_beats_the_price() -> None:
    conf = [0.1, 0.2, 0.3, 0.8, 0.9]
    edge = [0, 0, 1, 1, 1]
    cloud = [1, 1, 1, 1, 1]
    assert threshold_for_tradeoff(conf, edge, cloud, lam=0.5) == 0.3  # escalates 0.1 and 0.2
    assert threshold_for_tradeoff(conf, edge, cloud, lam=2.0) == 0.1  # escalates nothing


def test_threshold_for_tradeoff_rejects_a_negative_price() -> None:
    from confroute.errors import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        threshold_for_tradeoff([0.5], [1], [1], lam=-1.0)
    assert caught.value.field == "lam"


def test_threshold_for_risk_escalates_everything_when_data_are_too_few() -> None:
    conf = [0.2, 0.5, 0.9]
    assert all(c < threshold_for_risk(conf, [1, 1, 1], alpha=0.05, delta=0.1) for c in conf)


def test_threshold_for_risk_keeps_everything_when_the_edge_is_never_wrong() -> None:
    conf = np.linspace(0, 1, 500)
    assert threshold_for_risk(conf, np.ones(500), alpha=0.05, delta=0.1) == 0.0


def _calibration_set(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    conf = rng.random(n)
    return conf, rng.random(n) < conf  # P(correct | conf) = conf


def test_threshold_for_risk_holds_its_guarantee_on_simulated_traffic() -> None:
    # With conf ~ U(0, 1) and P(correct | conf) = conf, the true risk at t is (1 - t)^2 / 2.
    rng = np.random.default_rng(11)
    alpha, delta = 0.1, 0.1
    thresholds = np.array([threshold_for_risk(*_calibration_set(300, rng), alpha, delta) for _ in range(300)])
    violations = np.mean((1 - thresholds) ** 2 / 2 > alpha)
    assert violations <= delta
    assert np.median(thresholds) < 0.7  # and it is not vacuous (t = 1 escalates all)


def test_weighted_threshold_for_risk_holds_its_guarantee_on_simulated_traffic() -> None:
    rng = np.random.default_rng(12)
    thresholds = []
    for _ in range(200):
        conf, correct = _calibration_set(600, rng)
        thresholds.append(threshold_for_risk(conf, correct, 0.1, 0.1, weights=rng.uniform(1, 3, 600)))
    assert np.mean((1 - np.array(thresholds)) ** 2 / 2 > 0.1) <= 0.1


@FAST
@given(
    confidences.flatmap(
        lambda c: st.tuples(st.just(c), st.lists(st.booleans(), min_size=len(c), max_size=len(c)))
    ),
    st.floats(0.01, 0.98),
    st.floats(0.01, 0.98),
    st.booleans(),
)
def test_threshold_for_risk_never_escalates_more_when_alpha_grows(
    data: tuple[list[float], list[bool]], a: float, b: float, weighted: bool
) -> None:
    conf, correct = data
    low, high = sorted((a, b))
    weights = np.linspace(1, 4, len(conf)) if weighted else None
    strict = threshold_for_risk(conf, correct, low, 0.1, weights=weights)
    loose = threshold_for_risk(conf, correct, high, 0.1, weights=weights)
    assert loose <= strict


def test_threshold_for_risk_uses_the_kish_sample_size_with_weights() -> None:
    # Equal weights: Hoeffding with N records; it escalates at least as much as the exact binomial test.
    rng = np.random.default_rng(5)
    conf, correct = _calibration_set(2000, rng)
    assert effective_sample_size(np.ones(2000)) == pytest.approx(2000)
    exact = threshold_for_risk(conf, correct, 0.1, 0.1)
    hoeffding = threshold_for_risk(conf, correct, 0.1, 0.1, weights=np.ones(2000))
    assert hoeffding >= exact
