"""What the cloud sends back: a whole answer, or a stream of token deltas ending in one."""

from __future__ import annotations

from dataclasses import dataclass

from confroute.contract import _checks as check
from confroute.contract.common import ModelRef
from confroute.contract.enums import FINISH_REASON, FinishReason
from confroute.errors import InvalidInput
from confroute.v1 import escalation_pb2


@dataclass(frozen=True)
class Usage:
    """Token counts, as the cloud model's tokenizer counts them."""

    prompt_tokens: int
    completion_tokens: int

    def to_pb(self) -> escalation_pb2.Usage:
        return escalation_pb2.Usage(
            prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens
        )

    @classmethod
    def from_pb(cls, pb: escalation_pb2.Usage, path: str = "usage") -> Usage:
        return cls(
            prompt_tokens=check.count(pb.prompt_tokens, 0, check.join(path, "prompt_tokens")),
            completion_tokens=check.count(pb.completion_tokens, 0, check.join(path, "completion_tokens")),
        )


@dataclass(frozen=True)
class Timings:
    """Where the server's time went, in milliseconds."""

    queue_ms: float
    compute_ms: float
    total_ms: float

    def to_pb(self) -> escalation_pb2.ServerTimings:
        return escalation_pb2.ServerTimings(
            queue_ms=self.queue_ms, compute_ms=self.compute_ms, total_ms=self.total_ms
        )

    @classmethod
    def from_pb(cls, pb: escalation_pb2.ServerTimings, path: str = "timings") -> Timings:
        return cls(
            queue_ms=check.at_least(pb.queue_ms, 0.0, check.join(path, "queue_ms")),
            compute_ms=check.at_least(pb.compute_ms, 0.0, check.join(path, "compute_ms")),
            total_ms=check.at_least(pb.total_ms, 0.0, check.join(path, "total_ms")),
        )


@dataclass(frozen=True)
class EscalationResponse:
    """The cloud's answer with the cost of producing it."""

    text: str
    finish_reason: FinishReason
    model: ModelRef
    usage: Usage
    timings: Timings

    def to_pb(self) -> escalation_pb2.CloudAnswer:
        return escalation_pb2.CloudAnswer(
            text=self.text,
            finish_reason=FINISH_REASON.to_pb(self.finish_reason),
            model=self.model.to_pb(),
            usage=self.usage.to_pb(),
            timings=self.timings.to_pb(),
        )

    @classmethod
    def from_pb(cls, pb: escalation_pb2.CloudAnswer) -> EscalationResponse:
        return cls(
            text=pb.text,
            finish_reason=FINISH_REASON.from_pb(pb.finish_reason, "finish_reason"),
            model=ModelRef.from_pb(pb.model, "model"),
            usage=Usage.from_pb(pb.usage),
            timings=Timings.from_pb(pb.timings),
        )


@dataclass(frozen=True)
class TokenDelta:
    """Text generated since the previous delta of a stream."""

    text: str


StreamEvent = TokenDelta | EscalationResponse


def stream_event_to_pb(event: StreamEvent) -> escalation_pb2.EscalateStreamResponse:
    """A delta, or the final answer (whose text repeats the whole answer)."""
    if isinstance(event, TokenDelta):
        return escalation_pb2.EscalateStreamResponse(delta=escalation_pb2.TokenDelta(text=event.text))
    return escalation_pb2.EscalateStreamResponse(final=event.to_pb())


def stream_event_from_pb(pb: escalation_pb2.EscalateStreamResponse) -> StreamEvent:
    """The event a stream message carries; a message with neither a delta nor a final is rejected."""
    kind = pb.WhichOneof("event")
    if kind == "delta":
        return TokenDelta(text=pb.delta.text)
    if kind == "final":
        return EscalationResponse.from_pb(pb.final)
    raise InvalidInput("a stream message must carry a delta or a final answer", field="event")
