"""The hybrid band: anchored to the post stage's kept error and escalated accuracy, ordered, refuses bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confroute.calibration import ScoreHistogram
from confroute.calibration.band import Band, PostOutcomes, hybrid_band, post_outcomes
from confroute.errors import InvalidInput

BINS = 20


def histogram(correct: np.ndarray, wrong: np.ndarray) -> ScoreHistogram:
    labelled = correct + wrong
    return ScoreHistogram(counts=labelled.copy(), correct=correct, wrong=wrong,
                          labelled_count=float(labelled.sum()), labelled_weight=float(labelled.sum()),
                          labelled_weight_sq=float(labelled.sum()))


def calibrated_traffic() -> ScoreHistogram:
    """100 labels per bin; the edge is right with probability equal to the bin's centre."""
    centres = (np.arange(BINS) + 0.5) / BINS
    return histogram(100.0 * centres, 100.0 * (1.0 - centres))


def test_the_band_brackets_the_scores_the_post_stage_is_unsure_about() -> None:
    pre = calibrated_traffic()

    band = hybrid_band(pre, PostOutcomes(kept_error=0.151, escalated_accuracy=0.201))

    # Bins from 0.70 up err 15% on average (centres 0.725..0.975), from 0.65 up 17.5%; bins below 0.40 are
    # right 20% of the time, below 0.45 22.5%.
    assert (band.low, band.high) == pytest.approx((0.40, 0.70))


def test_every_answer_kept_without_a_draft_errs_no_more_than_the_post_stage_keeps() -> None:
    pre = calibrated_traffic()
    outcomes = PostOutcomes(kept_error=0.1, escalated_accuracy=0.3)

    band = hybrid_band(pre, outcomes)

    above = round(band.high * BINS)
    below = round(band.low * BINS)
    assert pre.wrong[above:].sum() <= outcomes.kept_error * (pre.correct[above:] + pre.wrong[above:]).sum()
    assert pre.correct[:below].sum() <= outcomes.escalated_accuracy * (pre.correct[:below] + pre.wrong[:below]).sum()
    # and the next cut on either side would break its bound
    assert pre.wrong[above - 1:].sum() > outcomes.kept_error * (pre.correct[above - 1:] + pre.wrong[above - 1:]).sum()
    assert pre.correct[:below + 1].sum() > outcomes.escalated_accuracy * (
        pre.correct[:below + 1] + pre.wrong[:below + 1]).sum()


def test_a_probe_that_says_nothing_leaves_every_query_to_the_post_stage() -> None:
    flat = histogram(np.full(BINS, 60.0), np.full(BINS, 40.0))  # 60% right at every score

    band = hybrid_band(flat, PostOutcomes(kept_error=0.2, escalated_accuracy=0.4))

    assert band == Band(low=0.0, high=1.0)


def test_a_few_labels_in_the_outermost_bin_do_not_move_the_band() -> None:
    correct, wrong = np.full(BINS, 60.0), np.full(BINS, 40.0)
    correct[-1], wrong[-1] = 3.0, 0.0  # three perfect answers at the very top: 0.15% of the weight
    correct[0], wrong[0] = 0.0, 3.0

    band = hybrid_band(histogram(correct, wrong), PostOutcomes(kept_error=0.2, escalated_accuracy=0.4))

    assert band == Band(low=0.0, high=1.0)


def test_post_outcomes_read_the_kept_and_escalated_sides() -> None:
    post = histogram(np.array([1.0, 2.0, 6.0, 9.0]), np.array([3.0, 2.0, 2.0, 1.0]))
    conf = np.array([0.2, 0.4, 0.6, 0.8])

    outcomes = post_outcomes(post, conf, 0.5)

    assert outcomes.kept_error == pytest.approx(3.0 / 18.0)
    assert outcomes.escalated_accuracy == pytest.approx(3.0 / 8.0)
    everything = post_outcomes(post, conf, 0.0)
    assert (everything.kept_error, everything.escalated_accuracy) == pytest.approx((8.0 / 26.0, 0.0))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 50), st.floats(0, 50)), min_size=1, max_size=40),
    st.floats(0, 1), st.floats(0, 1), st.floats(0, 0.99),
)
def test_the_band_is_ordered_and_inside_the_unit_interval(
    bins: list[tuple[float, float]], kept_error: float, escalated_accuracy: float, min_share: float
) -> None:
    correct = np.array([c for c, _ in bins])
    wrong = np.array([w for _, w in bins])
    if (correct + wrong).sum() <= 0:
        return

    band = hybrid_band(histogram(correct, wrong), PostOutcomes(kept_error, escalated_accuracy), min_share)

    assert 0.0 <= band.low <= band.high <= 1.0


def test_bad_input_is_refused_by_field() -> None:
    pre = calibrated_traffic()
    with pytest.raises(InvalidInput) as share:
        hybrid_band(pre, PostOutcomes(0.1, 0.1), min_share=1.0)
    assert share.value.field == "min_share"
    with pytest.raises(InvalidInput) as empty:
        hybrid_band(histogram(np.zeros(BINS), np.zeros(BINS)), PostOutcomes(0.1, 0.1))
    assert empty.value.field == "correct"
    with pytest.raises(InvalidInput) as conf:
        post_outcomes(pre, np.zeros(3), 0.5)
    assert conf.value.field == "confidence"
