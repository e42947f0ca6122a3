"""Concurrent queries share the model's decode loop: each keeps its own answer, signals and decision."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import threading

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from confroute.contract import RoutingMode as Mode
from confroute.engine import SamplingParams
from edge_agent.answer import AgentAnswer
from edge_agent.api import ApiConfig, serve_api
from edge_agent.core import EdgeAgent
from tests.edge_agent.core.conftest import MakeAgent

QUESTIONS = [[{"role": "user", "content": q}] for q in
             ("what is two plus two", "name a river", "why is the sky blue", "hello there, who are you?")]
LENGTHS = (40, 90, 25, 60)


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


def test_the_api_streams_concurrent_requests_from_one_batch_and_a_stalled_reader_holds_no_one(
        make_agent: MakeAgent) -> None:
    serial = make_agent(Mode.PRE, tbg=0.9, pre=0.5)
    batched = make_agent(Mode.PRE, tbg=0.9, pre=0.5, batch=4)
    params = SamplingParams(max_new_tokens=24, ignore_eos=True)
    alone = [serial.answer(q, params).text for q in QUESTIONS[:3]]
    with serve_api(batched, ApiConfig(parallel=batched.parallel, queue=4)) as server:
        stalled = http.client.HTTPConnection(server.host, server.port, timeout=30)
        [model] = batched.model_ids
        body = json.dumps({"model": model, "stream": True, "max_tokens": 150, "messages": QUESTIONS[3]})
        stalled.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        response = stalled.getresponse()
        assert response.status == 200, response.read()  # headers read, then the body is never read

        def ask(question: list[dict[str, str]]) -> str:
            asked: list[ChatCompletionMessageParam] = [{"role": "user", "content": question[0]["content"]}]
            with openai.OpenAI(base_url=server.url, api_key="k", max_retries=0, timeout=60.0) as client, \
                    client.chat.completions.create(model=model, messages=asked, max_tokens=24, stream=True) as stream:
                return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            texts = list(pool.map(ask, QUESTIONS[:3], timeout=60))
        stalled.close()
    assert texts == alone
