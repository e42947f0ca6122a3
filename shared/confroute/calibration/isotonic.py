"""Isotonic regression: a monotone map from a raw confidence score to P(edge answer is correct).

:func:`fit_isotonic` runs pool-adjacent-violators over the distinct scores (weighted, e.g. by inverse
propensities) and returns a :class:`confroute.contract.CalibrationMap`: knots ``x`` (strictly increasing
scores) and values ``y`` (non-decreasing, in [0, 1]), linearly interpolated between knots and held flat
beyond them. It is the map a policy carries to the edge, read by the same interpolation everywhere.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from confroute.calibration._checks import (
    FloatArray,
    finite_1d,
    nonnegative_weights,
    same_length,
    unit_interval,
)
from confroute.contract.calibration_map import CalibrationMap

IndexArray = npt.NDArray[np.intp]
# Each pass pools every non-increasing run at once; a handful remove most blocks in practice.
_VECTORISED_PASSES = 8


def fit_isotonic(
    scores: npt.ArrayLike, correct: npt.ArrayLike, weights: npt.ArrayLike | None = None
) -> CalibrationMap:
    """Fit P(correct | score) as a non-decreasing function of the score by pool-adjacent-violators.

    ``correct`` holds 0/1 or graded quality in [0, 1]; ``weights`` (>= 0) defaults to ones. Records of
    zero weight are ignored. Equal scores are pooled first, so the map is a function of the score.
    """
    s = finite_1d(scores, "scores")
    y = unit_interval(correct, "correct")
    w = np.ones_like(s) if weights is None else nonnegative_weights(weights, "weights")
    same_length(scores=s, correct=y, weights=w)
    distinct, inverse = np.unique(s, return_inverse=True)
    total_w = np.bincount(inverse, weights=w).astype(np.float64, copy=False)
    total_wy = np.bincount(inverse, weights=w * y).astype(np.float64, copy=False)
    kept = total_w > 0.0
    distinct, total_w, total_wy = distinct[kept], total_w[kept], total_wy[kept]
    means, ends = _pool_adjacent_violators(total_wy, total_w)
    return _knots(distinct, means, ends)


def _pool_adjacent_violators(sums: FloatArray, weights: FloatArray) -> tuple[FloatArray, IndexArray]:
    """Block means (strictly increasing) and the index of each block's last point.

    Weighted L2 isotonic regression pools every pair of neighbours whose means do not increase, in any
    order, so a few vectorised passes pool whole non-increasing runs first; a stack pass (linear in
    what is left) then finishes the job. ``sums`` are weighted sums of the outcome per point.
    """
    ends = np.arange(sums.size, dtype=np.intp)
    for _ in range(_VECTORISED_PASSES):
        means = sums / weights
        starts = np.concatenate(([0], np.flatnonzero(means[1:] > means[:-1]) + 1))
        if starts.size == sums.size:
            break
        sums, weights = np.add.reduceat(sums, starts), np.add.reduceat(weights, starts)
        ends = ends[np.append(starts[1:] - 1, ends.size - 1)]
    return _stack_pool(sums, weights, ends)


def _stack_pool(sums: FloatArray, weights: FloatArray, ends: IndexArray) -> tuple[FloatArray, IndexArray]:
    """Classic one-pass pool-adjacent-violators over blocks given by sums, weights and end indices."""
    block_sum: list[float] = []
    block_weight: list[float] = []
    block_end: list[int] = []
    for total, weight, end in zip(sums.tolist(), weights.tolist(), ends.tolist(), strict=True):
        while block_sum and block_sum[-1] * weight >= total * block_weight[-1]:
            total += block_sum.pop()
            weight += block_weight.pop()
            block_end.pop()
        block_sum.append(total)
        block_weight.append(weight)
        block_end.append(end)
    return np.asarray(block_sum) / np.asarray(block_weight), np.asarray(block_end, dtype=np.intp)


def _knots(distinct: FloatArray, means: FloatArray, ends: IndexArray) -> CalibrationMap:
    """Two knots per block (its lowest and highest score) holding the block mean; one if they coincide."""
    starts = np.concatenate(([0], ends[:-1] + 1))
    x = np.column_stack((distinct[starts], distinct[ends])).ravel()
    y = np.clip(np.repeat(means, 2), 0.0, 1.0)
    keep = np.column_stack((np.ones(starts.size, dtype=bool), ends > starts)).ravel()
    return CalibrationMap(tuple(x[keep].tolist()), tuple(y[keep].tolist()))
