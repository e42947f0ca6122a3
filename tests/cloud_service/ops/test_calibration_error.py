"""The live policy's calibration error, estimated from the statistics' histogram (``histogram_ece``)."""

from __future__ import annotations

import numpy as np
import pytest

from cloud_service.calibration.policy_maker import histogram_ece
from confroute.calibration import ScoreHistogram


def histogram(correct: list[float], wrong: list[float]) -> ScoreHistogram:
    counts = np.add(correct, wrong)
    return ScoreHistogram(counts, np.array(correct, float), np.array(wrong, float), float(counts.sum()),
                          float(counts.sum()), float(counts.sum()))


def test_confidences_that_match_the_share_correct_have_no_error() -> None:
    assert histogram_ece(histogram([20, 80], [80, 20]), np.array([0.2, 0.8])) == pytest.approx(0.0)


def test_a_gap_is_weighted_by_the_labels_behind_it() -> None:
    # 100 labels at confidence 0.9 that are right half the time (a gap of 0.4), 100 at 0.8 right 80% of
    # the time (no gap): 0.4 over half the labels.
    error = histogram_ece(histogram([50, 80], [50, 20]), np.array([0.9, 0.8]))
    assert error == pytest.approx(0.4 * 100 / 200)


def test_fine_bins_are_pooled_so_their_noise_is_not_miscalibration() -> None:
    # Ten bins at confidences 0.50..0.59, each with one label, half of them right: one bucket, no gap
    # worth the name, where per-bin gaps would read ~0.5.
    conf = np.linspace(0.5, 0.59, 10)
    error = histogram_ece(histogram([1, 0] * 5, [0, 1] * 5), conf)
    assert error == pytest.approx(abs(0.5 - conf.mean()))


def test_no_labels_no_error() -> None:
    assert histogram_ece(histogram([0, 0], [0, 0]), np.array([0.3, 0.7])) == 0.0
