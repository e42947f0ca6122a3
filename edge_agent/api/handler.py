"""The HTTP request handler: routes, body limits, JSON and SSE responses, errors in OpenAI's shape.

CORS: a request whose ``Origin`` is one of the configured ``cors_origins`` (or any, with ``*``) gets
``Access-Control-Allow-Origin`` on its response, whatever the status, and the routing headers exposed to
the page; a preflight (``OPTIONS`` with ``Access-Control-Request-Method``) on a known route is answered
204 with the route's methods. Other origins get no CORS headers, so browsers keep their pages out. With a
list of origins (not ``*``) every response carries ``Vary: Origin``, so a shared cache never hands one
origin's answer to another.

One handler instance serves one connection (HTTP/1.1 keep-alive) on its own thread. A request whose
body is refused unread (too large, no length, unknown route) is answered, then the connection is
closed after a short, bounded drain of what the client still sends (so that it reads the error
instead of a connection reset).
"""

from __future__ import annotations

import hmac
import logging
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterable
from contextlib import closing, suppress
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit
from uuid import uuid4

from confroute.errors import RuntimeFailure
from edge_agent.answer import AgentAnswer
from edge_agent.api.errors import ErrorReply, HttpError, reply_for, status_reply
from edge_agent.api.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from edge_agent.api.request import ChatRequest, parse_chat_request
from edge_agent.api.stream import sse_events
from edge_agent.api.wire import ROUTING_HEADERS, Reply, completion, encode, model_list, model_object, routing_headers

if TYPE_CHECKING:
    from edge_agent.api.server import ApiHttpServer

logger = logging.getLogger(__name__)

Headers = Iterable[tuple[str, str]]
LINGER_S = 2.0  # at most this long draining an unread body before closing
LINGER_IDLE_S = 0.25
MODELS_PREFIX = "/v1/models/"
CORS_MAX_AGE_S = 600
CORS_DEFAULT_HEADERS = "Authorization, Content-Type"
EXPOSED_HEADERS = ", ".join(("X-Request-Id", *ROUTING_HEADERS))  # what a page may read of a response


class _ClientGone(Exception):
    """The client closed the connection or stopped reading; nothing more can be sent."""


