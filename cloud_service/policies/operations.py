"""The rollout transitions: publish, publish a canary candidate, promote, roll back, pin, unpin, and the
back-pressure threshold shift. Each computes the next :class:`~cloud_service.policies.state.RolloutState`
from the current one and commits it with compare-and-set (recomputed on a conflict).

Devices accept a policy only if it was issued after the one they hold, so going *back* to earlier
content (rollback, pin, the end of back-pressure) re-issues that content under a derived version
(``v7+rollback.12``) with a new ``issued_at`` and signature, rather than re-serving the old bytes.

The function the recalibration worker calls::

    result = await publish_candidate(store, policy, canary_share=0.1)

``policy`` is the unsigned candidate (its ``issued_at``, ``signature`` and ``key_id`` are replaced when
issued); ``canary_share`` in [0, 1] is the share of the cohort's devices that run it first (0 or 1, or
no control yet: it becomes the control at once). The result says what happened (``role``: "control",
"canary", "unchanged" or "refused" while an operator pin holds, with the reason). Later, with the
labelled outcomes of both arms, ``await judge_canary(store, version, cohort, canary_arm, control_arm)``
promotes the canary or rolls it back (or waits) by :func:`confroute.calibration.canary.decide_canary`.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Literal, Protocol

from cloud_service.policies.state import (
    HistoryEntry,
    Rollout,
    RolloutState,
    TransitionConflict,
    derived_version,
    shifted,
)
from confroute.calibration.canary import ArmQuality, CanaryDecision, CanaryRule, CanaryVerdict, decide_canary
from confroute.contract.policy import Policy
from confroute.errors import InvalidPolicy, Unavailable

MAX_ATTEMPTS = 8
Role = Literal["control", "canary", "unchanged", "refused"]
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
DEFAULT_CANARY_RULE = CanaryRule()


class RolloutStore(Protocol):
    """What the transitions need from a store (RedisPolicyStore)."""

    async def rollout(self, edge_model_version: str, cohort: str) -> Rollout: ...

    async def version(self, edge_model_version: str, cohort: str, version: str) -> Policy | None: ...

    async def history(self, edge_model_version: str, cohort: str, count: int = 20) -> list[HistoryEntry]: ...

    def issue(self, policy: Policy, state: RolloutState) -> Policy: ...

    async def commit(self, edge_model_version: str, cohort: str, base: Rollout, state: RolloutState,
                     new_policies: tuple[Policy, ...], action: str, reason: str) -> None: ...


@dataclass(frozen=True)
class Step:
    """A computed transition: the next state, the versions it issues, and the history entry's words."""

    state: RolloutState
    new_policies: tuple[Policy, ...]
    action: str
    reason: str


@dataclass(frozen=True)
class Published:
    """What :func:`publish_candidate` did with a candidate."""

    version: str
    role: Role
    reason: str = ""


Plan = Callable[[Rollout], Awaitable[Step | None]]


async def transition(store: RolloutStore, edge_model_version: str, cohort: str, plan: Plan) -> Step | None:
    """Computes ``plan`` on the current rollout and commits it; None when the plan says nothing changes."""
    for _ in range(MAX_ATTEMPTS):
        rollout = await store.rollout(edge_model_version, cohort)
        step = await plan(rollout)
        if step is None:
            return None
        try:
            await store.commit(edge_model_version, cohort, rollout, step.state, step.new_policies, step.action,
                               step.reason)
        except TransitionConflict:
            continue
        return step
    raise Unavailable(f"the rollout of {edge_model_version}/{cohort} kept changing; try again")


async def publish(store: RolloutStore, policy: Policy, reason: str = "published") -> None:
    """Makes ``policy`` the control of its key for every device, ending any canary. Publishing the control's
    version with the same content changes nothing; an older stored version with the same content is
    re-issued; a stored version with other content, or a pinned key, is refused (InvalidPolicy)."""

    async def plan(rollout: Rollout) -> Step | None:
        state = rollout.state
        _refuse_when_pinned(state)
        content = await _stored_content(store, policy, rollout)
        if content == "current" and not state.canary and not state.base:
            return None
        version = policy.policy_version if content == "new" else derived_version(policy.policy_version, "publish",
                                                                                 state.seq + 1)
        issued = store.issue(replace(policy, policy_version=version), state)
        return Step(_as_control(state, version), (issued,), "publish", reason)

    await transition(store, policy.edge_model.version, policy.cohort, plan)


