"""The cloud model behind Triton, reached over Triton's gRPC streaming API with ``tritonclient``'s stubs.

The request speaks the tensor interface of Triton's vLLM backend (and of the bundled echo model):
``text_input`` (the chat rendered by :mod:`cloud_service.backends.prompt`), ``stream``,
``sampling_parameters`` (JSON: max_tokens, temperature, top_p, seed, stop) and
``exclude_input_in_output`` = true; ``text_output`` comes back. Decoupled models accept only the
streaming gRPC API. :meth:`TritonBackend.generate` sends its requests over one long-lived stream
shared by all of them (:mod:`cloud_service.backends.multiplex`: a stream per request would cost more
CPU than the rest of an escalation). :meth:`TritonBackend.stream` opens one ``ModelStreamInfer`` call
per request, with the caller's timeout as its gRPC deadline: a token stream is long enough for that
cost not to matter, and a consumer that leaves early must stop the generation in Triton, which only
cancelling the call does. Messages are built and read by :mod:`cloud_service.backends.wire`.

What the interface does not report is estimated, and documented here:

- usage: ``prompt_tokens`` is ``ceil(len(prompt) / 4)`` characters per token; ``completion_tokens``
  counts the non-empty streamed responses (the vLLM backend sends one per decoding step), or for a
  whole answer ``ceil(len(text) / 4)``;
- ``finish_reason`` is LENGTH when ``completion_tokens`` reached ``max_tokens``, else STOP;
- timings are measured here: ``queue_ms`` until Triton's first response (its queue plus the prefill:
  the closest a client can see), ``compute_ms`` from then to the last response, ``total_ms`` the call.

The model must flag its last data response final (``triton_final_response``), as the vLLM backend
and the echo model do; for :meth:`TritonBackend.stream`, a call that simply ends is taken as finished too.

This module (with :mod:`~cloud_service.backends.multiplex` for the shared stream) is the one boundary
for grpc errors, translated by gRPC status code: UNAVAILABLE -> :class:`Unavailable`,
DEADLINE_EXCEEDED -> :class:`DeadlineExceeded`, RESOURCE_EXHAUSTED -> :class:`Overloaded`, anything
else (and errors a model reports inside the stream, which carry no code) -> :class:`RuntimeFailure`.
A shared stream that breaks, whatever its status, fails its requests with :class:`Unavailable`.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from tritonclient.grpc import MAX_GRPC_MESSAGE_SIZE, service_pb2, service_pb2_grpc

from cloud_service.backends.multiplex import MultiplexedStream
from cloud_service.backends.prompt import PromptFormat, render_prompt
from cloud_service.backends.wire import STREAM_METHOD, TextCodec, decode_stream_response, is_final, text_of
from confroute.backoff import Backoff
from confroute.contract.answer import EscalationResponse, StreamEvent, Timings, TokenDelta, Usage
from confroute.contract.common import ModelRef
from confroute.contract.enums import FinishReason
from confroute.contract.escalation import EscalationRequest, GenerationParams
from confroute.errors import ConfrouteError, DeadlineExceeded, Overloaded, RuntimeFailure, Unavailable

_CHARS_PER_TOKEN = 4
_ERRORS: dict[grpc.StatusCode, type[ConfrouteError]] = {
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Overloaded,
}


@dataclass(frozen=True)
class TritonBackendConfig:
    """Where the model is served and how prompts are rendered for it.

    After the shared stream to Triton breaks, it is reopened no sooner than a jittered delay that starts
    at ``reconnect_base_s`` and doubles, up to ``reconnect_cap_s``, while Triton stays unreachable.
    """

    url: str  # host:port of Triton's gRPC endpoint
    model: str
    model_version: str = ""  # empty: the version Triton's version policy serves
    prompt_format: PromptFormat = "chatml"
    ready_timeout_s: float = 1.0
    reconnect_base_s: float = 0.05
    reconnect_cap_s: float = 1.0


@dataclass
class _Exchange:
    """What one request to Triton produced, gathered while its responses arrive."""

    prompt: str
    codec: TextCodec
    started: float = field(default_factory=time.perf_counter)
    first: float | None = None
    parts: list[str] = field(default_factory=list)
    steps: int = 0
    model: ModelRef | None = None
    last_text: str = ""  # the text of the latest response

    def add(self, response: Any) -> bool:
        """Takes one ``ModelInferResponse``; True if it was the last."""
        if self.first is None:
            self.first = time.perf_counter()
        self.model = self.codec.model_of(response)
        self.last_text = text_of(response)
        if self.last_text:
            self.parts.append(self.last_text)
            self.steps += 1
        return is_final(response)


class TritonBackend:
    """An :class:`~cloud_service.ports.InferenceBackend` on one long-lived gRPC channel to Triton.

    Build it with :meth:`create` inside the running event loop; :meth:`close` releases the channel.
    """

    def __init__(self, config: TritonBackendConfig, channel: grpc.aio.Channel) -> None:
        self._config = config
        self._channel = channel
        self._stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        # Requests go out already serialized (see wire), so no request serializer.
        self._open_call = channel.stream_stream(STREAM_METHOD, response_deserializer=decode_stream_response)
        self._codec = TextCodec(config.model, config.model_version)
        backoff = Backoff(config.reconnect_base_s, config.reconnect_cap_s).schedule()
        self._shared = MultiplexedStream(self._open_call, url=config.url, model=config.model, backoff=backoff)

    @classmethod
    async def create(cls, config: TritonBackendConfig) -> TritonBackend:
        """Opens the channel (lazily connected: Triton need not be up yet)."""
        options = [
            ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_SIZE),
            ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_SIZE),
            # gRPC's own reconnection backoff grows to 120 s; a restarted Triton should be found sooner.
            ("grpc.max_reconnect_backoff_ms", int(config.reconnect_cap_s * 1000)),
        ]
        return cls(config, grpc.aio.insecure_channel(config.url, options=options))

    @property
    def config(self) -> TritonBackendConfig:
        """Where this backend sends requests."""
        return self._config

    async def ready(self) -> bool:
        """Whether Triton answers and the model is loaded; never raises."""
        request = service_pb2.ModelReadyRequest(name=self._config.model, version=self._config.model_version)
        try:
            reply = await self._stub.ModelReady(request, timeout=self._config.ready_timeout_s)
        except grpc.RpcError:
            return False
        return bool(reply.ready)

    async def generate(self, request: EscalationRequest, timeout_s: float) -> EscalationResponse:
        """The whole answer in one Triton response, over the shared stream."""
        if timeout_s <= 0:
            raise DeadlineExceeded("no time left for the cloud model before the deadline")
        exchange = _Exchange(render_prompt(request.messages, self._config.prompt_format), self._codec)
        message = self._codec.encode(exchange.prompt, stream=False, sampling_parameters=_parameters(request.params))
        await self._shared.infer(message, exchange, timeout_s)
        return self._final(request, exchange, streamed=False)

    async def stream(self, request: EscalationRequest, timeout_s: float) -> AsyncIterator[StreamEvent]:
        """A TokenDelta per non-empty Triton response, then the final EscalationResponse."""
        if timeout_s <= 0:
            raise DeadlineExceeded("no time left for the cloud model before the deadline")
        exchange = _Exchange(render_prompt(request.messages, self._config.prompt_format), self._codec)
        message = self._codec.encode(exchange.prompt, stream=True, sampling_parameters=_parameters(request.params))
        call = self._open_call(iter((message,)), timeout=timeout_s)
        try:
            while (reply := await call.read()) is not grpc.aio.EOF:
                if reply.error_message:
                    raise RuntimeFailure(f"model {self._config.model} failed: {reply.error_message}")
                last = _add(exchange, reply.infer_response, self._config.model)
                if exchange.last_text:
                    yield TokenDelta(exchange.last_text)
                if last:
                    break
        except grpc.RpcError as exc:
            raise _translate(exc, self._config.url) from exc
        finally:
            call.cancel()  # a consumer that stops early must not leave the call running in Triton
        yield self._final(request, exchange, streamed=True)

    async def close(self) -> None:
        """Ends the shared stream and closes the channel; calls in flight fail."""
        await self._shared.close()
        await self._channel.close()

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
    return _parameters(request.params).decode()


@functools.lru_cache(maxsize=1024)
def _parameters(params: GenerationParams) -> bytes:
    # Devices send a handful of distinct parameter sets: encode each once.
    values: dict[str, Any] = {
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
    }
    if params.seed is not None:
        values["seed"] = params.seed
    if params.stop:
        values["stop"] = list(params.stop)
    return json.dumps(values).encode()


def _add(exchange: _Exchange, response: Any, model: str) -> bool:
    try:
        return exchange.add(response)
    except ValueError as exc:  # UnicodeDecodeError is one
        raise RuntimeFailure(f"model {model} sent a response that cannot be read: {exc}") from exc


def _translate(exc: grpc.RpcError, url: str) -> ConfrouteError:
    code = exc.code() if isinstance(exc, grpc.aio.AioRpcError) else None
    error = _ERRORS.get(code, RuntimeFailure) if code is not None else RuntimeFailure
    return error(f"Triton at {url}: {code.name if code else 'error'}: {exc.details()}")
