"""Choosing the escalation threshold from logged confidences and outcomes.

Convention throughout: scores are CONFIDENCE (higher = the edge answer is more likely right), and a
query is escalated to the cloud when ``confidence < threshold``. Only cuts that the data can realise
are returned: the threshold is always one of the observed confidences (escalating everything strictly
below it) or, to escalate everything, the next float above the largest confidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from confroute.calibration._checks import (
    BoolArray,
    FloatArray,
    binary,
    finite_1d,
    fraction,
    nonnegative_weights,
    same_length,
)
from confroute.calibration.ipw import effective_sample_size
from confroute.errors import InvalidInput

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class _Cuts:
    """Every achievable split: threshold ``thresholds[j]`` escalates the ``counts[j]`` least confident."""

    order: npt.NDArray[np.intp]
    counts: IntArray
    thresholds: FloatArray


def _cuts(conf: FloatArray) -> _Cuts:
    order = np.argsort(conf, kind="stable")
    ascending = conf[order]
    starts = np.concatenate(([0], np.flatnonzero(ascending[1:] > ascending[:-1]) + 1)).astype(np.int64)
    above_all = np.nextafter(ascending[-1], np.inf)
    return _Cuts(
        order=order,
        counts=np.append(starts, conf.size),
        thresholds=np.append(ascending[starts], above_all),
    )


def threshold_for_rate(scores: npt.ArrayLike, rate: float) -> float:
    """Threshold at which a ``rate`` share of ``scores`` (confidences) falls below and is escalated.

    This is the ``rate`` quantile of the scores, snapped to the achievable share closest to ``rate``:
    within 1/(2N) of it when scores are distinct; with ties, a tie group escalates whole. Equally close
    shares resolve towards fewer escalations. (RouteLLM's ``calibrate_threshold`` is the same rule for
    an escalation score: quantile 1 - rate.)
    """
    conf = finite_1d(scores, "scores")
    target = fraction(rate, "rate") * conf.size
    cuts = _cuts(conf)
    j = int(np.argmin(np.abs(cuts.counts - target)))
    return float(cuts.thresholds[j])


def threshold_for_tradeoff(
    conf: npt.ArrayLike, correct_edge: npt.ArrayLike, correct_cloud: npt.ArrayLike, lam: float
) -> float:
    """Threshold maximising mean quality minus ``lam`` times the escalation rate.

    ``correct_edge``/``correct_cloud`` hold each model's quality per query (binary or graded);
    ``lam`` >= 0 is the price of one cloud call in quality units. Ties resolve towards fewer escalations.
    """
    c = finite_1d(conf, "conf")
    edge = finite_1d(correct_edge, "correct_edge")
    cloud = finite_1d(correct_cloud, "correct_cloud")
    same_length(conf=c, correct_edge=edge, correct_cloud=cloud)
    price = float(lam)
    if not math.isfinite(price) or price < 0.0:
        raise InvalidInput(f"lam must be a finite number >= 0, got {lam!r}", field="lam")
    cuts = _cuts(c)
    gains = np.concatenate(([0.0], np.cumsum((cloud - edge)[cuts.order])))
    objective = (gains[cuts.counts] - price * cuts.counts) / c.size
    best = np.flatnonzero(objective >= objective.max() - 1e-12)[0]
    return float(cuts.thresholds[best])


def threshold_for_risk(
    conf: npt.ArrayLike,
    edge_correct: npt.ArrayLike,
    alpha: float,
    delta: float,
    weights: npt.ArrayLike | None = None,
    effective_size: float | None = None,
) -> float:
    """Smallest threshold (fewest escalations) whose risk is certified to be at most ``alpha``.

    Risk R(t) = P(edge wrong AND confidence >= t), the chance that a query stays on the edge and is
    answered wrongly. Learn-then-Test with fixed-sequence testing: thresholds are tested from
    "escalate everything" (R = 0, always allowed) downwards, each by an upper confidence bound at
    level 1 - ``delta``, stopping at the first that fails. Since R(t) only grows as t falls, no
    multiplicity correction is needed.

    Guarantee: with probability >= 1 - ``delta`` over the calibration set, a new query has
    P(edge wrong and not escalated) <= ``alpha``. Assumptions: calibration records and future queries
    are exchangeable (i.i.d. from the same traffic), and ``edge_correct`` labels are unbiased (gold
    answers or a judge without systematic error).

    Unweighted, the bound is exact: Clopper-Pearson, i.e. the binomial tail P(Binom(N, alpha) <= losses)
    <= delta. With ``weights`` (inverse propensities of labelled records, see ``confroute.calibration.ipw``)
    it is Hoeffding's bound on the self-normalised weighted risk with the Kish effective sample size:
    exact for weights fixed independently of the outcomes, approximate for estimated propensities.
    When each weight aggregates several records (histogram bins: see ``confroute.calibration.histograms``)
    their own spread is hidden, so the caller passes the records' ``effective_size`` instead.
    """
    c = finite_1d(conf, "conf")
    wrong = ~binary(edge_correct, "edge_correct")
    same_length(conf=c, edge_correct=wrong)
    level = fraction(alpha, "alpha", open_low=True, open_high=True)
    confidence = fraction(delta, "delta", open_low=True, open_high=True)
    w = None if weights is None else nonnegative_weights(weights, "weights")
    if w is not None:
        same_length(conf=c, weights=w)
    size = _effective_size(w, effective_size)
    cuts = _cuts(c)
    certified = _certified(cuts, wrong, level, confidence, w, size)
    certified[-1] = True  # escalating everything leaves no risk at all
    failed = np.flatnonzero(~certified)
    return float(cuts.thresholds[failed[-1] + 1 if failed.size else 0])


def _effective_size(w: FloatArray | None, given: float | None) -> float:
    """The Kish size of ``w``, or ``given`` (which must be a positive number) when set."""
    if given is None:
        return 0.0 if w is None else effective_sample_size(w)
    size = float(given)
    if w is None or not math.isfinite(size) or size <= 0.0:
        message = f"effective_size must be a positive number, given with weights; got {given!r}"
        raise InvalidInput(message, field="effective_size")
    return size


def _certified(
    cuts: _Cuts, wrong: BoolArray, alpha: float, delta: float, w: FloatArray | None, size: float
) -> BoolArray:
    """Per cut: does the level-(1 - delta) upper bound on the risk stay at or below alpha?"""
    if w is None:
        losses = _losses_not_escalated(wrong.astype(np.float64), cuts)
        tail = _binomial_cdf(wrong.size, alpha)[np.rint(losses).astype(np.int64)]
        passed: BoolArray = tail <= delta
        return passed
    risk = _losses_not_escalated(w * wrong, cuts) / w.sum()
    slack = math.sqrt(math.log(1.0 / delta) / (2.0 * size))
    bounded: BoolArray = risk + slack <= alpha
    return bounded


def _losses_not_escalated(loss: FloatArray, cuts: _Cuts) -> FloatArray:
    """Total loss of the records left on the edge at each cut."""
    cumulative = np.concatenate(([0.0], np.cumsum(loss[cuts.order])))
    remaining: FloatArray = cumulative[-1] - cumulative[cuts.counts]
    return remaining


def _binomial_cdf(n: int, p: float) -> FloatArray:
    """P(Binom(n, p) <= x) for x = 0..n, from log-factorials (numpy only; 0 < p < 1)."""
    log_factorial = np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=np.float64)))))
    x = np.arange(n + 1)
    log_choose = log_factorial[n] - log_factorial[x] - log_factorial[n - x]
    log_pmf = log_choose + x * math.log(p) + (n - x) * math.log1p(-p)
    cdf: FloatArray = np.minimum(np.cumsum(np.exp(log_pmf)), 1.0)
    return cdf
