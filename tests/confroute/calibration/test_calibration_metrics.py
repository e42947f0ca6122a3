"""Hand-checked examples and properties of the discrimination and calibration metrics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confroute.calibration import aurac, auroc, ece, reliability_diagram, risk_at_coverage

LABELS = [0, 0, 1, 1]


def test_auroc_of_a_perfect_ranking_is_one() -> None:
    assert auroc([0.1, 0.2, 0.8, 0.9], LABELS) == 1.0


def test_auroc_of_an_inverted_ranking_is_zero() -> None:
    assert auroc([0.9, 0.8, 0.2, 0.1], LABELS) == 0.0


def test_auroc_of_constant_scores_is_one_half() -> None:
    assert auroc([0.5, 0.5, 0.5, 0.5], LABELS) == 0.5


def test_auroc_gives_tied_pairs_half_credit() -> None:
    # Pairs (wrong, correct): (0.1, 0.5) win, (0.1, 0.9) win, (0.5, 0.5) tie, (0.5, 0.9) win -> 3.5 / 4.
    assert auroc([0.1, 0.5, 0.5, 0.9], LABELS) == pytest.approx(0.875)


def test_auroc_of_a_random_score_is_near_one_half() -> None:
    rng = np.random.default_rng(7)
    assert auroc(rng.random(20_000), rng.random(20_000) < 0.5) == pytest.approx(0.5, abs=0.02)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=60, unique=True), st.data())
def test_auroc_of_a_score_and_its_negation_sum_to_one(scores: list[float], data: st.DataObject) -> None:
    labels = data.draw(st.lists(st.booleans(), min_size=len(scores), max_size=len(scores)))
    if len(set(labels)) < 2:
        labels[0], labels[1] = True, False
    s = np.array(scores)
    assert auroc(s, labels) + auroc(-s, labels) == pytest.approx(1.0, abs=1e-12)


def test_aurac_of_a_perfect_ranking_averages_the_kept_accuracy() -> None:
    # Kept accuracy at coverage 1/4..4/4: 1, 1, 2/3, 1/2.
    assert aurac([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]) == pytest.approx((1 + 1 + 2 / 3 + 1 / 2) / 4)


def test_aurac_of_constant_confidence_is_the_base_accuracy() -> None:
    assert aurac([0.5] * 4, [1, 0, 1, 1]) == pytest.approx(0.75)


def test_risk_at_coverage_counts_errors_among_the_most_confident() -> None:
    confidence = [0.9, 0.8, 0.7, 0.2, 0.1]
    correct = [1, 1, 0, 1, 0]
    assert risk_at_coverage(confidence, correct, 0.4) == 0.0
    assert risk_at_coverage(confidence, correct, 0.6) == pytest.approx(1 / 3)
    assert risk_at_coverage(confidence, correct, 1.0) == pytest.approx(2 / 5)


def test_risk_at_coverage_breaks_ties_in_expectation() -> None:
    assert risk_at_coverage([0.5, 0.5], [1, 0], 0.5) == pytest.approx(0.5)


def test_ece_of_perfectly_calibrated_bins_is_zero() -> None:
    prob = [0.2] * 10 + [0.8] * 10
    correct = [1] * 2 + [0] * 8 + [1] * 8 + [0] * 2
    assert ece(prob, correct) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_overconfident_answers_is_the_gap() -> None:
    assert ece([0.9] * 4, [1, 0, 1, 0]) == pytest.approx(0.4)


def test_reliability_diagram_reports_counts_and_leaves_empty_bins_nan() -> None:
    diagram = reliability_diagram([0.05, 0.15, 1.0, 0.95], [0, 1, 1, 1], n_bins=10)
    assert diagram.edges.tolist() == pytest.approx(np.linspace(0, 1, 11).tolist())
    assert diagram.counts.tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert diagram.confidence[9] == pytest.approx(0.975)
    assert diagram.accuracy.tolist()[:2] == [0.0, 1.0]
    assert np.isnan(diagram.accuracy[5])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=80))
def test_ece_lies_between_zero_and_one(pairs: list[tuple[float, bool]]) -> None:
    prob, correct = zip(*pairs, strict=True)
    assert 0.0 <= ece(prob, correct) <= 1.0
