"""The ASGI application of the device API: routes, API key, CORS, body limits, JSON and SSE responses.

CORS: a request whose ``Origin`` is one of the configured ``cors_origins`` (or any, with ``*``) gets
``Access-Control-Allow-Origin`` on its response, whatever the status, and the routing headers exposed to
the page; a preflight (``OPTIONS`` with ``Access-Control-Request-Method``) on a known route is answered
204 with the route's methods. Other origins get no CORS headers, so browsers keep their pages out. With a
list of origins (not ``*``) every response carries ``Vary: Origin``, so a shared cache never hands one
origin's answer to another.

Answers run on worker threads behind the admission gate (:mod:`edge_agent.api.admission`); the event loop
only parses, frames and sends, so many idle or slow connections cost no threads. A request whose body is
refused unread (too large, no length, too slow) is answered with ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import unquote
from uuid import uuid4

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from confroute.errors import RuntimeFailure
from confroute.version import version
from edge_agent.answer import AgentAnswer, Answerer, TextDelta, TokenLogprob
from edge_agent.api.admission import Admission
from edge_agent.api.errors import SERVER_ERROR, HttpError, reply_for
from edge_agent.api.feedback import feedback
from edge_agent.api.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from edge_agent.api.metrics import ApiMetrics
from edge_agent.api.pump import Pump
from edge_agent.api.request import ChatRequest, parse_chat_request
from edge_agent.api.spec import openapi_document
from edge_agent.api.stream import sse_events
from edge_agent.api.wire import ROUTING_HEADERS, Reply, completion, encode, model_list, model_object, routing_headers

logger = logging.getLogger(__name__)

Headers = dict[str, str]
Item = TextDelta | AgentAnswer
MODELS_PREFIX = "/v1/models/"
CORS_MAX_AGE_S = 600
CORS_DEFAULT_HEADERS = "Authorization, Content-Type"
EXPOSED_HEADERS = ", ".join(("X-Request-Id", *ROUTING_HEADERS))  # what a page may read of a response
HTTP_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class _ClientGone(Exception):
    """The client closed the connection before its request was read; nothing can be sent."""


class ApiApp:
    """The OpenAI-compatible API over ``answerer``, as an ASGI application."""

    def __init__(self, answerer: Answerer, *, metrics: ApiMetrics, admission: Admission, max_body_bytes: int,
                 body_timeout_s: float, cors_origins: tuple[str, ...], api_key: str) -> None:
        self.answerer = answerer
        self.metrics = metrics
        self.admission = admission
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.cors_origins = cors_origins
        self.api_key = api_key
        self.created = int(time.time())
        self._openapi = encode(openapi_document(answerer.model_ids, version()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan is off; websockets are not served
            return
        request = Request(scope, receive)
        label, methods = _route(request.url.path)
        status = 0

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        cors = _cors_headers(self.cors_origins, request.headers.get("origin"))
        try:
            response = await self._respond(request, label, methods, cors)
            await response(scope, receive, counted)
        except _ClientGone:
            status = status or 499  # nginx's "client closed request"
        finally:
            self.metrics.request(label, status or 499)

    async def _respond(self, request: Request, label: str, methods: dict[str, Route],
                       cors: Headers) -> Response:
        started = time.monotonic()
        try:
            if _is_preflight(request, methods, cors):
                response = _preflight(request, methods, cors)
                response.headers.update(cors)
                return response
            if request.method not in HTTP_METHODS:
                raise HttpError(501, f"Unsupported method ({request.method!r})", kind=SERVER_ERROR)
            handler = methods.get("GET" if request.method == "HEAD" else request.method)
            if handler is None:
                raise _no_route(request.method, request.url.path, methods)
            if label != "/health":
                require_api_key(self.api_key, request.headers.get("authorization"))
            response = await handler(self, request, started)
        except _ClientGone:
            raise
        except Exception as exc:
            response = _error_response(exc, _declares_body(request) and not _body_read(request))
        response.headers.update(cors)
        return response

    # -- routes -------------------------------------------------------------------------------------

    async def chat(self, request: Request, started: float) -> Response:
        chat = parse_chat_request(await self._read_body(request), self.answerer.model_ids)
        reply = Reply(f"chatcmpl-{uuid4().hex}", int(time.time()), chat.model)
        self.admission.admit()
        pump: Pump[Item] = Pump(lambda: self.answerer.stream(chat.messages, chat.params), self.admission,
                                name=f"answer:{reply.completion_id[-8:]}").start()
        items = aiter(pump)
        try:
            first = await anext(items, None)  # errors before the first item still get a proper status
            if first is None:
                raise RuntimeFailure("the answerer's stream ended before any text or answer")
            self.metrics.first_token(time.monotonic() - started)
            if chat.stream:
                return self._stream(chat, reply, first, items, pump, started)
            answer, tokens = await _collect(first, items)
        except BaseException:
            pump.close()
            raise
        self._count_answer(answer, started)
        body = completion(reply, answer, tokens if chat.logprobs else None)
        return _json(200, body, {"X-Request-Id": reply.completion_id, **dict(routing_headers(answer))})

    def _stream(self, chat: ChatRequest, reply: Reply, first: Item, items: AsyncIterator[Item], pump: Pump[Item],
                started: float) -> Response:
        known = dict(routing_headers(first)) if isinstance(first, AgentAnswer) else {"X-Confroute-Side": first.side}

        async def body() -> AsyncIterator[bytes]:
            try:
                async for event in sse_events(reply, first, items, include_usage=chat.include_usage,
                                              with_logprobs=chat.logprobs,
                                              on_answer=lambda answer: self._count_answer(answer, started)):
                    yield event
            finally:
                pump.close()  # a client that went away stops the generation

        return StreamingResponse(body(), 200, {**SSE_HEADERS, "X-Request-Id": reply.completion_id, **known},
                                 media_type="text/event-stream; charset=utf-8")

    async def models(self, request: Request, started: float) -> Response:
        return _json(200, model_list(self.answerer.model_ids, self.created))

    async def model(self, request: Request, started: float) -> Response:
        model_id = unquote(request.url.path[len(MODELS_PREFIX):])
        if model_id not in self.answerer.model_ids:
            raise HttpError(404, f"The model `{model_id}` does not exist", param="model", code="model_not_found")
        return _json(200, model_object(model_id, self.created))

    async def health(self, request: Request, started: float) -> Response:
        return _json(200, {"status": "ok", "models": list(self.answerer.model_ids)})

    async def openapi(self, request: Request, started: float) -> Response:
        return Response(self._openapi, 200, media_type="application/json")

    async def scrape(self, request: Request, started: float) -> Response:
        self.metrics.set_queue(waiting=self.admission.waiting, running=self.admission.running)
        return Response(self.metrics.render(), 200, media_type=METRICS_CONTENT_TYPE)

    # -- plumbing -----------------------------------------------------------------------------------

    async def _read_body(self, request: Request) -> bytes:
        headers = request.headers
        if "transfer-encoding" in headers or "content-length" not in headers:
            raise HttpError(411, "send the request body with a Content-Length header", code="length_required")
        try:
            length = int(headers["content-length"])
        except ValueError as exc:
            raise HttpError(400, "the Content-Length header is not a number") from exc
        if length > self.max_body_bytes:
            raise HttpError(413, f"the request body is {length} bytes; this server accepts at most "
                            f"{self.max_body_bytes}", code="request_too_large")
        try:
            body = await asyncio.wait_for(request.body(), self.body_timeout_s)
        except TimeoutError as exc:
            raise HttpError(408, "timed out reading the request body", code="timeout") from exc
        except ClientDisconnect as exc:
            raise _ClientGone from exc
        if len(body) < length:
            raise _ClientGone("the connection closed before the whole body arrived")
        return body

    def _count_answer(self, answer: AgentAnswer, started: float) -> None:
        self.metrics.answer(answer, time.monotonic() - started)


Route = Callable[[ApiApp, Request, float], Awaitable[Response]]
ROUTES: dict[str, dict[str, Route]] = {
    "/v1/chat/completions": {"POST": ApiApp.chat},
    "/v1/models": {"GET": ApiApp.models},
    "/health": {"GET": ApiApp.health},
    "/metrics": {"GET": ApiApp.scrape},
    "/v1/feedback": {"POST": feedback},
    "/openapi.json": {"GET": ApiApp.openapi},
}
MODEL_ROUTE = MODELS_PREFIX + "{model}"


async def _collect(first: Item, items: AsyncIterator[Item]) -> tuple[AgentAnswer, list[TokenLogprob]]:
    """The final AgentAnswer of a stream whose first item is ``first``, and the logprobs of its deltas."""
    tokens: list[TokenLogprob] = []
    item: Item | None = first
    while not isinstance(item, AgentAnswer):
        if item is None:
            raise RuntimeFailure("the answer stream ended without its final answer")
        tokens.extend(item.logprobs)
        item = await anext(items, None)
    return item, tokens


def require_api_key(api_key: str, authorization: str | None) -> None:
    """401 unless no key is configured or ``authorization`` is ``Bearer <api_key>`` (compared in constant time)."""
    if not api_key:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), api_key.encode()):
        raise HttpError(401, "this API needs an API key: Authorization: Bearer <key>", code="invalid_api_key",
                        headers=(("WWW-Authenticate", "Bearer"),))


def _json(status: int, body: Any, headers: Headers | None = None) -> Response:
    return Response(encode(body), status, headers, media_type="application/json")


def _error_response(exc: Exception, close: bool) -> Response:
    reply = reply_for(exc)
    headers = dict(reply.headers)
    if close:
        headers["Connection"] = "close"
    return _json(reply.status, reply.body(), headers)


def _declares_body(request: Request) -> bool:
    headers = request.headers
    return "transfer-encoding" in headers or headers.get("content-length", "0").strip() != "0"


def _body_read(request: Request) -> bool:
    return hasattr(request, "_body")  # starlette keeps the body once read


def _route(path: str) -> tuple[str, dict[str, Route]]:
    """The route's label (for metrics; "other" when unknown) and its handlers by method."""
    if path in ROUTES:
        return path, ROUTES[path]
    if path.startswith(MODELS_PREFIX) and len(path) > len(MODELS_PREFIX):
        return MODEL_ROUTE, {"GET": ApiApp.model}
    return "other", {}


