"""Time to first token of local answers in the default routing mode, through the agent as a device answers.

An in-process :class:`EdgeAgent` on the bundle as shipped (its router probe installed) under the built-in
policy (``confroute.routing.default_policy``: ``pre``, threshold 0.5). No cloud is configured, so this measures
only what a device answers itself: queries the policy keeps (decision ``local``) stream from their first
token; the escalated ones are counted but not timed.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from confroute.contract import ModelRef
from confroute.engine import SamplingParams
from edge_agent.answer import AgentAnswer, TextDelta
from edge_agent.cloud import PolicyKeeper
from edge_agent.core import AgentIdentity, EdgeAgent
from edge_agent.model import EdgeModel
from edge_agent.outbox import OutcomeQueue, QueueConfig


@dataclasses.dataclass(frozen=True)
class LocalTtft:
    mode: str
    threshold: float
    ttft_ms: list[float]  # the local answers' (decision local) times to their first text
    escalated: int

    def p50_ms(self) -> float | None:
        return round(statistics.median(self.ttft_ms), 1) if self.ttft_ms else None


def local_ttft(bundle: Path, chats: Sequence[Sequence[Mapping[str, str]]], max_new_tokens: int) -> LocalTtft:
    model = EdgeModel(bundle)
    keeper = PolicyKeeper(ModelRef(model.model_id, model.version), "bench")
    params = SamplingParams(max_new_tokens=max_new_tokens)
    times: list[float] = []
    escalated = 0
    with tempfile.TemporaryDirectory(prefix="fleet-learning-ttft-") as folder, \
            OutcomeQueue(QueueConfig(Path(folder) / "outbox.db")) as queue:
        agent = EdgeAgent(model, keeper, queue, AgentIdentity("bench-device", "bench"))
        try:
            for chat in chats:
                first, answer = _first_text_ms(agent, chat, params)
                if answer.side == "edge" and answer.decision == "local" and first is not None:
                    times.append(first)
                else:
                    escalated += 1
        finally:
            agent.close()
            model.close()
    policy = keeper.current
    return LocalTtft(policy.mode.value, float(policy.thresholds.pre), times, escalated)


def _first_text_ms(agent: EdgeAgent, chat: Sequence[Mapping[str, str]],
                   params: SamplingParams) -> tuple[float | None, AgentAnswer]:
    started = time.perf_counter()
    first: float | None = None
    for event in agent.stream(chat, params):
        if isinstance(event, TextDelta) and event.text and first is None:
            first = (time.perf_counter() - started) * 1000.0
        if isinstance(event, AgentAnswer):
            return first, event
    raise AssertionError("the agent's stream ended without an answer")
