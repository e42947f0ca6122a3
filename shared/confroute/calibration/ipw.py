"""Inverse-propensity weights for outcome labels that only some queries get.

Only escalated queries get a cloud answer (propensity 1), plus a random ``shadow_rate`` share of the
confident ones sent to the cloud anyway (propensity ``shadow_rate``); the rest stay unlabelled.
Weighting each labelled record by 1 / propensity makes the labelled set stand for all traffic again.
When few shadow labels carry large weights, estimates get noisy: the Kish effective sample size says
how many unweighted records they are worth, and :func:`weighted_labels` refuses to go on below a minimum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from confroute.calibration._checks import (
    FloatArray,
    binary,
    finite_1d,
    fraction,
    nonnegative_weights,
    same_length,
)
from confroute.errors import InvalidInput


def label_propensity(escalated: npt.ArrayLike, shadow_rate: float) -> FloatArray:
    """Chance that each record gets a cloud label: 1 if the router escalated it, else ``shadow_rate``."""
    routed = binary(escalated, "escalated")
    rate = fraction(shadow_rate, "shadow_rate", open_low=True)
    return np.where(routed, 1.0, rate)


def inverse_propensity_weights(propensity: npt.ArrayLike) -> FloatArray:
    """Weights 1 / propensity of labelled records; propensities must lie in (0, 1], so weights >= 1."""
    p = finite_1d(propensity, "propensity")
    if p.min() <= 0.0 or p.max() > 1.0:
        raise InvalidInput("propensity must lie in (0, 1]", field="propensity")
    return 1.0 / p


def effective_sample_size(weights: npt.ArrayLike) -> float:
    """Kish effective sample size (sum w)^2 / sum w^2: N for equal weights, less when they vary."""
    w = nonnegative_weights(weights, "weights")
    return float(w.sum() ** 2 / np.dot(w, w))


@dataclass(frozen=True, eq=False)
class WeightedLabels:
    """Labelled records and their weights, or the reason they are too few to recalibrate on.

    ``indices`` point into the log; ``weights`` are aligned with them. ``ok`` is False, with ``reason``
    set, when the effective sample size is below the minimum asked for.
    """

    indices: npt.NDArray[np.intp]
    weights: FloatArray
    effective_size: float
    ok: bool
    reason: str = ""


def weighted_labels(
    propensity: npt.ArrayLike, labelled: npt.ArrayLike, min_effective_size: float = 100.0
) -> WeightedLabels:
    """Inverse-propensity weights of the labelled records, refused when their Kish ESS is too small.

    ``propensity`` is the logged chance of being labelled, per record (see :func:`label_propensity`);
    ``labelled`` marks the records that got a label.
    """
    mask = binary(labelled, "labelled")
    p = finite_1d(propensity, "propensity")
    same_length(propensity=p, labelled=mask)
    indices = np.flatnonzero(mask)
    if indices.size == 0:
        empty = np.zeros(0)
        return WeightedLabels(indices, empty, 0.0, ok=False, reason="no labelled records yet")
    weights = inverse_propensity_weights(p[indices])
    size = effective_sample_size(weights)
    if size < min_effective_size:
        reason = (
            f"effective sample size {size:.1f} of {indices.size} labelled records is below the minimum "
            f"{min_effective_size:g}; wait for more labels or raise the shadow rate"
        )
        return WeightedLabels(indices, weights, size, ok=False, reason=reason)
    return WeightedLabels(indices, weights, size, ok=True)
