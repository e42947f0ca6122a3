"""The hybrid band: holds the threshold, narrows as labels grow, covers the scores the probe cannot decide."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confroute.calibration import ScoreHistogram, hybrid_band
from confroute.errors import InvalidInput

BINS = 100


def histogram(scores: np.ndarray, correct: np.ndarray) -> ScoreHistogram:
    index = np.minimum((scores * BINS).astype(int), BINS - 1)
    return ScoreHistogram(
        counts=np.bincount(index, minlength=BINS).astype(float),
        correct=np.bincount(index, weights=correct, minlength=BINS).astype(np.float64),
        wrong=np.bincount(index, weights=1 - correct, minlength=BINS).astype(np.float64),
        labelled_count=float(scores.size),
        labelled_weight=float(scores.size),
        labelled_weight_sq=float(scores.size),
    )


def scaled(hist: ScoreHistogram, k: float) -> ScoreHistogram:
    """The same shares of k times as many records (each of weight 1)."""
    return dataclasses.replace(hist, counts=hist.counts * k, correct=hist.correct * k, wrong=hist.wrong * k,
                               labelled_count=hist.labelled_count * k, labelled_weight=hist.labelled_weight * k,
                               labelled_weight_sq=hist.labelled_weight_sq * k)


def traffic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores uniform on [0, 1]; the edge is right with probability equal to the score."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(size=n)
    return scores, (rng.uniform(size=n) < scores).astype(float)


def test_the_band_holds_the_threshold_and_sits_around_it() -> None:
    band = hybrid_band(histogram(*traffic(5000)), 0.4, 0.1)

    assert 0.0 < band.low < 0.4 < band.high < 1.0
    assert band.level == pytest.approx(0.4, abs=0.1)


def test_more_labels_narrow_the_band_towards_the_threshold() -> None:
    widths = [hybrid_band(histogram(*traffic(n, seed=1)), 0.5, 0.1) for n in (300, 3000, 30_000)]

    assert [b.high - b.low for b in widths] == sorted((b.high - b.low for b in widths), reverse=True)
    assert widths[-1].high - widths[-1].low < 0.2


def test_a_probe_that_knows_nothing_leaves_every_score_to_the_post_check() -> None:
    rng = np.random.default_rng(2)
    scores = rng.uniform(size=2000)
    band = hybrid_band(histogram(scores, (rng.uniform(size=2000) < 0.6).astype(float)), 0.5, 0.1)

    assert (band.low, band.high) == (0.0, 1.0)


def test_a_perfect_probe_needs_almost_no_band() -> None:
    scores = np.random.default_rng(3).uniform(size=4000)
    band = hybrid_band(histogram(scores, (scores >= 0.5).astype(float)), 0.5, 0.1)

    assert (band.low, band.high) == (0.5, 0.5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=300), st.floats(0, 1),
       st.floats(0.01, 0.5), st.floats(1.0, 50.0))
def test_the_band_is_ordered_and_never_widens_with_more_of_the_same(
    records: list[tuple[float, bool]], threshold: float, delta: float, k: float
) -> None:
    scores = np.array([s for s, _ in records])
    hist = histogram(scores, np.array([float(c) for _, c in records]))

    band, more = hybrid_band(hist, threshold, delta), hybrid_band(scaled(hist, k), threshold, delta)

    assert 0.0 <= band.low <= threshold <= band.high <= 1.0
    assert band.low <= more.low <= threshold <= more.high <= band.high
    assert 0.0 <= band.level <= 1.0


@pytest.mark.parametrize(("threshold", "delta"), [(float("nan"), 0.1), (1.5, 0.1), (0.5, 0.0), (0.5, 1.0)])
def test_bad_arguments_are_refused(threshold: float, delta: float) -> None:
    with pytest.raises(InvalidInput):
        hybrid_band(histogram(*traffic(100)), threshold, delta)


def test_no_labels_are_refused() -> None:
    hist = dataclasses.replace(histogram(*traffic(100)), correct=np.zeros(BINS), wrong=np.zeros(BINS))

    with pytest.raises(InvalidInput, match="no labelled outcomes"):
        hybrid_band(hist, 0.5, 0.1)
