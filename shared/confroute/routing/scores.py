"""The routing scores: what every threshold of a policy is compared with, on the device and in the cloud.

A score estimates P(the edge answer is right): higher is more confident, and a query escalates when its
score is below the threshold of its stage (the convention of ``confroute.calibration``).

* :attr:`Stage.PRE` (after prefill, before decoding), :func:`pre_score`: the TBG probe as it is. A probe
  is a logistic regression trained as a probability, so it is compared with thresholds as it is; the
  policy's calibration map belongs to the post-generation score. With an untrained TBG probe there is no
  score (None) and the query is decided after generation; in mode ``post`` the pre stage reads none.
* :attr:`Stage.POST` (after local generation), :func:`post_score`: :func:`raw_post_score` through the
  policy's calibration map (``confroute.contract.CalibrationMap``).

:func:`stage_score` is the score a policy compares at a stage (what the device routes on);
:func:`logged_scores` the raw scores of a logged record (what the cloud's statistics bin and the
calibration map is fitted on). Both read the signals with the functions below, so they agree.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping

from confroute.contract import CalibrationMap, Policy, RoutingMode
from confroute.errors import InvalidInput
from confroute.routing.signals import LOGPROB_MEAN, PROBE_SLT, PROBE_TBG, finite_signals, optional_signal


class Stage(enum.Enum):
    """When a score is read and a decision taken; the values name the cloud's score histograms."""

    PRE = "pre"  # after prefill, before decoding: only the TBG probe is known
    POST = "post"  # after local generation: every signal is known


def pre_score(signals: Mapping[str, float]) -> float | None:
    """The TBG probe's score in [0, 1], or None when the bundle's TBG probe is untrained (no signal)."""
    score = optional_signal(signals, PROBE_TBG)
    return None if score is None else _clip(score)


def raw_post_score(signals: Mapping[str, float]) -> float:
    """The uncalibrated sequence confidence, in [0, 1]: what the policy's calibration map is fitted on.

    ``exp(logprob_mean)``, the geometric mean probability of the generated tokens (inverse perplexity,
    among the best cheap signals in arXiv 2502.04428); when the SLT probe is trained, the plain average
    of that and ``probe_slt``. Both terms rise with confidence, so the score is monotone in each. An
    empty answer has ``logprob_mean`` 0 and scores 1 on that term (the runtime's convention).
    """
    logprob = optional_signal(signals, LOGPROB_MEAN)
    if logprob is None:
        field = f"signals.{LOGPROB_MEAN}"
        raise InvalidInput(f"{field} is missing: is this a finished generation?", field=field)
    sequence = _clip(math.exp(min(logprob, 0.0)))
    slt = optional_signal(signals, PROBE_SLT)
    return sequence if slt is None else (sequence + _clip(slt)) / 2.0


def post_score(signals: Mapping[str, float], calibration: CalibrationMap) -> float:
    """P(edge answer correct) after generation: :func:`raw_post_score` through the calibration map."""
    return calibration(raw_post_score(signals))


def stage_score(stage: Stage, signals: Mapping[str, float], policy: Policy) -> float | None:
    """The score ``policy`` compares with its threshold at ``stage``; None when there is none to compare."""
    if stage is Stage.POST:
        return post_score(signals, policy.calibration)
    return None if policy.mode is RoutingMode.POST else pre_score(signals)


def logged_scores(signals: Mapping[str, float]) -> dict[str, float]:
    """The raw scores a logged record's signals give, by stage value (``post``, ``pre``), each in [0, 1].

    Non-finite signals count as absent; a score whose signal is absent is left out. ``post`` is
    :func:`raw_post_score` (uncalibrated: the map is fitted on it), ``pre`` is :func:`pre_score`.
    """
    finite = finite_signals(signals)
    found: dict[str, float] = {}
    if LOGPROB_MEAN in finite:
        found[Stage.POST.value] = raw_post_score(finite)
    pre = pre_score(finite)
    if pre is not None:
        found[Stage.PRE.value] = pre
    return found


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))
