"""The cloud model behind Triton, reached with ``tritonclient.grpc.aio`` over Triton's streaming API.

The request speaks the tensor interface of Triton's vLLM backend (and of the bundled echo model):
``text_input`` (the chat rendered by :mod:`cloud_service.backends.prompt`), ``stream``,
``sampling_parameters`` (JSON: max_tokens, temperature, top_p, seed, stop) and
``exclude_input_in_output`` = true; ``text_output`` comes back. Decoupled models accept only the
streaming gRPC API, so both :meth:`TritonBackend.generate` and :meth:`TritonBackend.stream` open one
``ModelStreamInfer`` call per request, with the caller's timeout as its gRPC deadline.

What the interface does not report is estimated, and documented here:

- usage: ``prompt_tokens`` is ``ceil(len(prompt) / 4)`` characters per token; ``completion_tokens``
  counts the non-empty streamed responses (the vLLM backend sends one per decoding step), or for a
  whole answer ``ceil(len(text) / 4)``;
- ``finish_reason`` is LENGTH when ``completion_tokens`` reached ``max_tokens``, else STOP;
- timings are measured here: ``queue_ms`` until Triton's first response (its queue plus the prefill:
  the closest a client can see), ``compute_ms`` from then to the last response, ``total_ms`` the call.

The model must flag its last data response final (``triton_final_response``), as the vLLM backend
and the echo model do; a stream that simply ends is taken as finished too.

This module is the one boundary for tritonclient and grpc errors, translated by gRPC status code:
UNAVAILABLE -> :class:`Unavailable`, DEADLINE_EXCEEDED -> :class:`DeadlineExceeded`,
RESOURCE_EXHAUSTED -> :class:`Overloaded`, anything else (and errors a model reports inside the
stream, which carry no code) -> :class:`RuntimeFailure`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput
from tritonclient.utils import InferenceServerException

from cloud_service.backends.prompt import PromptFormat, render_prompt
from confroute.contract.answer import EscalationResponse, StreamEvent, Timings, TokenDelta, Usage
from confroute.contract.common import ModelRef
from confroute.contract.enums import FinishReason
from confroute.contract.escalation import EscalationRequest
from confroute.errors import ConfrouteError, DeadlineExceeded, Overloaded, RuntimeFailure, Unavailable

_CHARS_PER_TOKEN = 4
_ERRORS: dict[grpc.StatusCode, type[ConfrouteError]] = {
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Overloaded,
}


@dataclass(frozen=True)
class TritonBackendConfig:
    """Where the model is served and how prompts are rendered for it."""

    url: str  # host:port of Triton's gRPC endpoint
    model: str
    model_version: str = ""  # empty: the version Triton's version policy serves
    prompt_format: PromptFormat = "chatml"
    ready_timeout_s: float = 1.0


@dataclass
class _Exchange:
    """What one request to Triton produced, gathered while its responses arrive."""

    prompt: str
    started: float = field(default_factory=time.perf_counter)
    first: float | None = None
    parts: list[str] = field(default_factory=list)
    steps: int = 0
    model: ModelRef | None = None

    def add(self, text: str, model: ModelRef) -> None:
        self.first = self.first if self.first is not None else time.perf_counter()
        self.model = model
        if text:
            self.parts.append(text)
            self.steps += 1


class TritonBackend:
    """An :class:`~cloud_service.ports.InferenceBackend` on one long-lived gRPC channel to Triton.

    Build it with :meth:`create` inside the running event loop; :meth:`close` releases the channel.
    """

    def __init__(self, config: TritonBackendConfig, client: Any) -> None:
        self._config = config
        self._client = client

    @classmethod
    async def create(cls, config: TritonBackendConfig) -> TritonBackend:
        """Opens the channel (lazily connected: Triton need not be up yet)."""
        return cls(config, triton_aio.InferenceServerClient(config.url))

    @property
    def config(self) -> TritonBackendConfig:
        """Where this backend sends requests."""
        return self._config

    async def ready(self) -> bool:
        """Whether Triton answers and the model is loaded; never raises."""
        try:
            ready: bool = await self._client.is_model_ready(
                self._config.model, self._config.model_version, client_timeout=self._config.ready_timeout_s
            )
        except (InferenceServerException, grpc.RpcError):
            return False
        return ready

    async def generate(self, request: EscalationRequest, timeout_s: float) -> EscalationResponse:
        """The whole answer in one Triton response."""
        exchange = _Exchange(render_prompt(request.messages, self._config.prompt_format))
        async for text, model in self._responses(request, exchange.prompt, stream=False, timeout_s=timeout_s):
            exchange.add(text, model)
        return self._final(request, exchange, streamed=False)

    async def stream(self, request: EscalationRequest, timeout_s: float) -> AsyncIterator[StreamEvent]:
        """A TokenDelta per non-empty Triton response, then the final EscalationResponse."""
        exchange = _Exchange(render_prompt(request.messages, self._config.prompt_format))
        async for text, model in self._responses(request, exchange.prompt, stream=True, timeout_s=timeout_s):
            exchange.add(text, model)
            if text:
                yield TokenDelta(text)
        yield self._final(request, exchange, streamed=True)

    async def close(self) -> None:
        """Closes the channel; calls in flight fail."""
        await self._client.close()

    async def _responses(
        self, request: EscalationRequest, prompt: str, *, stream: bool, timeout_s: float
    ) -> AsyncIterator[tuple[str, ModelRef]]:
        """Each response's text and the model that sent it, until the final one; errors translated."""
        if timeout_s <= 0:
            raise DeadlineExceeded("no time left for the cloud model before the deadline")
        inputs = _inputs(request, prompt, stream)

        async def requests() -> AsyncIterator[dict[str, Any]]:
            # One request, then half-close: Triton still sends every response of a request in flight.
            yield {"model_name": self._config.model, "model_version": self._config.model_version, "inputs": inputs}

        calls = self._client.stream_infer(requests(), stream_timeout=timeout_s)
        try:
            async for result, error in calls:
                if error is not None:
                    raise RuntimeFailure(f"model {self._config.model} failed: {error.message()}") from error
                yield _text(result), _model_ref(result)
                if result.get_response().parameters["triton_final_response"].bool_param:
                    return
        except grpc.RpcError as exc:
            raise _translate(exc, self._config.url) from exc
        finally:
            calls.cancel()  # a consumer that stops early must not leave the call running in Triton

    def _final(self, request: EscalationRequest, exchange: _Exchange, *, streamed: bool) -> EscalationResponse:
        end = time.perf_counter()
        first = exchange.first if exchange.first is not None else end
        text = "".join(exchange.parts)
        completion = exchange.steps if streamed else approximate_tokens(text)
        usage = Usage(prompt_tokens=approximate_tokens(exchange.prompt), completion_tokens=completion)
        length = completion >= request.params.max_tokens
        return EscalationResponse(
            text=text,
            finish_reason=FinishReason.LENGTH if length else FinishReason.STOP,
            model=exchange.model or ModelRef(self._config.model, self._config.model_version or "unknown"),
            usage=usage,
            timings=Timings(
                queue_ms=(first - exchange.started) * 1e3,
                compute_ms=(end - first) * 1e3,
                total_ms=(end - exchange.started) * 1e3,
            ),
        )


