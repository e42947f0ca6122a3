"""The routing decision: a pure function of (signals or score, policy, a random draw, the privacy veto).

The policy's mode says how a query is decided, in up to two stages. At :attr:`Stage.PRE` (after
prefill, before decoding), on the TBG score (:func:`confroute.routing.stage_score`):

* ``pre``: escalate now when the TBG confidence is below ``thresholds.pre``, else answer locally;
* ``post``: always :attr:`Action.GENERATE` (generate locally, then decide again);
* ``hybrid``: escalate now below ``hybrid_low``, answer locally at or above ``hybrid_high``, and
  :attr:`Action.GENERATE` in the uncertain band ``[hybrid_low, hybrid_high)``.

Without a trained TBG probe (no pre confidence) every mode returns :attr:`Action.GENERATE`.
At :attr:`Stage.POST` (after local generation) every mode compares the calibrated sequence confidence with
``thresholds.post``: below it, :attr:`Action.ESCALATE_AFTER_LOCAL` (the local answer travels as the draft).

**Shadow sampling.** A LOCAL decision is also sent to the cloud as a shadow request when
``rng_draw < policy.shadow_rate``; the user still gets the local answer. ``propensity`` is the chance
of the logged action under the policy: 1.0 for escalations, ``shadow_rate`` for a shadow, and
``1 - shadow_rate`` for a local answer without one (``confroute.calibration.ipw`` weights labels by it).

**Privacy veto wins.** With ``veto`` nothing leaves the device: a wanted escalation becomes
:attr:`Action.VETOED` (answered locally, recorded as vetoed) and no shadow is sent.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace

from confroute.contract import Decision as RecordedDecision
from confroute.contract import Policy, RoutingMode
from confroute.routing.scores import Stage, stage_score


class Action(enum.Enum):
    """What the agent does next."""

    LOCAL = "local"  # answer with the edge model (generate it, or keep what was generated)
    ESCALATE = "escalate"  # escalate before decoding anything locally
    GENERATE = "generate"  # undecided: generate locally, then decide again at Stage.POST
    ESCALATE_AFTER_LOCAL = "escalate_after_local"  # the local answer is not good enough: escalate with it
    VETOED = "vetoed"  # escalation wanted but forbidden on the device: answer locally


_ESCALATIONS = frozenset({Action.ESCALATE, Action.ESCALATE_AFTER_LOCAL})


@dataclass(frozen=True)
class Decision:
    """One routing decision and what it was based on.

    ``score`` is the confidence compared (None: no signal at this stage) and ``threshold`` the bound
    that decided; in the hybrid band it is ``hybrid_high``, the score a local answer would have needed.
    """

    action: Action
    mode: RoutingMode
    stage: Stage
    score: float | None
    threshold: float | None
    shadow: bool = False
    propensity: float = 1.0

    @property
    def escalates(self) -> bool:
        """Whether the query goes to the cloud for the answer the user gets."""
        return self.action in _ESCALATIONS

    @property
    def final(self) -> bool:
        """False only for GENERATE, which asks for a second decision after generation."""
        return self.action is not Action.GENERATE

    def recorded(self) -> RecordedDecision:
        """The outcome log's decision (before the escalation is tried: the agent turns a failed one
        into ESCALATION_UNAVAILABLE). GENERATE has none: it is not a decision yet."""
        if self.action is Action.GENERATE:
            raise ValueError("GENERATE is not final: decide again after generation")
        if self.action is Action.VETOED:
            return RecordedDecision.VETOED
        return RecordedDecision.ESCALATED if self.escalates else RecordedDecision.LOCAL


def decide(
    signals: Mapping[str, float], policy: Policy, rng_draw: float, veto: bool = False, *, stage: Stage
) -> Decision:
    """Decides one query at ``stage`` from its signals (what the device calls).

    ``rng_draw`` is uniform in [0, 1) and used only for shadow sampling; ``veto`` is the privacy veto.
    """
    _check_draw(rng_draw)
    return decide_score(stage_score(stage, signals, policy), policy, rng_draw, veto, stage=stage)


def decide_score(
    score: float | None, policy: Policy, rng_draw: float, veto: bool = False, *, stage: Stage
) -> Decision:
    """The same rule on a score already read (:func:`confroute.routing.stage_score` of the signals).

    ``score`` None at :attr:`Stage.PRE` means no pre-generation score (untrained probe, or mode ``post``);
    after generation there is always one.
    """
    _check_draw(rng_draw)
    mode = policy.mode
    if stage is Stage.POST:
        if score is None:
            raise ValueError("a decision after generation needs a score")
        threshold = policy.thresholds.post
        wanted = Action.ESCALATE_AFTER_LOCAL if score < threshold else Action.LOCAL
        return _resolve(Decision(wanted, mode, stage, score, threshold), policy, rng_draw, veto)
    if score is None or mode is RoutingMode.POST:
        return Decision(Action.GENERATE, mode, stage, None, None)
    return _resolve(_pre_gate(mode, score, policy), policy, rng_draw, veto)


def _check_draw(rng_draw: float) -> None:
    if not 0.0 <= rng_draw < 1.0:
        raise ValueError(f"rng_draw must be in [0, 1), got {rng_draw}")


def _pre_gate(mode: RoutingMode, score: float, policy: Policy) -> Decision:
    """The pre-stage action of ``pre`` and ``hybrid`` for a known TBG confidence."""
    thresholds = policy.thresholds
    if mode is RoutingMode.PRE:
        action = Action.ESCALATE if score < thresholds.pre else Action.LOCAL
        return Decision(action, mode, Stage.PRE, score, thresholds.pre)
    if score < thresholds.hybrid_low:
        return Decision(Action.ESCALATE, mode, Stage.PRE, score, thresholds.hybrid_low)
    action = Action.LOCAL if score >= thresholds.hybrid_high else Action.GENERATE
    return Decision(action, mode, Stage.PRE, score, thresholds.hybrid_high)


def _resolve(wanted: Decision, policy: Policy, rng_draw: float, veto: bool) -> Decision:
    """Applies the privacy veto and shadow sampling to the action the thresholds want."""
    if wanted.escalates:
        return replace(wanted, action=Action.VETOED) if veto else wanted
    if wanted.action is not Action.LOCAL or veto:
        return wanted
    rate = policy.shadow_rate
    shadow = rng_draw < rate
    return replace(wanted, shadow=shadow, propensity=rate if shadow else 1.0 - rate)
