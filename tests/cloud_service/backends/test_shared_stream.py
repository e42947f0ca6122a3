"""TritonBackend.generate over one shared stream to a real tritonserver: concurrency, deadlines, restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from cloud_service.backends.triton import TritonBackend
from cloud_service.inference import TritonServerConfig, TritonServerProcess
from confroute.errors import DeadlineExceeded, RuntimeFailure, Unavailable
from tests.cloud_service.backends.conftest import model_repository
from tests.cloud_service.backends.test_triton_backend import TIMEOUT_S, connected, escalation

pytestmark = pytest.mark.timeout(120)


def test_concurrent_requests_each_get_their_own_answer(triton: TritonServerProcess) -> None:
    prompts = [f"request {i} " + " ".join(f"w{j}" for j in range(i % 7)) for i in range(64)]

    async def scenario() -> list[str]:
        async with connected(triton.endpoints.grpc_url) as backend:
            answers = await asyncio.gather(*(backend.generate(escalation(p), TIMEOUT_S) for p in prompts))
            return [answer.text for answer in answers]

    assert asyncio.run(scenario()) == prompts


def test_a_deadline_on_one_request_leaves_the_others_on_the_stream_alone(triton: TritonServerProcess) -> None:
    async def scenario() -> tuple[BaseException | str, ...]:
        async with connected(triton.endpoints.grpc_url, model="slow_echo") as backend:
            late = backend.generate(escalation("one two three four five six"), 0.3)  # needs 1.2 s
            on_time = backend.generate(escalation("alpha beta"), TIMEOUT_S)  # needs 0.4 s
            results = await asyncio.gather(late, on_time, return_exceptions=True)
            # The late request's words keep arriving meanwhile: they must not reach this one.
            after = await backend.generate(escalation("gamma delta epsilon"), TIMEOUT_S)
            return (*(r if isinstance(r, BaseException) else r.text for r in results), after.text)

    late, on_time, after = asyncio.run(scenario())

    assert isinstance(late, DeadlineExceeded)
    assert "DEADLINE_EXCEEDED" in str(late)
    assert on_time == "alpha beta"
    assert after == "gamma delta epsilon"


def test_a_model_error_fails_its_request_only_and_the_stream_stays_up(triton: TritonServerProcess) -> None:
    async def scenario() -> list[BaseException]:
        async with connected(triton.endpoints.grpc_url, model="no_such_model") as backend:
            first = await asyncio.gather(backend.generate(escalation("hi"), 5), return_exceptions=True)
            second = await asyncio.gather(backend.generate(escalation("hi"), 5), return_exceptions=True)
            return [e for e in (*first, *second) if isinstance(e, BaseException)]

    errors = asyncio.run(scenario())

    assert [type(error) for error in errors] == [RuntimeFailure, RuntimeFailure]  # not Unavailable: no break


def test_requests_after_close_are_unavailable_at_once(triton: TritonServerProcess) -> None:
    async def scenario() -> None:
        async with connected(triton.endpoints.grpc_url, model="slow_echo") as backend:
            in_flight = asyncio.ensure_future(backend.generate(escalation("one two three"), TIMEOUT_S))
            await asyncio.sleep(0.1)
            await backend.close()
            with pytest.raises(Unavailable):
                await in_flight
            started = time.monotonic()
            with pytest.raises(Unavailable, match="closed"):
                await backend.generate(escalation("hi"), TIMEOUT_S)
            assert time.monotonic() - started < 0.1

    asyncio.run(scenario())


def test_a_killed_triton_is_unavailable_and_a_restarted_one_serves_the_next_request(
    backend_python: Path, tmp_path: Path
) -> None:
    repository = model_repository(tmp_path)
    first = TritonServerProcess(TritonServerConfig(repository, backend_python=backend_python))
    endpoints = first.start()
    again = TritonServerConfig(
        repository,
        backend_python=backend_python,
        grpc_port=endpoints.grpc_port,
        http_port=endpoints.http_port,
        metrics_port=endpoints.metrics_port,
    )
    second = TritonServerProcess(again)

    async def scenario() -> list[str]:
        async with connected(endpoints.grpc_url) as echo, connected(endpoints.grpc_url, "slow_echo") as slow:
            before = await echo.generate(escalation("before"), TIMEOUT_S)
            in_flight = asyncio.ensure_future(slow.generate(escalation("one two three four five"), TIMEOUT_S))
            await asyncio.sleep(0.3)
            os.kill(first.pid or 0, signal.SIGKILL)
            await asyncio.to_thread(first.stop)
            started = time.monotonic()
            with pytest.raises(Unavailable, match="UNAVAILABLE"):
                await in_flight
            with pytest.raises(Unavailable):
                await echo.generate(escalation("while down"), TIMEOUT_S)
            assert time.monotonic() - started < 2.0  # at once, not at the deadline

            await asyncio.to_thread(second.start)
            await _until_ready(echo)
            after = await echo.generate(escalation("after"), TIMEOUT_S)
            return [before.text, after.text]

    try:
        assert asyncio.run(scenario()) == ["before", "after"]
    finally:
        first.stop()
        second.stop()


async def _until_ready(backend: TritonBackend, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await backend.ready():
        assert time.monotonic() < deadline, "the restarted Triton never became ready"
        await asyncio.sleep(0.1)
