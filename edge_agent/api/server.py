"""``serve_api``: the OpenAI-compatible HTTP server of the edge agent, on the standard library alone.

Each connection gets its own thread (``ThreadingHTTPServer``, HTTP/1.1 keep-alive), so a slow client
never blocks others; the device has one model, though, and the answerer may serialize queries (it
answers one at a time), so concurrent requests mostly wait their turn. ``shutdown()`` stops accepting,
closes idle keep-alive connections, lets requests in flight finish and joins every thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from socketserver import TCPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from confroute.errors import InvalidInput, Unavailable
from edge_agent.answer import Answerer
from edge_agent.api.handler import ApiHandler
from edge_agent.api.metrics import ApiMetrics

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ApiConfig:
    """Where the API listens and what it accepts. ``port`` 0 picks a free port.

    ``request_timeout_s`` bounds every wait on the socket: an idle keep-alive connection, a body that
    arrives too slowly, a client that stops reading a stream. It does not bound generation time.
    ``cors_origins``: web origins (``https://app.example``, or ``*`` for any) whose pages may call the API
    from a browser (CORS); empty: none, browsers keep other origins' pages out.
    """

    host: str = "127.0.0.1"
    port: int = 0
    max_body_bytes: int = 1 << 20
    request_timeout_s: float = 30.0
    cors_origins: tuple[str, ...] = ()
    # When set, every request but ``GET /health`` must carry ``Authorization: Bearer <api_key>`` (else 401).
    api_key: str = dataclasses.field(default="", repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise InvalidInput(f"port must be in [0, 65535], got {self.port}", field="port")
        if self.max_body_bytes < 1:
            raise InvalidInput(f"max_body_bytes must be >= 1, got {self.max_body_bytes}", field="max_body_bytes")
        if not self.request_timeout_s > 0:
            raise InvalidInput(f"request_timeout_s must be > 0, got {self.request_timeout_s}",
                               field="request_timeout_s")
        for origin in self.cors_origins:
            if not (origin == "*" or _is_web_origin(origin)):
                raise InvalidInput(f"a CORS origin is * or http(s)://host[:port] without a path, got {origin!r}",
                                   field="cors_origins")


def _is_web_origin(origin: str) -> bool:
    """``http(s)://host[:port]``, exactly what a browser sends in ``Origin``."""
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not (parts.path or parts.query
                                                                              or parts.fragment)


class ApiHttpServer(ThreadingHTTPServer):
    """The socket server; holds what every request handler needs, and the open connections."""

    daemon_threads = False  # server_close() joins the connection threads
    block_on_close = True

    def __init__(self, answerer: Answerer, config: ApiConfig, metrics: ApiMetrics) -> None:
        self.answerer = answerer
        self.config = config
        self.metrics = metrics
        self.created = int(time.time())
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in config.host:
            self.address_family = socket.AF_INET6
        super().__init__((config.host, config.port), ApiHandler)

    def server_bind(self) -> None:
        """Binds without HTTPServer's reverse DNS lookup of the host (slow, or hanging, on a device)."""
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.config.host, self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that broke outside a request (a reset while idle) is routine; anything else a bug."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            logger.debug("connection from %s ended: %s", client_address, exc)
        else:
            logger.error("connection from %s failed", client_address, exc_info=exc)

    def close_connections(self) -> None:
        """Wakes every connection thread blocked on its socket, so that each ends."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its client
                connection.shutdown(socket.SHUT_RDWR)


class ApiServer:
    """A running API server: ``port``, ``url`` (the OpenAI ``base_url``), ``metrics``, ``shutdown()``."""

    def __init__(self, httpd: ApiHttpServer) -> None:
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"edge-api:{self.port}", daemon=True)
        self._closed = False
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        return self._httpd.config.host

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The base URL to give an OpenAI client (``.../v1``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def metrics(self) -> ApiMetrics:
        return self._httpd.metrics

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stops serving and joins every thread (idempotent); requests in flight finish first."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.close_connections()
        self._httpd.server_close()

    def __enter__(self) -> ApiServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.shutdown()


def serve_api(answerer: Answerer, config: ApiConfig | None = None) -> ApiServer:
    """Listens on ``config.host:config.port`` and serves on a background thread until ``shutdown()``."""
    config = config or ApiConfig()
    try:
        httpd = ApiHttpServer(answerer, config, ApiMetrics())
    except OSError as exc:
        raise Unavailable(f"cannot listen on {config.host}:{config.port}: {exc}") from exc
    return ApiServer(httpd).start()
