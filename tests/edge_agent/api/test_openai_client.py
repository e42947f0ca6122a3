"""The official ``openai`` client, pointed at the edge agent's API, works as against OpenAI."""

from __future__ import annotations

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from confroute.engine import SamplingParams
from edge_agent.api import ApiServer
from tests.edge_agent.api.fake_answerer import MODEL_IDS, POLICY_VERSION, FakeAnswerer

MODEL = MODEL_IDS[0]


def user(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


HELLO = user("hello there")


def test_a_chat_completion_answers_and_says_which_side_answered(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=HELLO)

    assert completion.choices[0].message.content == "You said: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "edge-model"  # the model that answered, not the one asked for
    assert completion.usage is not None and completion.usage.total_tokens == 2 + 4
    routing = (completion.model_extra or {})["confroute"]
    assert routing["side"] == "edge" and routing["confidence"] == 0.9
    assert routing["policy_version"] == POLICY_VERSION and routing["query_id"].startswith("q-")


def test_the_routing_metadata_is_also_in_the_response_headers(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model=MODEL,
                                                           messages=user("a hard one"))
    completion = raw.parse()

    assert raw.headers["x-confroute-side"] == "cloud"
    assert float(raw.headers["x-confroute-confidence"]) == pytest.approx(0.2)
    assert raw.headers["x-confroute-policy-version"] == POLICY_VERSION
    assert raw.headers["x-confroute-query-id"] == (completion.model_extra or {})["confroute"]["query_id"]
    assert raw.headers["x-request-id"] == completion.id


def test_a_vetoed_answer_has_no_confidence_header_and_a_null_confidence(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model=MODEL,
                                                           messages=user("my secret"))

    assert "x-confroute-confidence" not in raw.headers
    assert (raw.parse().model_extra or {})["confroute"]["confidence"] is None


def test_a_streamed_completion_arrives_word_by_word_and_ends_with_routing_and_usage(client: openai.OpenAI) -> None:
    with client.chat.completions.create(model=MODEL, messages=HELLO, stream=True,
                                        stream_options={"include_usage": True}) as stream:
        chunks = list(stream)

    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert texts == ["You", " said:", " hello", " there"]
    assert chunks[0].choices[0].delta.role == "assistant"
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    assert final.choices[0].finish_reason == "stop"
    assert (final.model_extra or {})["confroute"]["side"] == "edge"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert len({c.id for c in chunks}) == 1


def test_a_stream_without_usage_ends_with_the_finish_chunk(client: openai.OpenAI) -> None:
    with client.chat.completions.create(model=MODEL, messages=HELLO, stream=True) as stream:
        chunks = list(stream)

    assert chunks[-1].choices[0].finish_reason == "stop"
    assert (chunks[-1].model_extra or {})["confroute"]["policy_version"] == POLICY_VERSION
    assert all(c.usage is None for c in chunks)


def test_stream_headers_carry_what_is_known_before_the_answer(client: openai.OpenAI) -> None:
    with client.chat.completions.with_streaming_response.create(
            model=MODEL, messages=user("hard"), stream=True) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-confroute-side"] == "cloud"
        assert "x-confroute-policy-version" not in response.headers  # it is in the final chunk
        text = "".join(response.iter_lines())
    assert "[DONE]" in text and '"policy_version":"policy-7"' in text


def test_models_are_listed_and_retrieved(client: openai.OpenAI) -> None:
    assert [model.id for model in client.models.list()] == list(MODEL_IDS)
    assert client.models.retrieve(MODEL_IDS[1]).owned_by == "confroute"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_request_fields_map_onto_sampling_params_and_messages(client: openai.OpenAI, fake: FakeAnswerer) -> None:
    client.chat.completions.create(
        model=MODEL, max_tokens=7, temperature=0.5, top_p=0.9, seed=3, stop=["x", "y"],
        messages=[{"role": "developer", "content": "be brief"},
                  {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}],
        extra_body={"some_future_field": {"ignored": True}},
    )
    client.chat.completions.create(model=MODEL, messages=HELLO, max_completion_tokens=9, stop="z")

    (messages, params), (_, second) = fake.calls
    assert messages == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "one\ntwo"}]
    assert params == SamplingParams(max_new_tokens=7, temperature=0.5, top_p=0.9, seed=3, stop=("x", "y"))
    assert second == SamplingParams(max_new_tokens=9, stop=("z",))


def test_an_unknown_model_is_not_found_like_on_openai(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert caught.value.code == "model_not_found"


@pytest.mark.parametrize(("keyword", "error", "status"), [
    ("InvalidInput", openai.BadRequestError, 400),
    ("PromptTooLong", openai.BadRequestError, 400),
    ("Overloaded", openai.RateLimitError, 429),
    ("Unavailable", openai.InternalServerError, 503),
    ("DeadlineExceeded", openai.InternalServerError, 504),
    ("bug", openai.InternalServerError, 500),
])
@pytest.mark.parametrize("stream", [False, True])
def test_answerer_errors_reach_the_client_with_their_status(client: openai.OpenAI, keyword: str,
                                                           error: type[openai.APIStatusError], status: int,
                                                           stream: bool) -> None:
    with pytest.raises(error) as caught:
        client.chat.completions.create(model=MODEL, messages=user(f"raise:{keyword}"),
                                       stream=stream)
    assert caught.value.status_code == status
    client.chat.completions.create(model=MODEL, messages=HELLO)  # and it keeps serving


def test_an_error_midway_through_a_stream_arrives_as_an_error_event(client: openai.OpenAI,
                                                                   fake: FakeAnswerer) -> None:
    deltas: list[str | None] = []
    with pytest.raises(openai.APIError, match="the model runtime is down"), client.chat.completions.create(
            model=MODEL, messages=user("midway:Unavailable"), stream=True) as stream:
        deltas.extend(chunk.choices[0].delta.content for chunk in stream)

    assert deltas == ["", "You"]
    assert fake.closed_streams == 1
    client.chat.completions.create(model=MODEL, messages=HELLO)


def test_an_oversized_body_is_refused_with_413(client: openai.OpenAI, server: ApiServer) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x" * 200_000}])
    assert caught.value.status_code == 413
    assert client.chat.completions.create(model=MODEL, messages=HELLO).choices
