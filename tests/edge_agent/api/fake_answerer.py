"""A deterministic ``Answerer`` for the API tests, steered by keywords in the last user message.

* the answer is ``You said: <message>``, streamed word by word (an edge word: one token of log-probability -0.25);
* ``hard`` -> the cloud answers (confidence 0.2), otherwise the edge (confidence 0.9);
* ``offline`` -> the edge answers, flagged "escalation wanted but unavailable";
* ``secret`` -> a privacy veto: the edge answers with no confidence (no decision was made);
* ``raise:NAME`` -> raises that error before any text (``bug`` raises a ValueError: a 500);
* ``midway:NAME`` -> streams the first word, then raises;
* ``slow`` -> streams one word every 20 ms.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence

from confroute.engine import SamplingParams
from confroute.errors import DeadlineExceeded, InvalidInput, Overloaded, PromptTooLong, RuntimeFailure, Unavailable
from edge_agent.answer import AgentAnswer, TextDelta, TokenLogprob

MODEL_IDS = ("confroute-edge", "confroute-auto")
POLICY_VERSION = "policy-7"


def make_error(name: str) -> Exception:
    errors: dict[str, Exception] = {
        "InvalidInput": InvalidInput("the question is malformed", field="messages"),
        "PromptTooLong": PromptTooLong(3000, 256, 2048),
        "Overloaded": Overloaded("the model is busy"),
        "Unavailable": Unavailable("the model runtime is down"),
        "DeadlineExceeded": DeadlineExceeded("ran out of time"),
        "RuntimeFailure": RuntimeFailure("onnxruntime failed"),
        "bug": ValueError("a bug"),
    }
    return errors[name]


class FakeAnswerer:
    """Records every call (messages, params) in ``calls``."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[dict[str, str]], SamplingParams]] = []
        self.closed_streams = 0
        self._lock = threading.Lock()
        self._count = 0

    @property
    def model_ids(self) -> Sequence[str]:
        return MODEL_IDS

    def answer(self, messages: Sequence[Mapping[str, str]], params: SamplingParams) -> AgentAnswer:
        question = self._begin(messages, params)
        self._maybe_raise(question, "raise:")
        return self._final(question)

    def stream(self, messages: Sequence[Mapping[str, str]],
               params: SamplingParams) -> Iterator[TextDelta | AgentAnswer]:
        return self._stream(self._begin(messages, params))

    def _stream(self, question: str) -> Iterator[TextDelta | AgentAnswer]:
        self._maybe_raise(question, "raise:")  # on the first next(), as a generator answerer raises
        final = self._final(question)
        try:
            for i, word in enumerate(final.text.split(" ")):
                text = word if i == 0 else " " + word
                yield TextDelta(text, final.side, (TokenLogprob(text, -0.25),) if final.side == "edge" else ())
                if "slow" in question:
                    time.sleep(0.02)
                self._maybe_raise(question, "midway:")
            yield final
        finally:
            self.closed_streams += 1

    def _begin(self, messages: Sequence[Mapping[str, str]], params: SamplingParams) -> str:
        with self._lock:
            self.calls.append(([dict(m) for m in messages], params))
            self._count += 1
        users = [m["content"] for m in messages if m["role"] == "user"]
        return users[-1] if users else ""

    @staticmethod
    def _maybe_raise(question: str, marker: str) -> None:
        for word in question.split():
            if word.startswith(marker):
                raise make_error(word[len(marker):])

    def _final(self, question: str) -> AgentAnswer:
        text = f"You said: {question}"
        cloud = "hard" in question
        vetoed = "secret" in question
        words = text.split(" ")
        return AgentAnswer(
            query_id=f"q-{self._count}", text=text, side="cloud" if cloud else "edge",
            model="cloud-model" if cloud else "edge-model", decision="veto" if vetoed else "post",
            confidence=None if vetoed else (0.2 if cloud else 0.9), threshold=None if vetoed else 0.5,
            policy_version=POLICY_VERSION, escalation_unavailable="offline" in question,
            finish_reason="stop", prompt_tokens=len(question.split()), completion_tokens=len(words),
            latency_ms=12.345,
        )
