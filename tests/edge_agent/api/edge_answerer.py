"""The smallest real ``Answerer``: the device's ``EdgeModel`` answering every query locally."""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence

from confroute.engine import Generation, SamplingParams
from edge_agent.answer import AgentAnswer, TextDelta
from edge_agent.model import EdgeModel
from edge_agent.outbox.feedback import FeedbackDesk


class EdgeOnlyAnswerer:
    """One query at a time (the engine is not thread-safe); confidence = exp(mean token log-probability)."""

    def __init__(self, model: EdgeModel) -> None:
        self.model = model
        self._lock = threading.Lock()
        self.feedback: FeedbackDesk | None = None  # set: it takes ratings (POST /v1/feedback)

    @property
    def model_ids(self) -> Sequence[str]:
        return (self.model.model_id,)

    def answer(self, messages: Sequence[Mapping[str, str]], params: SamplingParams) -> AgentAnswer:
        started = time.perf_counter()
        with self._lock:
            generation = self.model.answer(messages, params)
        return self._final(generation, started)

    def stream(self, messages: Sequence[Mapping[str, str]],
               params: SamplingParams) -> Iterator[TextDelta | AgentAnswer]:
        started = time.perf_counter()
        with self._lock:
            run = self.model.start(messages, params)
            for event in run:
                if event.text:
                    yield TextDelta(event.text, "edge")
            generation = run.result
        yield self._final(generation, started)

    def _final(self, generation: Generation, started: float) -> AgentAnswer:
        return AgentAnswer(
            query_id=uuid.uuid4().hex, text=generation.text, side="edge", model=self.model.model_id,
            decision="local", confidence=math.exp(generation.mean_logprob), threshold=None,
            policy_version="builtin", escalation_unavailable=False, finish_reason=generation.finish_reason,
            prompt_tokens=generation.prompt_tokens, completion_tokens=generation.completion_tokens,
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )
