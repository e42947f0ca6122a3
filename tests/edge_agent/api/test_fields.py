"""Every request field is honoured or refused: logprobs are served, the rest is a 400 naming the field,
and the answer names the model that gave it."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.edge_agent.api.fake_answerer import MODEL_IDS

MODEL = MODEL_IDS[0]
HELLO: Any = [{"role": "user", "content": "hello there"}]
HARD: Any = [{"role": "user", "content": "a hard one"}]


def test_logprobs_are_served_for_every_token_of_a_local_answer(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=HELLO, logprobs=True)

    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert "".join(token.token for token in logprobs.content) == completion.choices[0].message.content
    assert {token.logprob for token in logprobs.content} == {-0.25}
    assert logprobs.content[0].bytes == list(logprobs.content[0].token.encode())


def test_logprobs_are_absent_unless_asked_for_and_for_cloud_answers(client: openai.OpenAI) -> None:
    assert client.chat.completions.create(model=MODEL, messages=HELLO).choices[0].logprobs is None
    assert client.chat.completions.create(model=MODEL, messages=HARD, logprobs=True).choices[0].logprobs is None


def test_a_stream_carries_each_deltas_logprobs(client: openai.OpenAI) -> None:
    with client.chat.completions.create(model=MODEL, messages=HELLO, logprobs=True, stream=True) as stream:
        chunks = [c for c in stream if c.choices and c.choices[0].delta.content]

    assert chunks and all(c.choices[0].logprobs is not None for c in chunks)
    assert [c.choices[0].logprobs.content[0].token for c in chunks if c.choices[0].logprobs
            and c.choices[0].logprobs.content] == [c.choices[0].delta.content for c in chunks]


def test_a_cloud_answer_names_the_cloud_model(client: openai.OpenAI) -> None:
    assert client.chat.completions.create(model=MODEL, messages=HARD).model == "cloud-model"
    with client.chat.completions.create(model=MODEL, messages=HARD, stream=True) as stream:
        chunks = list(stream)
    assert chunks[-1].model == "cloud-model"


@pytest.mark.parametrize(("fields", "param"), [
    ({"tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]}, "tools"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"logit_bias": {"42": 5}}, "logit_bias"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"frequency_penalty": 0.5}, "frequency_penalty"),
    ({"top_logprobs": 3, "logprobs": True}, "top_logprobs"),
    ({"n": 2}, "n"),
    ({"temperature": 5}, "temperature"),
])
def test_a_field_the_server_cannot_honour_is_a_400_naming_it(client: openai.OpenAI, fields: dict[str, Any],
                                                             param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO, **fields)
    assert caught.value.param == param