def _no_route(method: str, path: str, methods: dict[str, Route]) -> HttpError:
    if not methods:
        return HttpError(404, f"Invalid URL ({method} {path})", code="unknown_url")
    allowed = ", ".join(sorted(methods))
    return HttpError(405, f"{method} is not allowed on {path}; use {allowed}", code="method_not_allowed",
                     headers=(("Allow", allowed),))


def _cors_headers(allowed: tuple[str, ...], origin: str | None) -> Headers:
    if not allowed or (not origin and "*" in allowed):
        return {}
    if "*" in allowed:
        return {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": EXPOSED_HEADERS}
    if not origin or origin not in allowed:
        return {"Vary": "Origin"}  # with a list, every answer depends on the Origin: caches must key on it
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin", "Access-Control-Expose-Headers": EXPOSED_HEADERS}


def _is_preflight(request: Request, methods: dict[str, Route], cors: Headers) -> bool:
    return (request.method == "OPTIONS" and bool(methods) and "Access-Control-Allow-Origin" in cors
            and "access-control-request-method" in request.headers)


def _preflight(request: Request, methods: dict[str, Route], cors: Headers) -> Response:
    requested = request.headers.get("access-control-request-headers", "").strip()
    return Response(b"", 204, {
        "Access-Control-Allow-Methods": ", ".join(sorted({*methods, "OPTIONS"})),
        "Access-Control-Allow-Headers": requested or CORS_DEFAULT_HEADERS,
        "Access-Control-Max-Age": str(CORS_MAX_AGE_S),
    })
