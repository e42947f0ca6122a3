"""The API over the device's real model (a tiny random bundle): an OpenAI client gets its answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from edge_agent.api import ApiServer, serve_api
from edge_agent.model import EdgeModel
from tests.edge_agent.api.edge_answerer import EdgeOnlyAnswerer


@pytest.fixture(scope="module")
def edge_server(tiny_bundles: dict[str, Path]) -> Iterator[ApiServer]:
    with serve_api(EdgeOnlyAnswerer(EdgeModel(tiny_bundles["llama"]))) as server:
        yield server


def test_the_tiny_model_answers_whole_and_streamed_alike(edge_server: ApiServer) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is 12 times 7?"}]
    with openai.OpenAI(base_url=edge_server.url, api_key="dummy", max_retries=0, timeout=60.0) as client:
        [model] = [m.id for m in client.models.list()]
        whole = client.chat.completions.create(model=model, messages=messages, max_tokens=6)
        with client.chat.completions.create(model=model, messages=messages, max_tokens=6, stream=True,
                                            stream_options={"include_usage": True}) as stream:
            chunks = list(stream)

    assert model == "tiny-random-llama"
    assert whole.usage is not None and 1 <= whole.usage.completion_tokens <= 6
    routing = (whole.model_extra or {})["confroute"]
    assert routing["side"] == "edge" and 0 < routing["confidence"] <= 1
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content  # greedy: the same text either way
    assert chunks[-1].usage == whole.usage


def test_a_prompt_longer_than_the_context_is_a_400_naming_messages(edge_server: ApiServer) -> None:
    with openai.OpenAI(base_url=edge_server.url, api_key="dummy", max_retries=0, timeout=60.0) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="tiny-random-llama", max_tokens=8,
                                           messages=[{"role": "user", "content": "word " * 5000}])
        assert (caught.value.code, caught.value.param) == ("context_length_exceeded", "messages")
        assert client.chat.completions.create(model="tiny-random-llama", max_tokens=2,
                                              messages=[{"role": "user", "content": "hi"}]).choices
