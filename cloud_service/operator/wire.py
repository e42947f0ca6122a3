"""``confroute.v1.operator`` messages to and from the rollout's own types (protobuf stays at the edges).

Text fields from a caller are bounded here (:func:`key_from_pb`, :func:`text_from_pb`), so a request
names no Redis key longer than :data:`MAX_NAME` characters and records no reason longer than
:data:`MAX_REASON`.
"""

from __future__ import annotations

from collections.abc import Iterable

from cloud_service.policies.state import NO_ENTRY, HistoryEntry, Rollout, RolloutState
from confroute.contract.policy import Policy
from confroute.errors import InvalidInput
from confroute.v1 import operator_pb2

MAX_NAME = 128
MAX_REASON = 256
_REMOTE_ENTRY = "remote"


def key_to_pb(edge_model_version: str, cohort: str) -> operator_pb2.RolloutKey:
    return operator_pb2.RolloutKey(edge_model_version=edge_model_version, cohort=cohort)


def key_from_pb(pb: operator_pb2.RolloutKey) -> tuple[str, str]:
    """(edge model version, cohort): the version non-empty, both at most MAX_NAME printable characters."""
    version = text_from_pb(pb.edge_model_version, "key.edge_model_version", MAX_NAME)
    if not version:
        raise InvalidInput("key.edge_model_version must not be empty", field="key.edge_model_version")
    return version, text_from_pb(pb.cohort, "key.cohort", MAX_NAME)


def text_from_pb(text: str, field: str, limit: int) -> str:
    """``text`` if it has at most ``limit`` characters and none is a control character."""
    if len(text) > limit:
        raise InvalidInput(f"{field} has {len(text)} characters, more than {limit}", field=field)
    if not text.isprintable():
        raise InvalidInput(f"{field} must be printable text", field=field)
    return text


def state_to_pb(state: RolloutState) -> operator_pb2.RolloutState:
    return operator_pb2.RolloutState(control=state.control, canary=state.canary, canary_share=state.share,
                                     pinned=state.pinned, base=state.base, shift=state.shift, seq=state.seq)


def state_from_pb(pb: operator_pb2.RolloutState) -> RolloutState:
    return RolloutState(control=pb.control, canary=pb.canary, share=pb.canary_share, pinned=pb.pinned,
                        base=pb.base, shift=pb.shift, seq=pb.seq)


def rollout_to_pb(rollout: Rollout) -> operator_pb2.GetRolloutResponse:
    """The state and the policies it names."""
    named = (rollout.policies[v] for v in rollout.state.versions if v in rollout.policies)
    return operator_pb2.GetRolloutResponse(state=state_to_pb(rollout.state), policies=[p.to_pb() for p in named])


def rollout_from_pb(pb: operator_pb2.GetRolloutResponse) -> Rollout:
    state = state_from_pb(pb.state)
    policies = {policy.policy_version: policy for policy in (Policy.from_pb(p) for p in pb.policies)}
    return Rollout(_REMOTE_ENTRY if state.control else NO_ENTRY, state, policies)


def history_to_pb(entries: Iterable[HistoryEntry]) -> operator_pb2.GetHistoryResponse:
    response = operator_pb2.GetHistoryResponse()
    for entry in entries:
        pb = response.entries.add(state=state_to_pb(entry.state), action=entry.action, reason=entry.reason)
        pb.at.FromMicroseconds(entry.at_us)
    return response


def history_from_pb(pb: operator_pb2.GetHistoryResponse) -> list[HistoryEntry]:
    return [HistoryEntry("", state_from_pb(entry.state), entry.action, entry.reason, entry.at.ToMicroseconds())
            for entry in pb.entries]
