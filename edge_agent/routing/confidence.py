"""Confidence scores for routing, read from the fused head's named signals (:func:`edge_agent.model.signals`).

A confidence estimates P(the edge answer is right): higher is more confident, and a query escalates
when its confidence is below the mode's threshold (the convention of ``confroute.calibration``).

* Before decoding, :func:`confidence_pre` is the TBG probe (``probe_tbg``) read after prefill. A probe
  is a logistic regression trained as a probability, so it is compared with thresholds as it is; the
  policy's calibration map belongs to the post-generation score and is not applied to it.
  **Fallback**: with an untrained TBG probe nothing honest can be said before decoding, so the function
  returns None and :func:`edge_agent.routing.decide` defers to after generation (``pre`` and ``hybrid``
  then behave as ``post``).
* After generation, :func:`confidence_post` maps :func:`raw_post_score` through the policy's
  calibration map (isotonic knots, linear between them, flat beyond; empty: the raw score is taken as
  calibrated).

Probes are read as "higher = the edge is more likely right". A probe trained on an uncertainty label
(e.g. binarised high semantic entropy) must be written into the bundle negated: sigmoid(-z) = 1 - sigmoid(z).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping

from confroute.contract import CalibrationMap, Policy
from confroute.errors import InvalidInput

PROBE_TBG = "probe_tbg"
PROBE_SLT = "probe_slt"
LOGPROB_MEAN = "logprob_mean"


def confidence_pre(signals: Mapping[str, float], policy: Policy) -> float | None:
    """The TBG probe's score in [0, 1], or None when the bundle's TBG probe is untrained (no signal).

    ``policy`` is taken for symmetry with :func:`confidence_post`: a policy carries no pre-generation
    calibration today (see the module docstring).
    """
    score = _optional(signals, PROBE_TBG)
    return None if score is None else _clip(score)


def raw_post_score(signals: Mapping[str, float]) -> float:
    """The uncalibrated sequence confidence, in [0, 1]: what the policy's calibration map is fitted on.

    ``exp(logprob_mean)``, the geometric mean probability of the generated tokens (inverse perplexity,
    among the best cheap signals in arXiv 2502.04428); when the SLT probe is trained, the plain average
    of that and ``probe_slt``. Both terms rise with confidence, so the score is monotone in each. An
    empty answer has ``logprob_mean`` 0 and scores 1 on that term (the runtime's convention).
    """
    logprob = _optional(signals, LOGPROB_MEAN)
    if logprob is None:
        field = f"signals.{LOGPROB_MEAN}"
        raise InvalidInput(f"{field} is missing: is this a finished generation?", field=field)
    sequence = _clip(math.exp(min(logprob, 0.0)))
    slt = _optional(signals, PROBE_SLT)
    return sequence if slt is None else (sequence + _clip(slt)) / 2.0


def confidence_post(signals: Mapping[str, float], policy: Policy) -> float:
    """P(edge answer correct) after generation: :func:`raw_post_score` through the policy's calibration."""
    return calibrate(raw_post_score(signals), policy.calibration)


def calibrate(raw: float, calibration: CalibrationMap) -> float:
    """``raw`` mapped through the isotonic knots, clipped to [0, 1]; non-decreasing in ``raw``.

    Pure Python on purpose: one score per query does not pay for a numpy array. Matches
    ``confroute.calibration.IsotonicMap`` on the same knots.
    """
    x, y = calibration.x, calibration.y
    if not x:
        return _clip(raw)
    if raw <= x[0]:
        return _clip(y[0])
    if raw >= x[-1]:
        return _clip(y[-1])
    i = bisect_right(x, raw)  # x[i - 1] <= raw < x[i]
    x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
    return _clip(y0 + (y1 - y0) * (raw - x0) / (x1 - x0))


def _optional(signals: Mapping[str, float], name: str) -> float | None:
    """A named signal if present; NaN or infinity is refused rather than routed on."""
    value = signals.get(name)
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        raise InvalidInput(f"signal {name} must be finite, got {value}", field=f"signals.{name}")
    return value


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))