async def publish_candidate(store: RolloutStore, policy: Policy, canary_share: float,
                            reason: str = "recalibrated") -> Published:
    """Publishes a new candidate: to ``canary_share`` of the devices first, or to all (see the module docstring)."""
    if not (math.isfinite(canary_share) and 0.0 <= canary_share <= 1.0):
        raise InvalidPolicy(f"canary_share must be in [0, 1], got {canary_share}", field="canary_share")
    outcome: list[Published] = []

    async def plan(rollout: Rollout) -> Step | None:
        state = rollout.state
        outcome.clear()
        if state.pinned:
            outcome.append(Published(policy.policy_version, "refused", f"pinned to {state.control}"))
            return None
        if await _stored_content(store, policy, rollout) != "new":
            outcome.append(Published(policy.policy_version, "unchanged", "version already stored"))
            return None
        issued = store.issue(policy, state)
        if not state.control or canary_share in (0.0, 1.0):
            outcome.append(Published(issued.policy_version, "control", reason))
            return Step(_as_control(state, issued.policy_version), (issued,), "publish", reason)
        outcome.append(Published(issued.policy_version, "canary", reason))
        next_state = replace(state, canary=issued.policy_version, share=canary_share)
        why = f"{reason}; canary on {canary_share:.0%} of devices" + (f", replacing {state.canary}"
                                                                        if state.canary else "")
        return Step(next_state, (issued,), "canary", why)

    await transition(store, policy.edge_model.version, policy.cohort, plan)
    return outcome[0]


async def promote(store: RolloutStore, edge_model_version: str, cohort: str, reason: str = "operator") -> str:
    """The canary becomes the control for every device; returns its version. InvalidPolicy if none runs."""

    async def plan(rollout: Rollout) -> Step:
        state = rollout.state
        if not state.canary:
            raise InvalidPolicy(f"no canary runs for {edge_model_version}/{cohort}", field="canary")
        return Step(_as_control(state, state.canary), (), "promote", reason)

    return _control(await transition(store, edge_model_version, cohort, plan))


async def rollback(store: RolloutStore, edge_model_version: str, cohort: str, reason: str = "operator") -> str:
    """Ends the canary (its devices go back to the control's content), or without a canary goes back to the
    previous control; returns the version devices now run. InvalidPolicy if there is nothing to go back to."""

    async def plan(rollout: Rollout) -> Step:
        state = rollout.state
        if state.canary:
            target = rollout.policies[state.control]
        else:
            target = await _previous_control(store, edge_model_version, cohort, state)
        return _reissue(store, state, target, "rollback", reason)

    return _control(await transition(store, edge_model_version, cohort, plan))


async def pin(store: RolloutStore, edge_model_version: str, cohort: str, version: str,
              reason: str = "operator") -> str:
    """Every device runs ``version`` (re-issued unless it is already the sole control) and candidates are
    refused until :func:`unpin`; returns the version devices now run."""

    async def plan(rollout: Rollout) -> Step:
        state = rollout.state
        if version == state.control and not state.canary and not state.base:
            return Step(replace(state, pinned=True), (), "pin", reason)
        target = await store.version(edge_model_version, cohort, version)
        if target is None:
            raise InvalidPolicy(f"no version {version!r} is stored for {edge_model_version}/{cohort}",
                                field="policy_version")
        step = _reissue(store, state, target, "pin", reason)
        return replace(step, state=replace(step.state, pinned=True))

    return _control(await transition(store, edge_model_version, cohort, plan))


async def unpin(store: RolloutStore, edge_model_version: str, cohort: str, reason: str = "operator") -> None:
    """Candidates are accepted again."""

    async def plan(rollout: Rollout) -> Step | None:
        return Step(replace(rollout.state, pinned=False), (), "unpin", reason) if rollout.state.pinned else None

    await transition(store, edge_model_version, cohort, plan)


