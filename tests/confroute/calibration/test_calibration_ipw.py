"""Inverse-propensity weights for escalated and shadow-sampled labels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confroute.calibration import (
    effective_sample_size,
    inverse_propensity_weights,
    label_propensity,
    weighted_labels,
)


def test_escalated_records_have_propensity_one_and_confident_ones_the_shadow_rate() -> None:
    assert label_propensity([True, False, False], 0.05).tolist() == [1.0, 0.05, 0.05]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(1e-6, 1.0), min_size=1, max_size=50))
def test_ipw_weights_are_at_least_one(propensity: list[float]) -> None:
    assert np.all(inverse_propensity_weights(propensity) >= 1.0)


def test_effective_sample_size_of_equal_weights_is_the_count() -> None:
    assert effective_sample_size([2.0, 2.0, 2.0]) == pytest.approx(3.0)


def test_effective_sample_size_shrinks_when_one_weight_dominates() -> None:
    assert effective_sample_size([1.0, 1.0, 10.0]) == pytest.approx(144 / 102)


def test_weighted_labels_weight_shadow_labels_by_the_inverse_shadow_rate() -> None:
    escalated = np.array([True, True, False, False, False])
    labelled = np.array([True, True, True, False, False])
    result = weighted_labels(label_propensity(escalated, 0.25), labelled, min_effective_size=1)
    assert result.ok and result.reason == ""
    assert result.indices.tolist() == [0, 1, 2]
    assert result.weights.tolist() == [1.0, 1.0, 4.0]
    assert result.effective_size == pytest.approx(36 / 18)


def test_weighted_labels_refuse_when_the_effective_sample_is_too_small() -> None:
    result = weighted_labels([1.0, 0.01, 1.0], [True, True, False], min_effective_size=50)
    assert not result.ok
    assert "effective sample size" in result.reason


def test_weighted_labels_refuse_when_nothing_is_labelled() -> None:
    result = weighted_labels([1.0, 0.1], [False, False], min_effective_size=1)
    assert not result.ok and result.weights.size == 0
