"""A closed-loop load generator and the two clients it drives: Triton directly, and the cloud service.

Both send the same work: the service renders the escalation's chat into one prompt and calls the echo
model over Triton's streaming API (the model is decoupled); the direct client sends that very prompt
and the same ``sampling_parameters`` the same way, from one long-lived channel, as the service does.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput

from bench.cloudbench import bare_proxy
from bench.cloudbench.devices import Device
from cloud_service.backends.prompt import render_prompt
from cloud_service.backends.triton import sampling_parameters
from confroute.contract.common import ModelRef
from confroute.contract.enums import ChatRole, RoutingMode
from confroute.contract.escalation import ChatMessage, EscalationRequest, GenerationParams
from confroute.v1 import escalation_pb2, escalation_pb2_grpc

Call = Callable[[], Awaitable[str]]
DEADLINE_S = 10.0
PROMPT = "What is the capital of France? Answer in one word, then explain briefly why it is the capital."


def escalation(max_tokens: int) -> EscalationRequest:
    """The escalation every request sends (each with its own query id)."""
    return EscalationRequest(
        query_id="bench-template",
        device_id="bench-device",
        cohort="bench",
        edge_model=ModelRef("smollm2-135m", "bench"),
        messages=(ChatMessage(ChatRole.USER, PROMPT),),
        params=GenerationParams(max_tokens=max_tokens),
        mode=RoutingMode.POST,
        signals={"seq_conf": 0.31, "probe": 0.42},
        policy_version="p-bench",
    )


@dataclass
class Window:
    """What one timed window of closed-loop load produced."""

    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    errors: int = 0
    first_error: str = ""


async def closed_loop(call: Call, concurrency: int, duration_s: float, max_requests: int) -> Window:
    """``concurrency`` workers call back to back until ``duration_s`` passed or ``max_requests`` were sent."""
    window = Window()
    issued = itertools.count()
    deadline = time.perf_counter() + duration_s

    async def worker() -> None:
        while time.perf_counter() < deadline and next(issued) < max_requests:
            started = time.perf_counter()
            try:
                await call()
            except Exception as exc:  # counted and reported, never silently folded into latencies
                window.errors += 1
                window.first_error = window.first_error or f"{type(exc).__name__}: {exc}"
                continue
            window.latencies_s.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    window.elapsed_s = time.perf_counter() - started
    return window


class ServiceClient:
    """Unary ``Escalate`` calls to the cloud service, each with a fresh query id, as the enrolled devices in
    turn (each call presents its device's bearer token); no devices: the service authenticates nobody."""

    def __init__(self, address: str, request: EscalationRequest, run_id: str, devices: Sequence[Device] = ()) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._stub: Any = escalation_pb2_grpc.EscalationServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._as: list[tuple[escalation_pb2.Escalation, tuple[tuple[str, str], ...] | None]] = []
        for device in devices:
            template = request.to_pb()
            template.device_id = device.device_id
            self._as.append((template, (("authorization", f"Bearer {device.token}"),)))
        if not devices:
            self._as.append((request.to_pb(), None))
        self._ids = itertools.count()
        self._prefix = f"bench-{run_id}-"
        self.sent = 0

    async def call(self) -> str:
        number = next(self._ids)
        template, metadata = self._as[number % len(self._as)]
        message = escalation_pb2.EscalateRequest(escalation=template)
        message.escalation.query_id = f"{self._prefix}{number}"
        self.sent += 1
        reply = await self._stub.Escalate(message, timeout=DEADLINE_S, metadata=metadata)
        text: str = reply.answer.text
        return text

    async def close(self) -> None:
        await self._channel.close()


class BareClient:
    """Unary calls to :mod:`bench.cloudbench.bare_proxy` (the floor under the service's cost)."""

    def __init__(self, address: str) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._call = self._channel.unary_unary(bare_proxy.METHOD)

    async def call(self) -> str:
        reply: bytes = await self._call(b"", timeout=DEADLINE_S)
        return reply.decode("utf-8")

    async def close(self) -> None:
        await self._channel.close()


class DirectClient:
    """The echo model over Triton's streaming API, one stream per request, as the service calls it."""

    def __init__(self, url: str, request: EscalationRequest, model: str = "echo") -> None:
        self._client = triton_aio.InferenceServerClient(url)
        self._model = model
        self._prompt = render_prompt(request.messages, "chatml").encode("utf-8")
        self._parameters = sampling_parameters(request).encode()

    async def call(self) -> str:
        inputs = self._inputs()

        async def requests() -> AsyncIterator[dict[str, Any]]:
            yield {"model_name": self._model, "model_version": "", "inputs": inputs}

        calls = self._client.stream_infer(requests(), stream_timeout=DEADLINE_S)
        parts: list[str] = []
        try:
            async for result, error in calls:
                if error is not None:
                    raise error
                output = result.as_numpy("text_output")
                parts.extend(item.decode("utf-8") for item in output.reshape(-1))
                if result.get_response().parameters["triton_final_response"].bool_param:
                    break
        finally:
            calls.cancel()
        return "".join(parts)

    def _inputs(self) -> list[InferInput]:
        return [
            _tensor("text_input", np.array([self._prompt], dtype=np.object_), "BYTES"),
            _tensor("stream", np.array([False]), "BOOL"),
            _tensor("sampling_parameters", np.array([self._parameters], dtype=np.object_), "BYTES"),
            _tensor("exclude_input_in_output", np.array([True]), "BOOL"),
        ]

    async def close(self) -> None:
        await self._client.close()


def _tensor(name: str, value: np.ndarray[Any, Any], datatype: str) -> InferInput:
    tensor = InferInput(name, list(value.shape), datatype)
    tensor.set_data_from_numpy(value)
    return tensor