def approximate_tokens(text: str) -> int:
    """A token count for models that report none: about four characters per token."""
    return math.ceil(len(text) / _CHARS_PER_TOKEN)


def sampling_parameters(request: EscalationRequest) -> str:
    """The vLLM backend's ``sampling_parameters`` JSON for the request's generation parameters."""
    params = request.params
    values: dict[str, Any] = {
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
    }
    if params.seed is not None:
        values["seed"] = params.seed
    if params.stop:
        values["stop"] = list(params.stop)
    return json.dumps(values)


def _inputs(request: EscalationRequest, prompt: str, stream: bool) -> list[InferInput]:
    return [
        _tensor("text_input", np.array([prompt.encode("utf-8")], dtype=np.object_), "BYTES"),
        _tensor("stream", np.array([stream]), "BOOL"),
        _tensor("sampling_parameters", np.array([sampling_parameters(request).encode()], dtype=np.object_), "BYTES"),
        _tensor("exclude_input_in_output", np.array([True]), "BOOL"),
    ]


def _tensor(name: str, value: np.ndarray[Any, Any], datatype: str) -> InferInput:
    tensor = InferInput(name, list(value.shape), datatype)
    tensor.set_data_from_numpy(value)
    return tensor


def _text(result: Any) -> str:
    output = result.as_numpy("text_output")
    if output is None:
        return ""
    return "".join(item.decode("utf-8") if isinstance(item, bytes) else str(item) for item in output.reshape(-1))


def _model_ref(result: Any) -> ModelRef:
    response = result.get_response()
    return ModelRef(response.model_name, response.model_version or "unknown")


def _translate(exc: grpc.RpcError, url: str) -> ConfrouteError:
    code = exc.code() if isinstance(exc, grpc.aio.AioRpcError) else None
    error = _ERRORS.get(code, RuntimeFailure) if code is not None else RuntimeFailure
    return error(f"Triton at {url}: {code.name if code else 'error'}: {exc.details()}")
