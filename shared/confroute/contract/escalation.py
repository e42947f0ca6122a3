"""What the edge sends when it escalates: the prompt, how to generate, and why it escalated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from confroute.contract import _checks as check
from confroute.contract.common import ModelRef
from confroute.contract.enums import CHAT_ROLE, ROUTING_MODE, ChatRole, RoutingMode
from confroute.errors import InvalidInput
from confroute.v1 import escalation_pb2


@dataclass(frozen=True)
class ChatMessage:
    """One turn of the prompt."""

    role: ChatRole
    content: str

    def to_pb(self) -> escalation_pb2.ChatMessage:
        return escalation_pb2.ChatMessage(role=CHAT_ROLE.to_pb(self.role), content=self.content)

    @classmethod
    def from_pb(cls, pb: escalation_pb2.ChatMessage, path: str) -> ChatMessage:
        return cls(role=CHAT_ROLE.from_pb(pb.role, check.join(path, "role")), content=pb.content)


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters: max_tokens >= 1, temperature >= 0 (0 is greedy), top_p in (0, 1]."""

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None  # None: the server picks one
    stop: tuple[str, ...] = ()

    def to_pb(self) -> escalation_pb2.GenerationParams:
        return escalation_pb2.GenerationParams(
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            stop=self.stop,
        )

    @classmethod
    def from_pb(cls, pb: escalation_pb2.GenerationParams, path: str = "params") -> GenerationParams:
        stops = tuple(pb.stop)
        for i, stop in enumerate(stops):
            if not stop:
                name = check.join(path, f"stop[{i}]")
                raise InvalidInput(f"{name} must not be empty", field=name)
        return cls(
            max_tokens=check.count(pb.max_tokens, 1, check.join(path, "max_tokens")),
            temperature=check.at_least(pb.temperature, 0.0, check.join(path, "temperature")),
            top_p=check.unit_interval(pb.top_p, check.join(path, "top_p"), open_low=True),
            seed=pb.seed if pb.HasField("seed") else None,
            stop=stops,
        )


def messages_from_pb(pbs: Sequence[escalation_pb2.ChatMessage]) -> tuple[ChatMessage, ...]:
    """The prompt's messages; at least one must have non-blank content."""
    messages = tuple(ChatMessage.from_pb(pb, f"messages[{i}]") for i, pb in enumerate(pbs))
    if not any(m.content.strip() for m in messages):
        raise InvalidInput("the prompt is empty: messages must hold some content", field="messages")
    return messages


@dataclass(frozen=True)
class EscalationRequest:
    """An escalated query. ``query_id`` is the idempotency key; retries reuse it.

    ``propensity`` is the probability, in (0, 1], with which the logging policy sent this request
    (1.0 for a deterministic escalation); ``shadow`` requests are sampled for evaluation only.
    """

    query_id: str
    device_id: str
    cohort: str
    edge_model: ModelRef
    messages: tuple[ChatMessage, ...]
    params: GenerationParams
    mode: RoutingMode
    signals: Mapping[str, float] = field(default_factory=dict, hash=False)
    draft_answer: str | None = None
    policy_version: str = ""
    shadow: bool = False
    propensity: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "signals", check.frozen_mapping(self.signals))

    def to_pb(self) -> escalation_pb2.Escalation:
        return escalation_pb2.Escalation(
            query_id=self.query_id,
            device_id=self.device_id,
            cohort=self.cohort,
            edge_model=self.edge_model.to_pb(),
            messages=[m.to_pb() for m in self.messages],
            params=self.params.to_pb(),
            mode=ROUTING_MODE.to_pb(self.mode),
            signals=dict(self.signals),
            draft_answer=self.draft_answer,
            policy_version=self.policy_version,
            shadow=self.shadow,
            propensity=self.propensity,
        )

    @classmethod
    def from_pb(cls, pb: escalation_pb2.Escalation) -> EscalationRequest:
        return cls(
            query_id=check.nonempty(pb.query_id, "query_id"),
            device_id=check.nonempty(pb.device_id, "device_id"),
            cohort=pb.cohort,
            edge_model=ModelRef.from_pb(pb.edge_model, "edge_model"),
            messages=messages_from_pb(pb.messages),
            params=GenerationParams.from_pb(pb.params),
            mode=ROUTING_MODE.from_pb(pb.mode, "mode"),
            signals=check.signals(pb.signals, "signals"),
            draft_answer=pb.draft_answer if pb.HasField("draft_answer") else None,
            policy_version=pb.policy_version,
            shadow=pb.shadow,
            propensity=check.unit_interval(pb.propensity, "propensity", open_low=True),
        )
