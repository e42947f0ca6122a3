"""The rollout state of one (edge model version, cohort), as stored in each entry of its history stream.

A state names versions, never policy bodies (those live in the versions hash): the **control** version
every device runs unless it is in the **canary** (``canary`` version, run by ``share`` of the cohort's
devices, chosen by :func:`confroute.calibration.canary.in_canary` salted with the canary version).
``pinned``: an operator fixed the control; automatic candidates are refused until unpinned.
``base`` / ``shift``: back-pressure runs the control as ``base`` with every threshold lowered by
``shift`` (fewer escalations); ``shift`` 0 and ``base`` "" when it is not active. ``seq`` counts the
transitions and ``issued_us`` is the latest ``issued_at`` of any version issued for this key, so that
each new version is issued strictly later (devices require that).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from confroute.calibration.canary import in_canary
from confroute.contract.policy import Policy

NO_ENTRY = "0-0"  # the stream position before any entry
_FLOATS = ("share", "shift")
_INTS = ("seq", "issued_us", "at_us")


@dataclass(frozen=True)
class RolloutState:
    """Which versions the devices of one key run; see the module docstring."""

    control: str = ""
    canary: str = ""
    share: float = 0.0
    pinned: bool = False
    base: str = ""
    shift: float = 0.0
    seq: int = 0
    issued_us: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.share) and 0.0 <= self.share <= 1.0):
            raise ValueError(f"share must be in [0, 1], got {self.share}")
        if self.canary and not self.control:
            raise ValueError("a canary needs a control version")

    def version_for(self, device_id: str) -> str:
        """The version this device runs ("" before anything was published)."""
        if self.canary and in_canary(device_id, self.share, salt=self.canary):
            return self.canary
        return self.control

    @property
    def versions(self) -> tuple[str, ...]:
        """The versions this state names: what devices run, and the back-pressure base."""
        return tuple(dict.fromkeys(v for v in (self.control, self.canary, self.base) if v))

    @property
    def origin(self) -> str:
        """The control version before any back-pressure adjustment."""
        return self.base or self.control


@dataclass(frozen=True)
class HistoryEntry:
    """One transition: the state after it, what happened (``action``) and why, when (µs since epoch)."""

    entry_id: str
    state: RolloutState
    action: str
    reason: str
    at_us: int


@dataclass(frozen=True)
class Rollout:
    """A key's current state (``entry_id`` NO_ENTRY: nothing published) and the policies it names."""

    entry_id: str
    state: RolloutState
    policies: Mapping[str, Policy]

    def policy_for(self, device_id: str) -> Policy | None:
        """The policy this device runs (the control's for an empty id), None before any was published."""
        version = self.state.version_for(device_id)
        return self.policies.get(version) if version else None


class TransitionConflict(Exception):
    """The history moved on while a transition was computed; it is recomputed."""


def state_to_fields(state: RolloutState, action: str, reason: str, at_us: int) -> dict[str, str]:
    """The stream entry's fields (all text, so that ``redis-cli XRANGE`` is readable)."""
    values = {spec.name: getattr(state, spec.name) for spec in fields(state)}
    out = {name: _text(value) for name, value in values.items()}
    out.update(action=action, reason=reason, at_us=str(at_us))
    return out


def entry_from_fields(entry_id: bytes, raw: Mapping[bytes, bytes]) -> HistoryEntry:
    """The history entry stored as ``raw``; fields missing from older entries take their defaults."""
    text = {key.decode(): value.decode() for key, value in raw.items()}
    kwargs: dict[str, object] = {}
    for spec in fields(RolloutState):
        if spec.name not in text:
            continue
        value = text[spec.name]
        kwargs[spec.name] = (
            float(value) if spec.name in _FLOATS else int(value) if spec.name in _INTS else
            value == "1" if spec.name == "pinned" else value
        )
    state = RolloutState(**kwargs)  # type: ignore[arg-type]
    return HistoryEntry(entry_id.decode(), state, text.get("action", ""), text.get("reason", ""),
                        int(text.get("at_us", "0")))


def shifted(policy: Policy, shift: float, version: str) -> Policy:
    """``policy`` under another version with every threshold lowered by ``shift`` (floored at 0): a query must
    be less likely right than before to escalate. Lowering all four keeps ``hybrid_low <= hybrid_high``."""
    t = policy.thresholds
    lower = replace(t, pre=_down(t.pre, shift), post=_down(t.post, shift),
                    hybrid_low=_down(t.hybrid_low, shift), hybrid_high=_down(t.hybrid_high, shift))
    return replace(policy, policy_version=version, thresholds=lower)


def derived_version(origin: str, action: str, seq: int) -> str:
    """The label of a re-issue: ``v7`` rolled back at transition 12 is ``v7+rollback.12``."""
    return f"{origin.partition('+')[0]}+{action}.{seq}"


def _down(value: float, shift: float) -> float:
    return max(0.0, value - shift)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)