class ApiHandler(BaseHTTPRequestHandler):
    """Serves the OpenAI-compatible API of ``self.server`` (an :class:`ApiHttpServer`)."""

    protocol_version = "HTTP/1.1"
    server_version = "confroute-edge-api"
    server: ApiHttpServer
    _cors: tuple[tuple[str, str], ...] = ()  # CORS headers every response of this request carries

    def setup(self) -> None:
        """Applies the configured socket timeout (idle keep-alive, slow bodies, stalled readers)."""
        super().setup()
        self.connection.settimeout(self.server.config.request_timeout_s)

    def handle_one_request(self) -> None:
        """One request, whose line and headers must arrive within ``request_timeout_s`` in all: the socket
        timeout bounds each read only, so a client sending a byte at a time (slow loris) would hold the
        connection and its thread for ever."""
        deadline = threading.Timer(self.server.config.request_timeout_s, self._hang_up)
        deadline.daemon = True
        self._header_deadline = deadline
        deadline.start()
        try:
            super().handle_one_request()
        finally:
            deadline.cancel()

    def _hang_up(self) -> None:
        self.close_connection = True
        with suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def do_GET(self) -> None:
        """Every method goes through the same routing, which answers 404/405 itself."""
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET  # noqa: N815

    def _dispatch(self) -> None:
        self._header_deadline.cancel()  # the headers are in; the body and the answer have their own bounds
        self._started = time.monotonic()
        self._status = 0
        self._headers_sent = False
        self._body_pending = self._declares_body()
        self._cors = self._cors_headers()
        label, methods = _route(urlsplit(self.path).path)
        try:
            if self._is_preflight(methods):
                self._preflight(methods)
                return
            handler = methods.get(self.command)
            if handler is None:
                raise _no_route(self.command, self.path, methods)
            if label != "/health":
                require_api_key(self.server.config.api_key, self.headers.get("Authorization"))
            handler(self)
        except Exception as exc:
            self._fail(exc)
        finally:
            self.server.metrics.request(label, self._status)

    def _fail(self, exc: Exception) -> None:
        if isinstance(exc, _ClientGone) or self._headers_sent:
            if not isinstance(exc, _ClientGone):
                logger.error("internal error after the response began", exc_info=exc)
            self.close_connection = True
            self._status = self._status or 499  # nginx's "client closed request"
            return
        try:
            self._send_reply(reply_for(exc))
        except _ClientGone:
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors http.server finds itself (bad request line, headers too large, unknown method)."""
        self.close_connection = True
        self._headers_sent = self._body_pending = False
        with suppress(_ClientGone):
            self._send_reply(status_reply(code, message or HTTPStatus(code).phrase))
        self.server.metrics.request("other", code)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        """Access and parse logs go to DEBUG (http.server writes them to stderr)."""
        logger.debug("%s %s", self.address_string(), format % args)

    # -- routes -------------------------------------------------------------------------------------

    def _chat(self) -> None:
        request = parse_chat_request(self._read_body(), self.server.answerer.model_ids)
        reply = Reply(f"chatcmpl-{uuid4().hex}", int(time.time()), request.model)
        if request.stream:
            self._chat_stream(request, reply)
            return
        answer = self.server.answerer.answer(request.messages, request.params)
        self._count_answer(answer)
        self._send_json(200, completion(reply, answer), [("X-Request-Id", reply.completion_id),
                                                          *routing_headers(answer)])

    def _chat_stream(self, request: ChatRequest, reply: Reply) -> None:
        items = self.server.answerer.stream(request.messages, request.params)
        try:
            first = next(items, None)  # errors before the first item still get a proper status
            if first is None:
                raise RuntimeFailure("the answerer's stream ended before any text or answer")
            known = routing_headers(first) if isinstance(first, AgentAnswer) else [("X-Confroute-Side", first.side)]
            self._begin(200, [("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-cache"),
                              ("Transfer-Encoding", "chunked"), ("X-Request-Id", reply.completion_id), *known])
            events = sse_events(reply, first, items, include_usage=request.include_usage,
                                on_answer=self._count_answer)
            with closing(events):
                for event in events:
                    self._write(b"%x\r\n%s\r\n" % (len(event), event))
            self._write(b"0\r\n\r\n")
        finally:
            if isinstance(items, Generator):
                items.close()  # a client that went away stops the generation

    def _models(self) -> None:
        self._send_json(200, model_list(self.server.answerer.model_ids, self.server.created))

    def _model(self) -> None:
        model_id = unquote(urlsplit(self.path).path[len(MODELS_PREFIX):])
        if model_id not in self.server.answerer.model_ids:
            raise HttpError(404, f"The model `{model_id}` does not exist", param="model", code="model_not_found")
        self._send_json(200, model_object(model_id, self.server.created))

    def _health(self) -> None:
        self._send_json(200, {"status": "ok", "models": list(self.server.answerer.model_ids)})

    def _metrics(self) -> None:
        self._send(200, self.server.metrics.render().encode("utf-8"), METRICS_CONTENT_TYPE)

    # -- CORS ----------------------------------------------------------------------------------------

    def _cors_headers(self) -> tuple[tuple[str, str], ...]:
        origin = self.headers.get("Origin")
        allowed = self.server.config.cors_origins
        if not allowed or (not origin and "*" in allowed):
            return ()
        if "*" in allowed:
            return (("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", EXPOSED_HEADERS))
        vary = (("Vary", "Origin"),)  # with a list, every answer depends on the Origin: caches must key on it
        if not origin or origin not in allowed:
            return vary
        return (("Access-Control-Allow-Origin", origin), *vary, ("Access-Control-Expose-Headers", EXPOSED_HEADERS))

    def _is_preflight(self, methods: dict[str, Route]) -> bool:
        allowed = any(name == "Access-Control-Allow-Origin" for name, _ in self._cors)
        return (self.command == "OPTIONS" and bool(methods) and allowed
                and "Access-Control-Request-Method" in self.headers)

    def _preflight(self, methods: dict[str, Route]) -> None:
        requested = self.headers.get("Access-Control-Request-Headers", "").strip()
        self._send(204, b"", "text/plain", [
            ("Access-Control-Allow-Methods", ", ".join(sorted({*methods, "OPTIONS"}))),
            ("Access-Control-Allow-Headers", requested or CORS_DEFAULT_HEADERS),
            ("Access-Control-Max-Age", str(CORS_MAX_AGE_S)),
        ])

    # -- request and response plumbing --------------------------------------------------------------

    def _declares_body(self) -> bool:
        return "Transfer-Encoding" in self.headers or self.headers.get("Content-Length", "0").strip() != "0"

    def _read_body(self) -> bytes:
        if "Transfer-Encoding" in self.headers or "Content-Length" not in self.headers:
            raise HttpError(411, "send the request body with a Content-Length header", code="length_required")
        try:
            length = int(self.headers["Content-Length"])
        except ValueError as exc:
            raise HttpError(400, "the Content-Length header is not a number") from exc
        limit = self.server.config.max_body_bytes
        if length > limit:
            raise HttpError(413, f"the request body is {length} bytes; this server accepts at most {limit}",
                            code="request_too_large")
        try:
            body = self.rfile.read(max(length, 0))
        except TimeoutError as exc:
            raise HttpError(408, "timed out reading the request body", code="timeout") from exc
        except OSError as exc:
            raise _ClientGone from exc
        if len(body) < length:
            raise _ClientGone("the connection closed before the whole body arrived")
        self._body_pending = False
        return body

    def _count_answer(self, answer: AgentAnswer) -> None:
        self.server.metrics.answer(answer, time.monotonic() - self._started)

    def _send_reply(self, reply: ErrorReply) -> None:
        self._send_json(reply.status, reply.body(), reply.headers)
        if self._body_pending:
            self._linger()

    def _send_json(self, status: int, body: Any, headers: Headers = ()) -> None:
        self._send(status, encode(body), "application/json", headers)

    def _send(self, status: int, payload: bytes, content_type: str, headers: Headers = ()) -> None:
        with_body = getattr(self, "command", None) != "HEAD"
        self._begin(status, [("Content-Type", content_type), ("Content-Length", str(len(payload))), *headers])
        self._write(payload if with_body else b"")

    def _begin(self, status: int, headers: Headers) -> None:
        self.send_response(status)
        for name, value in (*headers, *self._cors):
            self.send_header(name, value)
        if self._body_pending or self.close_connection:
            self.send_header("Connection", "close")
        self._status = status
        self._headers_sent = True
        try:
            self.end_headers()
        except OSError as exc:
            raise _ClientGone from exc

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
        except OSError as exc:
            raise _ClientGone from exc

    def _linger(self) -> None:
        """Drains (bounded) a body the client is still sending, so that closing does not reset the
        connection before the client reads the error."""
        deadline = time.monotonic() + LINGER_S
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(LINGER_IDLE_S)
            while time.monotonic() < deadline and self.connection.recv(1 << 16):
                pass
        except OSError:
            pass


Route = Callable[[ApiHandler], None]
ROUTES: dict[str, dict[str, Route]] = {
    "/v1/chat/completions": {"POST": ApiHandler._chat},
    "/v1/models": {"GET": ApiHandler._models},
    "/health": {"GET": ApiHandler._health},
    "/metrics": {"GET": ApiHandler._metrics},
}
MODEL_ROUTE = MODELS_PREFIX + "{model}"


def require_api_key(api_key: str, authorization: str | None) -> None:
    """401 unless no key is configured or ``authorization`` is ``Bearer <api_key>`` (compared in constant time)."""
    if not api_key:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), api_key.encode()):
        raise HttpError(401, "this API needs an API key: Authorization: Bearer <key>", code="invalid_api_key",
                        headers=(("WWW-Authenticate", "Bearer"),))


def _route(path: str) -> tuple[str, dict[str, Route]]:
    """The route's label (for metrics; "other" when unknown) and its handlers by method."""
    if path in ROUTES:
        return path, ROUTES[path]
    if path.startswith(MODELS_PREFIX) and len(path) > len(MODELS_PREFIX):
        return MODEL_ROUTE, {"GET": ApiHandler._model}
    return "other", {}


def _no_route(method: str, target: str, methods: dict[str, Route]) -> HttpError:
    if not methods:
        return HttpError(404, f"Invalid URL ({method} {target})", code="unknown_url")
    allowed = ", ".join(sorted(methods))
    return HttpError(405, f"{method} is not allowed on {urlsplit(target).path}; use {allowed}",
                     code="method_not_allowed", headers=(("Allow", allowed),))
