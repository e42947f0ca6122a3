"""Concurrent queries share the model's decode loop: each keeps its own answer, signals and decision."""

from __future__ import annotations

import threading

import pytest

from confroute.contract import RoutingMode as Mode
from confroute.engine import SamplingParams
from edge_agent.answer import AgentAnswer
from edge_agent.core import EdgeAgent
from tests.edge_agent.core.conftest import MakeAgent

QUESTIONS = [[{"role": "user", "content": q}] for q in
             ("what is two plus two", "name a river", "why is the sky blue", "hello there, who are you?")]
LENGTHS = (12, 20, 7, 16)


def _answers_at_once(agent: EdgeAgent) -> list[AgentAnswer]:
    answers: list[AgentAnswer | None] = [None] * len(QUESTIONS)
    gate = threading.Barrier(len(QUESTIONS))

    def ask(i: int) -> None:
        gate.wait()
        answers[i] = agent.answer(QUESTIONS[i], SamplingParams(max_new_tokens=LENGTHS[i], ignore_eos=True))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(QUESTIONS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


@pytest.mark.parametrize("mode", [Mode.PRE, Mode.POST])
def test_concurrent_queries_decode_together_and_answer_as_if_alone(make_agent: MakeAgent, mode: Mode) -> None:
    serial = make_agent(mode, tbg=0.9, pre=0.5, post=0.01)
    batched = make_agent(mode, tbg=0.9, pre=0.5, post=0.01, batch=4)
    assert (serial.parallel, batched.parallel) == (1, 4)
    alone = [serial.answer(q, SamplingParams(max_new_tokens=n, ignore_eos=True)) for q, n in zip(QUESTIONS, LENGTHS,
                                                                                                  strict=True)]
    together = _answers_at_once(batched)
    for a, b in zip(together, alone, strict=True):
        assert (a.text, a.side, a.decision, a.completion_tokens) == (b.text, b.side, b.decision, b.completion_tokens)
        assert a.confidence == pytest.approx(b.confidence, rel=1e-5, abs=1e-6)
    batch = batched._model.engine.batch  # how the steps were shared
    assert batch is not None and batch.stepped_rows > batch.steps
