"""Calibration from binned statistics: agrees with the per-record functions, monotone, refuses bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confroute.calibration import (
    ScoreHistogram,
    calibrated_bins,
    fit_histogram_isotonic,
    histogram_estimates,
    histogram_threshold_for_rate,
    histogram_threshold_for_risk,
    histogram_threshold_for_tradeoff,
    threshold_for_rate,
)
from confroute.errors import InvalidInput

BINS = 100


def histogram(scores: np.ndarray, correct: np.ndarray, weights: np.ndarray | None = None) -> ScoreHistogram:
    """The histogram of labelled records (every record labelled)."""
    w = np.ones_like(scores) if weights is None else weights
    index = np.minimum((scores * BINS).astype(int), BINS - 1)
    return ScoreHistogram(
        counts=np.bincount(index, minlength=BINS).astype(float),
        correct=np.bincount(index, weights=w * correct, minlength=BINS).astype(np.float64),
        wrong=np.bincount(index, weights=w * (1 - correct), minlength=BINS).astype(np.float64),
        labelled_count=float(scores.size),
        labelled_weight=float(w.sum()),
        labelled_weight_sq=float((w * w).sum()),
    )


def traffic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores uniform on [0, 1]; the edge is right with probability equal to the score."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(size=n)
    return scores, (rng.uniform(size=n) < scores).astype(float)


def test_the_rate_threshold_matches_the_per_record_quantile_at_bin_resolution() -> None:
    scores, correct = traffic(20_000)
    hist = histogram(scores, correct)
    conf = hist.centres  # an identity calibration

    threshold = histogram_threshold_for_rate(hist, conf, 0.3)

    assert np.mean(scores < threshold) == pytest.approx(0.3, abs=1.0 / BINS)
    assert abs(threshold - threshold_for_rate(scores, 0.3)) <= 1.0 / BINS


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=200), st.floats(0, 1), st.floats(0, 1))
def test_a_higher_target_rate_never_lowers_the_threshold(scores: list[float], low: float, high: float) -> None:
    low, high = sorted((low, high))
    hist = histogram(np.asarray(scores), np.ones(len(scores)))
    conf = hist.centres

    assert histogram_threshold_for_rate(hist, conf, low) <= histogram_threshold_for_rate(hist, conf, high)


@settings(max_examples=50, deadline=None)
@given(st.floats(0, 1), st.integers(1, 50), st.floats(0, 1))
def test_tied_scores_escalate_whole_or_not_at_all(score: float, n: int, rate: float) -> None:
    hist = histogram(np.full(n, score), np.ones(n))

    estimates = histogram_estimates(hist, hist.centres, histogram_threshold_for_rate(hist, hist.centres, rate))

    assert estimates.escalation_rate in (0.0, 1.0)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=2, max_size=200))
def test_the_fitted_calibration_is_monotone(records: list[tuple[float, bool]]) -> None:
    scores = np.asarray([s for s, _ in records])
    correct = np.asarray([float(c) for _, c in records])
    if correct.min() == correct.max():
        return
    calibration = fit_histogram_isotonic(histogram(scores, correct))

    assert np.all(np.diff(calibration(np.linspace(0, 1, 101))) >= 0)


@settings(max_examples=30, deadline=None)
@given(st.floats(0.01, 0.5), st.floats(0.01, 0.5), st.floats(0, 2))
def test_a_looser_risk_or_a_higher_price_never_escalates_more(alpha: float, alpha_more: float, lam: float) -> None:
    scores, correct = traffic(3000, seed=1)
    hist = histogram(scores, correct)
    conf = calibrated_bins(hist, fit_histogram_isotonic(hist))
    low, high = sorted((alpha, alpha_more))

    assert histogram_threshold_for_risk(hist, conf, high, 0.1) <= histogram_threshold_for_risk(hist, conf, low, 0.1)
    assert histogram_threshold_for_tradeoff(hist, conf, lam + 0.1) <= histogram_threshold_for_tradeoff(hist, conf, lam)


def test_the_risk_threshold_holds_its_bound_on_fresh_traffic() -> None:
    scores, correct = traffic(20_000, seed=2)
    hist = histogram(scores, correct)
    calibration = fit_histogram_isotonic(hist)
    threshold = histogram_threshold_for_risk(hist, calibrated_bins(hist, calibration), 0.1, 0.05)

    fresh, fresh_correct = traffic(50_000, seed=3)
    kept = calibration(fresh) >= threshold
    assert np.mean(kept & (fresh_correct == 0)) <= 0.1
    assert 0.0 < np.mean(~kept) < 1.0


def test_the_tradeoff_escalates_where_the_edge_is_wrong_more_often_than_the_price() -> None:
    scores, correct = traffic(20_000, seed=4)
    hist = histogram(scores, correct)
    conf = calibrated_bins(hist, fit_histogram_isotonic(hist))

    # escalating gains P(wrong) = 1 - conf per query: worth it while 1 - conf > lam, i.e. conf < 1 - lam
    assert histogram_threshold_for_tradeoff(hist, conf, 0.6) == pytest.approx(0.4, abs=0.03)


def test_labels_of_one_class_only_are_refused_with_a_reason() -> None:
    scores, _ = traffic(500)
    hist = histogram(scores, np.ones(500))

    assert "one class" in hist.refusal(min_labelled=100, min_effective_size=50)


def test_too_few_labels_or_a_small_effective_size_are_refused_with_a_reason() -> None:
    scores, correct = traffic(500)
    weights = np.where(np.arange(500) < 10, 100.0, 1.0)  # ten shadow labels at propensity 0.01

    assert "fewer than the minimum 1000" in histogram(scores, correct).refusal(1000, 50)
    assert "effective sample size" in histogram(scores, correct, weights).refusal(100, 400)
    assert histogram(scores, correct).refusal(100, 400) == ""


def test_the_effective_size_is_kish_of_the_records_not_of_the_bins() -> None:
    hist = histogram(np.full(400, 0.5), np.ones(400), np.full(400, 2.0))

    assert hist.effective_size == pytest.approx(400.0)


@pytest.mark.parametrize("field", ["counts", "correct", "wrong"])
def test_nan_or_negative_bins_are_rejected(field: str) -> None:
    good = {"counts": np.ones(BINS), "correct": np.ones(BINS), "wrong": np.ones(BINS)}
    for bad in (math.nan, -1.0):
        values = dict(good)
        values[field] = np.concatenate(([bad], np.ones(BINS - 1)))
        with pytest.raises(InvalidInput) as caught:
            ScoreHistogram(**values, labelled_count=1.0, labelled_weight=1.0, labelled_weight_sq=1.0)
        assert caught.value.field == field


def test_nan_confidence_is_rejected() -> None:
    hist = histogram(np.asarray([0.2, 0.8]), np.asarray([0.0, 1.0]))
    conf = hist.centres.copy()
    conf[5] = math.nan

    with pytest.raises(InvalidInput, match="NaN"):
        histogram_threshold_for_rate(hist, conf, 0.5)
