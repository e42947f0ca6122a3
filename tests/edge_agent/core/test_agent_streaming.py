"""The agent streams as it decodes when the decision comes first (pre, the confident side of hybrid) and
holds the answer back for the post decision; either way every token carries its log-probability, which
the device API serves as OpenAI's ``logprobs``."""

from __future__ import annotations

import openai
from openai.types.chat import ChatCompletionMessageParam

from confroute.contract import RoutingMode as Mode
from confroute.engine import SamplingParams
from edge_agent.answer import AgentAnswer, TextDelta
from edge_agent.api import serve_api
from tests.edge_agent.core.conftest import MakeAgent

QUESTION = [{"role": "user", "content": "what is two plus two"}]
ASKED: list[ChatCompletionMessageParam] = [{"role": "user", "content": "what is two plus two"}]
TOKENS = SamplingParams(max_new_tokens=8, ignore_eos=True)


def events(agent: object, mode_params: SamplingParams = TOKENS) -> tuple[list[TextDelta], AgentAnswer]:
    items = list(agent.stream(QUESTION, mode_params))  # type: ignore[attr-defined]
    *deltas, answer = items
    assert isinstance(answer, AgentAnswer)
    return deltas, answer


def test_a_confident_pre_decision_streams_token_by_token_with_logprobs(make_agent: MakeAgent) -> None:
    deltas, answer = events(make_agent(Mode.PRE, pre=0.5, tbg=0.9))

    assert answer.side == "edge" and len(deltas) > 1
    assert "".join(d.text for d in deltas) == answer.text
    assert sum(len(d.logprobs) for d in deltas) == answer.completion_tokens == 8
    assert all(token.logprob <= 0 for d in deltas for token in d.logprobs)


def test_the_confident_side_of_hybrid_streams_too(make_agent: MakeAgent) -> None:
    deltas, answer = events(make_agent(Mode.HYBRID, low=0.2, high=0.8, tbg=0.9))
    assert answer.side == "edge" and len(deltas) > 1


def test_a_post_decision_releases_the_answer_whole_with_every_tokens_logprob(make_agent: MakeAgent) -> None:
    deltas, answer = events(make_agent(Mode.POST, post=0.0))

    [whole] = deltas
    assert whole.text == answer.text and len(whole.logprobs) == answer.completion_tokens == 8
    assert "".join(token.text for token in whole.logprobs) == answer.text


def test_the_api_serves_the_agents_logprobs_and_streams_it(make_agent: MakeAgent) -> None:
    agent = make_agent(Mode.PRE, pre=0.5, tbg=0.9)
    with serve_api(agent) as server, openai.OpenAI(base_url=server.url, api_key="x", max_retries=0) as client:
        [model] = agent.model_ids
        whole = client.chat.completions.create(model=model, messages=ASKED, max_tokens=8, logprobs=True)
        with client.chat.completions.create(model=model, messages=ASKED, max_tokens=8, stream=True) as stream:
            texts = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]

    assert whole.model == model
    logprobs = whole.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert whole.usage is not None and len(logprobs.content) == whole.usage.completion_tokens
    assert len(texts) > 1 and "".join(texts) == whole.choices[0].message.content