async def shift_thresholds(store: RolloutStore, edge_model_version: str, cohort: str, shift: float,
                           reason: str) -> str | None:
    """Runs the control with every threshold lowered by ``shift`` (back-pressure), or, with ``shift`` 0,
    restores the unshifted control; returns the new control version, None when nothing changed or nothing
    was published. The canary, if any, is not adjusted."""
    if not (math.isfinite(shift) and shift >= 0.0):
        raise InvalidPolicy(f"shift must be >= 0, got {shift}", field="shift")

    async def plan(rollout: Rollout) -> Step | None:
        state = rollout.state
        if not state.control or math.isclose(shift, state.shift, abs_tol=1e-9):
            return None
        origin = rollout.policies[state.origin]
        if shift == 0.0:
            return _reissue(store, state, origin, "restore", reason)
        adjusted = store.issue(shifted(origin, shift, derived_version(origin.policy_version, "bp", state.seq + 1)),
                               state)
        next_state = replace(state, control=adjusted.policy_version, base=state.origin, shift=shift)
        return Step(next_state, (adjusted,), "backpressure", reason)

    step = await transition(store, edge_model_version, cohort, plan)
    return None if step is None else step.state.control


def _control(step: Step | None) -> str:
    if step is None:  # these plans always return a step
        raise RuntimeError("a rollout plan returned no step")
    return step.state.control


def _as_control(state: RolloutState, version: str) -> RolloutState:
    return replace(state, control=version, canary="", share=0.0, base="", shift=0.0)


def _reissue(store: RolloutStore, state: RolloutState, target: Policy, action: str, reason: str) -> Step:
    issued = store.issue(replace(target, policy_version=derived_version(target.policy_version, action,
                                                                        state.seq + 1)), state)
    return Step(_as_control(state, issued.policy_version), (issued,), action,
                f"{reason}; content of {target.policy_version}")


def _refuse_when_pinned(state: RolloutState) -> None:
    if state.pinned:
        raise InvalidPolicy(f"the key is pinned to {state.control}; unpin it first", field="pinned")


async def _stored_content(store: RolloutStore, policy: Policy, rollout: Rollout) -> str:
    """"new" (version not stored), "current" (it is the control, same content) or "stored" (same content);
    InvalidPolicy when the version is stored with other content."""
    stored = rollout.policies.get(policy.policy_version) or await store.version(
        policy.edge_model.version, policy.cohort, policy.policy_version)
    if stored is None:
        return "new"
    if _content(stored) != _content(policy):
        raise InvalidPolicy(
            f"policy version {policy.policy_version!r} is already stored for edge model "
            f"{policy.edge_model.version!r}, cohort {policy.cohort!r}, with other content; "
            "publish changes under a new version",
            field="policy_version",
        )
    return "current" if policy.policy_version == rollout.state.control else "stored"


def _content(policy: Policy) -> Policy:
    return replace(policy, issued_at=_EPOCH, signature=b"", key_id="")


async def _previous_control(store: RolloutStore, edge_model_version: str, cohort: str,
                            state: RolloutState) -> Policy:
    for entry in await store.history(edge_model_version, cohort, 1000):
        origin = entry.state.origin
        if origin and origin.partition("+")[0] != state.origin.partition("+")[0]:
            found = await store.version(edge_model_version, cohort, origin)
            if found is not None:
                return found
    raise InvalidPolicy(f"no earlier control to roll back to for {edge_model_version}/{cohort}", field="history")



async def judge_canary(store: RolloutStore, edge_model_version: str, cohort: str, canary: ArmQuality,
                       control: ArmQuality, rule: CanaryRule = DEFAULT_CANARY_RULE) -> CanaryDecision:
    """Decides the running canary from its arms' labelled outcomes (:func:`decide_canary`) and applies the
    verdict: promote, roll back, or nothing (wait). Outcomes carry the ``policy_version`` they were routed
    with, so the caller splits them into the canary's (``rollout.state.canary``) and the control's."""
    decision = decide_canary(canary, control, rule)
    if decision.verdict is CanaryVerdict.PROMOTE:
        await promote(store, edge_model_version, cohort, reason=f"automatic: {decision.reason}")
    elif decision.verdict is CanaryVerdict.ROLLBACK:
        await rollback(store, edge_model_version, cohort, reason=f"automatic: {decision.reason}")
    return decision
