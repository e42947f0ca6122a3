"""Calibration from binned sufficient statistics instead of one array entry per record.

A :class:`ScoreHistogram` holds, for equal-width bins of a raw score over [0, 1], how many records fell
in each bin (all traffic) and the inverse-propensity weight of those labelled correct and wrong, plus
the totals that the Kish effective sample size needs. The cloud keeps one up to date as outcomes
arrive, so recalibrating costs O(bins), whatever the length of the log.

The policy a device applies compares a *calibrated* confidence (the raw score through the isotonic
map) with a threshold. :func:`calibrated_bins` gives each bin the calibrated confidence of its centre;
the thresholds below are chosen among those values, and each bin escalates or stays whole. On the
device a record's calibrated value may differ from its bin's by the map's change across one bin width
(1/1000 of the score range by default): the data's resolution, not the method's.

* :func:`fit_histogram_isotonic` - P(correct | raw score) by weighted pool-adjacent-violators.
* :func:`histogram_threshold_for_rate` - target escalation rate (a quantile of all traffic).
* :func:`histogram_threshold_for_tradeoff` - maximise quality - ``lam`` * escalation rate.
* :func:`histogram_threshold_for_risk` - conformal risk control, with the guarantee and assumptions of
  :func:`confroute.calibration.thresholds.threshold_for_risk` (Hoeffding bound with the records' Kish
  effective sample size).
* :func:`histogram_estimates` - escalation rate and risk a threshold gives on this data.

Each refuses (``InvalidInput``) NaN, negative or mismatched inputs; :meth:`ScoreHistogram.refusal`
says, in words, why the labels are too few to recalibrate on, or returns "".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from confroute.calibration._checks import FloatArray, finite_1d, fraction
from confroute.calibration.isotonic import fit_isotonic
from confroute.calibration.thresholds import threshold_for_risk
from confroute.contract.calibration_map import CalibrationMap
from confroute.errors import InvalidInput

# Weights move between labels by float additions in Redis; what rounding leaves below zero is zero.
_ROUNDING = 1e-6


@dataclass(frozen=True, eq=False)
class ScoreHistogram:
    """Per-bin record counts and labelled weights of one raw score, with the labelled totals.

    ``labelled_count`` records carry labels; ``labelled_weight`` and ``labelled_weight_sq`` are the sums
    of their weights and squared weights (1/p and 1/p^2).
    """

    counts: FloatArray
    correct: FloatArray
    wrong: FloatArray
    labelled_count: float
    labelled_weight: float
    labelled_weight_sq: float

    def __post_init__(self) -> None:
        for name in ("counts", "correct", "wrong"):
            array = finite_1d(getattr(self, name), name)
            if array.min() < -_ROUNDING:
                raise InvalidInput(f"{name} must not be negative", field=name)
            object.__setattr__(self, name, np.maximum(array, 0.0))
        if not self.counts.size == self.correct.size == self.wrong.size:
            raise InvalidInput("counts, correct and wrong must have one value per bin", field="counts")
        for name in ("labelled_count", "labelled_weight", "labelled_weight_sq"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value < -_ROUNDING:
                raise InvalidInput(f"{name} must be a finite number >= 0, got {value!r}", field=name)
            object.__setattr__(self, name, max(value, 0.0))

    @property
    def bins(self) -> int:
        return int(self.counts.size)

    @property
    def centres(self) -> FloatArray:
        """The centre of each bin on [0, 1]."""
        centres: FloatArray = (np.arange(self.bins) + 0.5) / self.bins
        return centres

    @property
    def effective_size(self) -> float:
        """Kish effective sample size of the labelled records, (sum w)^2 / sum w^2 (0 without labels)."""
        if self.labelled_weight_sq <= 0.0:
            return 0.0
        return self.labelled_weight**2 / self.labelled_weight_sq

    def refusal(self, min_labelled: int, min_effective_size: float) -> str:
        """Why these labels are too few to recalibrate on, or "" when they are enough."""
        correct, wrong = float(self.correct.sum()), float(self.wrong.sum())
        if self.labelled_count < min_labelled:
            return f"{self.labelled_count:.0f} labelled outcomes, fewer than the minimum {min_labelled}"
        if self.effective_size < min_effective_size:
            return (
                f"effective sample size {self.effective_size:.1f} of {self.labelled_count:.0f} labelled outcomes "
                f"is below the minimum {min_effective_size:g}; wait for more labels or raise the shadow rate"
            )
        if correct <= 0.0 or wrong <= 0.0:
            return "the labelled outcomes are all of one class: P(correct) cannot be fitted"
        return ""


def fit_histogram_isotonic(histogram: ScoreHistogram) -> CalibrationMap:
    """P(edge correct | raw score) fitted on the labelled bins' centres, weighted by 1/p: centred isotonic
    regression (Oron & Flournoy, 2017), one knot at the middle of each pool-adjacent-violators block.

    Plain isotonic regression is a step function: every score of a block gets the same confidence, so
    a threshold can only escalate whole blocks and a target rate is missed by up to a block's share.
    Joining the blocks' middles keeps the map monotone (strictly increasing between the outer knots)
    and the blocks' means, and lets thresholds cut anywhere.
    """
    labelled = histogram.correct + histogram.wrong
    keep = labelled > 0.0
    if not keep.any():
        raise InvalidInput("no labelled outcomes to fit P(correct) on", field="correct")
    share = histogram.correct[keep] / labelled[keep]
    return centred(fit_isotonic(histogram.centres[keep], np.clip(share, 0.0, 1.0), labelled[keep]))


def centred(steps: CalibrationMap) -> CalibrationMap:
    """The map through the middle of each flat block of ``steps`` (one knot per distinct value)."""
    x, y = np.asarray(steps.x), np.asarray(steps.y)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(y) > 0.0) + 1))
    ends = np.append(starts[1:] - 1, y.size - 1)
    return CalibrationMap(tuple(((x[starts] + x[ends]) / 2.0).tolist()), tuple(y[starts].tolist()))


def calibrated_bins(histogram: ScoreHistogram, calibration: CalibrationMap) -> FloatArray:
    """The calibrated confidence of each bin's centre (non-decreasing across bins)."""
    return calibration(histogram.centres)


