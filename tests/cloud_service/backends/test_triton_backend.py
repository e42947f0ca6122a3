"""TritonBackend against a real tritonserver: answers, streams, deadlines and outages."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest

from cloud_service.backends.prompt import PromptFormat
from cloud_service.backends.triton import TritonBackend, TritonBackendConfig, sampling_parameters
from cloud_service.inference import TritonServerProcess
from confroute.contract import (
    ChatMessage,
    ChatRole,
    EscalationRequest,
    EscalationResponse,
    FinishReason,
    GenerationParams,
    ModelRef,
    RoutingMode,
    TokenDelta,
)
from confroute.errors import DeadlineExceeded, RuntimeFailure, Unavailable

T = TypeVar("T")
TIMEOUT_S = 10.0


def escalation(text: str, max_tokens: int = 64, **params: Any) -> EscalationRequest:
    return EscalationRequest(
        query_id="q-1",
        device_id="device-1",
        cohort="beta",
        edge_model=ModelRef("smollm2-135m-instruct", "b1"),
        messages=(ChatMessage(ChatRole.USER, text),),
        params=GenerationParams(max_tokens=max_tokens, **params),
        mode=RoutingMode.PRE,
    )


@asynccontextmanager
async def connected(
    url: str, model: str = "echo", prompt_format: PromptFormat = "plain"
) -> AsyncIterator[TritonBackend]:
    backend = await TritonBackend.create(TritonBackendConfig(url=url, model=model, prompt_format=prompt_format))
    try:
        yield backend
    finally:
        await backend.close()


def with_backend(url: str, use: Callable[[TritonBackend], Awaitable[T]], model: str = "echo") -> T:
    async def scenario() -> T:
        async with connected(url, model) as backend:
            return await use(backend)

    return asyncio.run(scenario())


async def collect(backend: TritonBackend, request: EscalationRequest, timeout_s: float = TIMEOUT_S) -> list[Any]:
    return [event async for event in backend.stream(request, timeout_s)]


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_generate_returns_the_models_answer_with_usage_and_timings(triton: TritonServerProcess) -> None:
    answer = with_backend(triton.endpoints.grpc_url, lambda b: b.generate(escalation("héllo wörld, how are you?"), 5))

    assert answer.text == "héllo wörld, how are you?"
    assert answer.model == ModelRef("echo", "1")
    assert answer.finish_reason is FinishReason.STOP
    assert answer.usage.prompt_tokens == answer.usage.completion_tokens == 7  # ceil(25 chars / 4)
    assert 0 <= answer.timings.queue_ms <= answer.timings.total_ms
    assert answer.timings.compute_ms <= answer.timings.total_ms


def test_stream_yields_a_delta_per_response_then_the_whole_answer(triton: TritonServerProcess) -> None:
    events = with_backend(triton.endpoints.grpc_url, lambda b: collect(b, escalation("the quick brown fox")))

    *deltas, final = events
    assert deltas == [TokenDelta("the"), TokenDelta(" quick"), TokenDelta(" brown"), TokenDelta(" fox")]
    assert isinstance(final, EscalationResponse)
    assert final.text == "the quick brown fox"
    assert final.usage.completion_tokens == 4
    assert final.finish_reason is FinishReason.STOP


def test_max_tokens_reached_is_a_length_finish(triton: TritonServerProcess) -> None:
    *_, final = with_backend(triton.endpoints.grpc_url, lambda b: collect(b, escalation("a b c d e", max_tokens=2)))

    assert final.text == "a b"
    assert final.finish_reason is FinishReason.LENGTH


def test_chatml_is_the_default_prompt_format(triton: TritonServerProcess) -> None:
    async def use() -> EscalationResponse:
        async with connected(triton.endpoints.grpc_url, prompt_format="chatml") as backend:
            return await backend.generate(escalation("hi"), 5)

    assert asyncio.run(use()).text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_a_timeout_shorter_than_the_models_work_is_deadline_exceeded(triton: TritonServerProcess) -> None:
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="DEADLINE_EXCEEDED"):
        with_backend(
            triton.endpoints.grpc_url, lambda b: b.generate(escalation("one two three four five"), 0.3), "slow_echo"
        )
    assert time.monotonic() - started < 0.9  # the slow model needs 1 s


def test_a_stream_closed_early_does_not_wait_for_the_model(triton: TritonServerProcess) -> None:
    async def first_delta(backend: TritonBackend) -> Any:
        stream = backend.stream(escalation("one two three four five six seven eight"), TIMEOUT_S)
        try:
            return await anext(stream)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]  # an async generator

    started = time.monotonic()
    assert with_backend(triton.endpoints.grpc_url, first_delta, "slow_echo") == TokenDelta("one")
    assert time.monotonic() - started < 1.0


def test_triton_not_listening_is_unavailable_at_once_and_not_ready() -> None:
    url = f"127.0.0.1:{unused_port()}"
    assert with_backend(url, lambda b: b.ready()) is False

    started = time.monotonic()
    with pytest.raises(Unavailable, match="UNAVAILABLE"):
        with_backend(url, lambda b: b.generate(escalation("hi"), 5))
    assert time.monotonic() - started < 2.0


def test_a_running_triton_with_the_model_loaded_is_ready(triton: TritonServerProcess) -> None:
    assert with_backend(triton.endpoints.grpc_url, lambda b: b.ready()) is True
    assert with_backend(triton.endpoints.grpc_url, lambda b: b.ready(), model="no_such_model") is False


def test_an_error_the_model_reports_in_the_stream_is_a_runtime_failure(triton: TritonServerProcess) -> None:
    with pytest.raises(RuntimeFailure, match="no_such_model"):
        with_backend(triton.endpoints.grpc_url, lambda b: b.generate(escalation("hi"), 5), model="no_such_model")


def test_sampling_parameters_carry_seed_and_stop_only_when_set() -> None:
    assert json.loads(sampling_parameters(escalation("x", max_tokens=8))) == {
        "max_tokens": 8,
        "temperature": 0.0,
        "top_p": 1.0,
    }
    assert json.loads(sampling_parameters(escalation("x", 8, seed=7, stop=("\n",), top_p=0.9))) == {
        "max_tokens": 8,
        "temperature": 0.0,
        "top_p": 0.9,
        "seed": 7,
        "stop": ["\n"],
    }
