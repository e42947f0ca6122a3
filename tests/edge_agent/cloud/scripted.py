"""A scripted escalation service for fault tests: each call plays the next behaviour of a script.

Behaviours yield the events of an answer (unary calls get the final one) or end the call with a status.
Slow behaviours wait on ``cloud.release``, which the fixture sets at teardown so no handler outlives it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import grpc

from confroute.contract import EscalationResponse, TokenDelta
from confroute.contract.answer import StreamEvent, Usage, stream_event_to_pb
from confroute.v1 import escalation_pb2, escalation_pb2_grpc
from tests.edge_agent.cloud.samples import answer

Behaviour = Callable[["ScriptedCloud", grpc.ServicerContext], Iterator[StreamEvent]]


def answers(text: str = "four") -> Behaviour:
    def play(cloud: ScriptedCloud, context: grpc.ServicerContext) -> Iterator[StreamEvent]:
        for word in text.split():
            yield TokenDelta(word + " ")
        yield answer(text)

    return play


def fails(code: grpc.StatusCode) -> Behaviour:
    def play(cloud: ScriptedCloud, context: grpc.ServicerContext) -> Iterator[StreamEvent]:
        context.abort(code, f"scripted {code.name}")
        yield from ()

    return play


def slow(seconds: float) -> Behaviour:
    def play(cloud: ScriptedCloud, context: grpc.ServicerContext) -> Iterator[StreamEvent]:
        cloud.release.wait(seconds)
        yield answer("late")

    return play


def breaks_after(deltas: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> Behaviour:
    def play(cloud: ScriptedCloud, context: grpc.ServicerContext) -> Iterator[StreamEvent]:
        for i in range(deltas):
            yield TokenDelta(f"word{i} ")
        context.abort(code, "the model server went away")

    return play


def malformed(cloud: ScriptedCloud, context: grpc.ServicerContext) -> Iterator[StreamEvent]:
    yield replace(answer("odd"), usage=Usage(prompt_tokens=-1, completion_tokens=1))


def ends_without_final(cloud: ScriptedCloud, context: grpc.ServicerContext) -> Iterator[StreamEvent]:
    yield TokenDelta("half an ")


def endless(cloud: ScriptedCloud, context: grpc.ServicerContext) -> Iterator[StreamEvent]:
    """Deltas every 10 ms until the client goes away (this call never ends by itself, so when it
    ends ``cloud.cancelled`` is set)."""
    context.add_callback(cloud.cancelled.set)
    while not cloud.release.is_set():
        yield TokenDelta("more ")
        cloud.release.wait(0.01)


class ScriptedCloud(escalation_pb2_grpc.EscalationServiceServicer):  # type: ignore[misc]
    """Plays ``script`` one behaviour per call; the last behaviour repeats."""

    def __init__(self, *script: Behaviour) -> None:
        self.script = list(script) or [answers()]
        self.calls = 0
        self.metadata: list[dict[str, Any]] = []
        self.release = threading.Event()
        self.cancelled = threading.Event()
        self._lock = threading.Lock()

    def Escalate(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        events = list(self._next(context)(self, context))
        final = events[-1]
        assert isinstance(final, EscalationResponse)
        return escalation_pb2.EscalateResponse(answer=final.to_pb())

    def EscalateStream(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:  # noqa: N802
        for event in self._next(context)(self, context):
            yield stream_event_to_pb(event)

    def _next(self, context: grpc.ServicerContext) -> Behaviour:
        with self._lock:
            index = min(self.calls, len(self.script) - 1)
            self.calls += 1
            self.metadata.append(dict(context.invocation_metadata()))
        return self.script[index]


@contextmanager
def serving(
    cloud: ScriptedCloud, port: int = 0, credentials: grpc.ServerCredentials | None = None
) -> Iterator[int]:
    """Serves ``cloud`` on 127.0.0.1 and yields the port; stops the server and its threads after."""
    pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="scripted-cloud")
    server = grpc.server(pool)
    escalation_pb2_grpc.add_EscalationServiceServicer_to_server(cloud, server)  # type: ignore[no-untyped-call]
    address = f"127.0.0.1:{port}"
    bound = server.add_insecure_port(address) if credentials is None else server.add_secure_port(address, credentials)
    server.start()
    try:
        yield bound
    finally:
        cloud.release.set()
        server.stop(None).wait()
        pool.shutdown(wait=True)


def free_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