def histogram_threshold_for_rate(histogram: ScoreHistogram, confidence: npt.ArrayLike, rate: float) -> float:
    """Threshold on ``confidence`` (one value per bin, non-decreasing) escalating the share of all records
    closest to ``rate``; equally close shares resolve towards fewer escalations."""
    conf, counts = _per_bin(histogram, confidence)
    target = fraction(rate, "rate") * float(counts.sum())
    thresholds, escalated = _cuts(conf, counts)
    return float(thresholds[int(np.argmin(np.abs(escalated - target)))])


def histogram_threshold_for_tradeoff(histogram: ScoreHistogram, confidence: npt.ArrayLike, lam: float) -> float:
    """Threshold maximising expected quality minus ``lam`` times the escalation rate.

    The cloud answer is taken as correct (it is the judge's reference), so escalating a bin gains its
    records times P(edge wrong) = 1 - ``confidence``. Ties resolve towards fewer escalations.
    """
    conf, counts = _per_bin(histogram, confidence)
    price = float(lam)
    if not math.isfinite(price) or price < 0.0:
        raise InvalidInput(f"lam must be a finite number >= 0, got {lam!r}", field="lam")
    thresholds, escalated = _cuts(conf, counts)
    gains = _cumulative_below(conf, counts * (1.0 - conf), thresholds)
    objective = gains - price * escalated
    return float(thresholds[int(np.flatnonzero(objective >= objective.max() - 1e-9)[0])])


def histogram_threshold_for_risk(
    histogram: ScoreHistogram, confidence: npt.ArrayLike, alpha: float, delta: float
) -> float:
    """Fewest escalations with P(edge wrong and not escalated) <= ``alpha`` at confidence 1 - ``delta``.

    Conformal risk control by Learn-then-Test over the labelled bins (see ``threshold_for_risk`` for the
    guarantee): risk estimated with inverse-propensity weights, bounded by Hoeffding with the labelled
    records' Kish effective sample size. Assumes exchangeable traffic, unbiased labels and logged
    propensities that are the true chances of being labelled.
    """
    conf, _ = _per_bin(histogram, confidence)
    keep_c, keep_w = histogram.correct > 0.0, histogram.wrong > 0.0
    scores = np.concatenate((conf[keep_c], conf[keep_w]))
    correct = np.concatenate((np.ones(int(keep_c.sum())), np.zeros(int(keep_w.sum()))))
    weights = np.concatenate((histogram.correct[keep_c], histogram.wrong[keep_w]))
    if scores.size == 0:
        raise InvalidInput("no labelled outcomes to control the risk with", field="correct")
    size = histogram.effective_size
    return threshold_for_risk(scores, correct, alpha, delta, weights=weights, effective_size=size or None)


@dataclass(frozen=True)
class Estimates:
    """What a threshold does on this data: share of all records escalated, and the weighted share of
    labelled records left on the edge and wrong (the risk)."""

    escalation_rate: float
    risk: float


def histogram_estimates(histogram: ScoreHistogram, confidence: npt.ArrayLike, threshold: float) -> Estimates:
    """:class:`Estimates` of escalating the bins whose ``confidence`` is below ``threshold``."""
    conf, counts = _per_bin(histogram, confidence)
    kept = conf >= float(threshold)
    total = float(counts.sum())
    labelled = float((histogram.correct + histogram.wrong).sum())
    return Estimates(
        escalation_rate=float(counts[~kept].sum()) / total if total > 0 else 0.0,
        risk=float(histogram.wrong[kept].sum()) / labelled if labelled > 0 else 0.0,
    )


def _per_bin(histogram: ScoreHistogram, confidence: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    conf = finite_1d(confidence, "confidence")
    if conf.size != histogram.bins:
        raise InvalidInput(f"confidence has {conf.size} values for {histogram.bins} bins", field="confidence")
    if np.any(np.diff(conf) < 0.0):
        raise InvalidInput("confidence must be non-decreasing across bins", field="confidence")
    if histogram.counts.sum() <= 0.0:
        raise InvalidInput("the histogram holds no records", field="counts")
    return conf, histogram.counts


def _cuts(conf: FloatArray, counts: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Every achievable threshold (each distinct confidence of a non-empty bin, then one above all) and
    how many records each escalates (those strictly below it)."""
    values = np.unique(conf[counts > 0.0])
    thresholds = np.append(values, np.nextafter(values[-1], np.inf))
    return thresholds, _cumulative_below(conf, counts, thresholds)


def _cumulative_below(conf: FloatArray, amounts: FloatArray, thresholds: FloatArray) -> FloatArray:
    """For each threshold, the sum of ``amounts`` over bins whose confidence is below it."""
    cumulative = np.concatenate(([0.0], np.cumsum(amounts)))
    below: FloatArray = cumulative[np.searchsorted(conf, thresholds, side="left")]
    return below
