"""``parse_chat_request``: an OpenAI request body mapped onto confroute's types (no server needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from confroute.engine import SamplingParams
from confroute.errors import InvalidInput
from edge_agent.api.errors import HttpError
from edge_agent.api.request import ChatRequest, parse_chat_request

MODELS = ("edge",)


def parse(**fields: Any) -> ChatRequest:
    body = {"model": "edge", "messages": [{"role": "user", "content": "hi"}], **fields}
    return parse_chat_request(json.dumps(body).encode(), MODELS)


def test_defaults_are_the_engines_and_no_stream() -> None:
    request = parse()
    assert request == ChatRequest("edge", ({"role": "user", "content": "hi"},), SamplingParams())


def test_nulls_mean_not_given_like_on_openai() -> None:
    assert parse(temperature=None, max_tokens=None, stop=None, n=None, stream_options=None).params == SamplingParams()


def test_max_completion_tokens_wins_over_the_deprecated_max_tokens() -> None:
    assert parse(max_tokens=5, max_completion_tokens=9).params.max_new_tokens == 9


def test_stream_usage_is_read_from_stream_options() -> None:
    request = parse(stream=True, stream_options={"include_usage": True})
    assert request.stream and request.include_usage


def test_unknown_fields_and_neutral_values_are_ignored() -> None:
    assert parse(tools=[], tool_choice="none", response_format={"type": "text"}, user="me", logit_bias={},
                 presence_penalty=0, frequency_penalty=0.0, top_logprobs=0) == parse()


def test_logprobs_are_asked_for() -> None:
    assert parse(logprobs=True).logprobs and not parse().logprobs


@pytest.mark.parametrize(("fields", "param"), [
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ({"tools": False}, "tools"),
    ({"functions": {}}, "functions"),
    ({"tool_choice": "auto"}, "tool_choice"),
    ({"functions": [{"name": "f"}]}, "functions"),
    ({"function_call": "auto"}, "function_call"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"response_format": {"type": "json_schema", "json_schema": {}}}, "response_format"),
    ({"logit_bias": {"50256": -100}}, "logit_bias"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"frequency_penalty": -1}, "frequency_penalty"),
    ({"frequency_penalty": 3}, "frequency_penalty"),
    ({"top_logprobs": 5}, "top_logprobs"),
    ({"top_logprobs": 21}, "top_logprobs"),
    ({"temperature": 2.5}, "temperature"),
    ({"logprobs": "yes"}, "logprobs"),
    ({"n": 2}, "n"),
])
def test_what_the_server_cannot_honour_is_refused_naming_the_field(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(**fields)
    assert caught.value.field == param


def test_temperature_two_is_openais_maximum() -> None:
    assert parse(temperature=2).params.temperature == 2.0


def test_an_integral_temperature_is_a_number() -> None:
    assert parse(temperature=1).params.temperature == 1.0


@pytest.mark.parametrize("fields", [{"n": 3}, {"temperature": float("nan")}, {"messages": []}])
def test_invalid_requests_raise_invalid_input(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        parse(**fields)


def test_an_unknown_model_is_an_http_404() -> None:
    with pytest.raises(HttpError) as caught:
        parse(model="other")
    assert (caught.value.status, caught.value.code) == (404, "model_not_found")
