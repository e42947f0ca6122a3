"""How well a confidence score separates right from wrong answers, and how calibrated it is.

Conventions: ``confidence``/``scores``/``prob`` are higher when the edge answer is more likely right;
``correct`` holds 0/1 (or booleans). Ties in the score are treated as unordered: AUROC gives tied pairs
half credit (average ranks), and coverage-based metrics take the expectation over random tie-breaking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from confroute.calibration._checks import (
    BoolArray,
    FloatArray,
    binary,
    finite_1d,
    fraction,
    positive_int,
    same_length,
    unit_interval,
)
from confroute.errors import InvalidInput


def auroc(scores: npt.ArrayLike, correct: npt.ArrayLike) -> float:
    """Area under the ROC curve of ``scores`` separating correct (positive) from wrong answers.

    Equal to the probability that a random correct answer outscores a random wrong one, ties counting
    one half (Mann-Whitney U with average ranks). This is the same number as the AUROC of uncertainty
    (= -score) against error. Raises ``InvalidInput`` when ``correct`` holds only one class.
    """
    s = finite_1d(scores, "scores")
    y = binary(correct, "correct")
    same_length(scores=s, correct=y)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise InvalidInput(
            "AUROC needs both correct and wrong examples; correct holds one class", field="correct"
        )
    rank_sum = float(_average_ranks(s)[y].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def aurac(confidence: npt.ArrayLike, correct: npt.ArrayLike) -> float:
    """Area under the rejection-accuracy curve.

    Answers are kept from the most to the least confident; the accuracy of the kept set at coverage
    k/n is averaged over k = 1..n. A perfect ranking scores close to 1; a useless one scores the base
    accuracy. (jlko/semantic_uncertainty approximates the same curve with 20 coverage points in
    [0.1, 1] and a rectangle rule whose widths sum to 0.947, so its numbers run slightly lower.)
    """
    conf = finite_1d(confidence, "confidence")
    y = binary(correct, "correct")
    same_length(confidence=conf, correct=y)
    kept = np.arange(1, conf.size + 1, dtype=np.float64)
    return float(np.mean(_expected_correct_among_most_confident(conf, y, kept) / kept))


def risk_at_coverage(confidence: npt.ArrayLike, correct: npt.ArrayLike, coverage: float) -> float:
    """Error rate among the ``coverage`` share of most confident answers (selective risk).

    This is the error of the answers kept on the edge divided by the share kept; the joint
    P(wrong and kept) that ``threshold_for_risk`` controls equals ``coverage * risk_at_coverage``.
    """
    conf = finite_1d(confidence, "confidence")
    y = binary(correct, "correct")
    same_length(confidence=conf, correct=y)
    share = fraction(coverage, "coverage", open_low=True)
    kept = np.array([share * conf.size])
    return float(1.0 - _expected_correct_among_most_confident(conf, y, kept)[0] / kept[0])


@dataclass(frozen=True, eq=False)
class ReliabilityDiagram:
    """Per-bin statistics of predicted probability against observed accuracy.

    ``edges`` has ``n_bins + 1`` entries on [0, 1]; bin i holds probabilities in [edges[i], edges[i+1])
    (the last bin also holds 1.0). ``confidence`` and ``accuracy`` are NaN for empty bins.
    """

    edges: FloatArray
    counts: npt.NDArray[np.int64]
    confidence: FloatArray
    accuracy: FloatArray

    @property
    def ece(self) -> float:
        """Expected calibration error: count-weighted mean of |accuracy - confidence| over filled bins."""
        filled = self.counts > 0
        share = self.counts[filled] / self.counts.sum()
        return float(np.sum(share * np.abs(self.accuracy[filled] - self.confidence[filled])))


def reliability_diagram(prob: npt.ArrayLike, correct: npt.ArrayLike, n_bins: int = 15) -> ReliabilityDiagram:
    """Bin ``prob`` into ``n_bins`` equal-width bins and compare each bin's mean with its accuracy."""
    p = unit_interval(prob, "prob")
    y = binary(correct, "correct")
    same_length(prob=p, correct=y)
    bins = positive_int(n_bins, "n_bins")
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins).astype(np.int64)
    return ReliabilityDiagram(
        edges=np.linspace(0.0, 1.0, bins + 1),
        counts=counts,
        confidence=_bin_mean(_weighted_counts(index, p, bins), counts),
        accuracy=_bin_mean(_weighted_counts(index, y.astype(np.float64), bins), counts),
    )


def ece(prob: npt.ArrayLike, correct: npt.ArrayLike, n_bins: int = 15) -> float:
    """Expected calibration error with ``n_bins`` equal-width bins (15 by default, as in the brief)."""
    return reliability_diagram(prob, correct, n_bins).ece


def _weighted_counts(index: npt.NDArray[np.int64], weights: FloatArray, bins: int) -> FloatArray:
    return np.bincount(index, weights=weights, minlength=bins).astype(np.float64, copy=False)


def _bin_mean(sums: FloatArray, counts: npt.NDArray[np.int64]) -> FloatArray:
    out = np.full(sums.shape, np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


def _average_ranks(values: FloatArray) -> FloatArray:
    """1-based ranks; tied values share the mean of the ranks they span."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    first_rank = np.cumsum(counts) - counts + 1
    group_rank: FloatArray = first_rank + (counts - 1) / 2.0
    return group_rank[inverse]


def _expected_correct_among_most_confident(conf: FloatArray, y: BoolArray, kept: FloatArray) -> FloatArray:
    """Expected number of correct answers among the ``kept`` most confident, ties broken at random.

    Within a tie group the expected count grows linearly, so the curve is the linear interpolation of
    the cumulative count between tie-group boundaries; ``kept`` may be fractional.
    """
    order = np.argsort(-conf, kind="stable")
    cumulative = np.concatenate(([0.0], np.cumsum(y[order], dtype=np.float64)))
    sorted_conf = conf[order]
    inner = np.flatnonzero(sorted_conf[1:] != sorted_conf[:-1]) + 1
    bounds = np.concatenate(([0], inner, [conf.size]))
    return np.interp(kept, bounds, cumulative[bounds])
