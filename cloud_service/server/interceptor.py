"""The server interceptor that answers domain errors with their gRPC status (see :mod:`.status`).

It wraps every method's behaviour, whatever its shape: unary or streaming responses, and streaming
handlers written as async generators or as coroutines that call ``context.write`` (health's Watch).
Aborts that a servicer made itself (``context.abort``) and cancellations pass through untouched.

Requests are decoded inside the wrapper rather than by gRPC, so that bytes which are not a valid
message (proto3 strings must be UTF-8) are INVALID_ARGUMENT (field ``request``) instead of gRPC's
UNKNOWN with an error logged.

With an :class:`~cloud_service.identity.authenticator.Authenticator`, every call to a confroute service
(``/confroute.``; health and reflection stay open) is authenticated first, in the wrapper, where the call's
``auth_context`` is at hand: no credential, or an unknown, expired or revoked one, is UNAUTHENTICATED
before the request is decoded; the caller is then set for the servicer (:mod:`cloud_service.identity.context`).
A :class:`~confroute.errors.CredentialFlood` (too many invalid credentials from the peer's address) is
counted with the reason ``credential_flood``. A :class:`~confroute.errors.RateLimited` refusal carries its
retry delay in the trailing metadata
``retry-after-ms``, which the device honours.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from cloud_service.identity.authenticator import Authenticator
from cloud_service.identity.context import set_caller
from cloud_service.server.status import details_for, status_for
from confroute.errors import ConfrouteError, CredentialFlood, InvalidInput, RateLimited

logger = logging.getLogger(__name__)

Behavior = Callable[..., Any]
Decode = Callable[[Any], Any]
Authenticate = Callable[[grpc.aio.ServicerContext], Awaitable[None]]
OnRefusal = Callable[[str, str, bool, str], None]  # (method, status, rate limited, reason): counts a refusal
REFUSALS = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
                      grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INVALID_ARGUMENT})
RETRY_AFTER_KEY = "retry-after-ms"
_AUTHENTICATED_PREFIX = "/confroute."


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc ships no type stubs
    """Maps ConfrouteError subclasses through the status table; anything else is INTERNAL, logged once.

    The wrapped handler is built once per method and reused (building it costs tens of microseconds,
    paid on every call otherwise).
    """

    def __init__(self, authenticator: Authenticator | None = None, on_refusal: OnRefusal | None = None) -> None:
        self._wrapped: dict[str, tuple[Any, Any]] = {}
        self._authenticate = _authenticating(authenticator) if authenticator is not None else None
        self._on_refusal = on_refusal

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        handler_call_details: Any,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        authenticate = self._authenticate if method.startswith(_AUTHENTICATED_PREFIX) else None
        wrapped = _wrap_handler(handler, method, authenticate, self._on_refusal)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


def _authenticating(authenticator: Authenticator) -> Authenticate:
    async def authenticate(context: grpc.aio.ServicerContext) -> None:
        metadata = context.invocation_metadata() or ()
        caller = authenticator.cached(metadata, context.auth_context)
        if caller is None:
            caller = await authenticator.authenticate(metadata, context.auth_context, context.peer())
        set_caller(caller)

    return authenticate


def _wrap_handler(
    handler: Any, method: str, authenticate: Authenticate | None = None, on_refusal: OnRefusal | None = None
) -> Any:
    """The handler with its behaviour wrapped by :func:`_wrap` (or the handler itself if it has none)."""
    for kind, factory in _FACTORIES.items():
        behavior = getattr(handler, kind)
        if behavior is not None:
            decode = _decoder(handler.request_deserializer)
            return factory(
                _wrap(behavior, method, decode, authenticate, on_refusal, streaming_request=kind.startswith("stream_")),
                request_deserializer=None,  # decoded in the wrapper, see the module docstring
                response_serializer=handler.response_serializer,
            )
    return handler


_FACTORIES: dict[str, Callable[..., Any]] = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def _wrap(
    behavior: Behavior,
    method: str,
    decode: Decode,
    authenticate: Authenticate | None,
    on_refusal: OnRefusal | None,
    *,
    streaming_request: bool,
) -> Behavior:
    def arguments(request: Any) -> Any:
        return _decoded(request, decode) if streaming_request else decode(request)

    if inspect.isasyncgenfunction(behavior):

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                if authenticate is not None:
                    await authenticate(context)
                async for response in behavior(arguments(request), context):
                    yield response
            except Exception as exc:  # translated or reported, never swallowed
                await _abort(exc, context, method, on_refusal)

        return stream

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            if authenticate is not None:
                await authenticate(context)
            return await behavior(arguments(request), context)
        except Exception as exc:
            await _abort(exc, context, method, on_refusal)

    return call


def _decoder(deserialize: Decode | None) -> Decode:
    def decode(raw: Any) -> Any:
        if deserialize is None:
            return raw
        try:
            return deserialize(raw)
        except DecodeError as exc:
            raise InvalidInput(f"the request is not a valid message: {exc}", field="request") from exc

    return decode


async def _decoded(requests: AsyncIterator[Any], decode: Decode) -> AsyncIterator[Any]:
    async for raw in requests:
        yield decode(raw)


async def _abort(
    exc: Exception, context: grpc.aio.ServicerContext, method: str, on_refusal: OnRefusal | None = None
) -> None:
    """Ends the call with the status for ``exc`` (counting refusals with ``on_refusal``); always raises."""
    if isinstance(exc, (grpc.aio.AbortError, asyncio.CancelledError)):
        raise exc
    code = status_for(exc)
    if code is None or not isinstance(exc, ConfrouteError):
        logger.error("internal error in %s", method, exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")
    else:
        if on_refusal is not None and code in REFUSALS:
            flood = isinstance(exc, CredentialFlood)
            reason = "credential_flood" if flood else ""
            on_refusal(method, code.name, isinstance(exc, RateLimited) and not flood, reason)
        if isinstance(exc, RateLimited):
            context.set_trailing_metadata(((RETRY_AFTER_KEY, str(max(1, round(exc.retry_after_s * 1000)))),))
        await context.abort(code, details_for(exc))
    raise AssertionError("context.abort returned")  # pragma: no cover -- abort always raises

