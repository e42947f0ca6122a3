"""What the agent gives back for one query, whichever side answered: the interface the local APIs
(OpenAI-compatible HTTP, CLI) are written against."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, NamedTuple, Protocol

from confroute.engine import SamplingParams

Side = Literal["edge", "cloud"]


@dataclasses.dataclass(frozen=True)
class AgentAnswer:
    """A finished answer with its routing metadata.

    ``escalation_unavailable``: the policy wanted the cloud, which could not answer in time; the text is
    the local answer. ``confidence``/``threshold`` are the numbers the decision compared (None when the
    query never reached a decision, e.g. a privacy veto).
    """

    query_id: str
    text: str
    side: Side
    model: str
    decision: str
    confidence: float | None
    threshold: float | None
    policy_version: str
    escalation_unavailable: bool
    finish_reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    shadow: bool = False

    def routing(self) -> dict[str, Any]:
        """The documented extension field of API responses (``confroute``)."""
        return {
            "query_id": self.query_id, "side": self.side, "decision": self.decision,
            "confidence": self.confidence, "threshold": self.threshold, "policy_version": self.policy_version,
            "escalation_unavailable": self.escalation_unavailable, "shadow": self.shadow,
            "latency_ms": round(self.latency_ms, 2),
        }


class TokenLogprob(NamedTuple):
    """One generated token: the text it released (may be empty while a character is pending) and the
    log-probability of its choice."""

    text: str
    logprob: float


@dataclasses.dataclass(frozen=True)
class TextDelta:
    """Streamed text as it is produced (by the edge model, or relayed from the cloud).

    ``logprobs``: the edge model's tokens that produced ``text`` (empty for the cloud's text, which comes
    without them)."""

    text: str
    side: Side
    logprobs: tuple[TokenLogprob, ...] = ()


class Answerer(Protocol):
    """The agent as the local APIs see it. Errors are ``confroute.errors`` types (InvalidInput -> 400...)."""

    @property
    def model_ids(self) -> Sequence[str]:
        """Model names the API lists (``/v1/models``) and accepts."""
        ...

    def answer(self, messages: Sequence[Mapping[str, str]], params: SamplingParams) -> AgentAnswer: ...

    def stream(self, messages: Sequence[Mapping[str, str]],
               params: SamplingParams) -> Iterator[TextDelta | AgentAnswer]:
        """Text deltas as they come, then exactly one AgentAnswer (its text is the whole answer)."""
        ...
