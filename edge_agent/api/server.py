"""``serve_api``: the device API served by uvicorn (HTTP/1.1 keep-alive, h11) on a background thread.

The event loop holds every connection (idle keep-alive connections cost no thread); answers run on
worker threads behind the admission gate. Connections beyond ``max_connections`` are answered 503;
requests beyond ``parallel + queue`` are answered 429 with ``Retry-After``. ``shutdown()`` drains: it
stops accepting, closes idle connections, and lets requests in flight finish for up to ``drain_s``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from urllib.parse import urlsplit

from confroute.errors import InvalidInput, Unavailable
from edge_agent.answer import Answerer
from edge_agent.api.admission import Admission
from edge_agent.api.asgi import ApiApp
from edge_agent.api.metrics import ApiMetrics, DeviceSnapshot

logger = logging.getLogger(__name__)

#: The most bytes of request line and headers accepted (beyond: 400 and the connection closes).
MAX_HEADER_BYTES = 64 * 1024


@dataclasses.dataclass(frozen=True)
class ApiConfig:
    """Where the API listens and what it accepts. ``port`` 0 picks a free port.

    ``request_timeout_s`` bounds the wait for a request body and for the next request on an idle
    keep-alive connection. It does not bound generation time.
    ``cors_origins``: web origins (``https://app.example``, or ``*`` for any) whose pages may call the API
    from a browser (CORS); empty: none, browsers keep other origins' pages out.
    ``parallel``: requests answered at once (the device's model answers one at a time); ``queue``: how many
    more may wait for their turn before a request is refused with 429. ``max_connections``: open
    connections (and requests) beyond it are answered 503. ``drain_s``: how long a shutdown waits for
    requests in flight.
    """

    host: str = "127.0.0.1"
    port: int = 0
    max_body_bytes: int = 1 << 20
    request_timeout_s: float = 30.0
    cors_origins: tuple[str, ...] = ()
    # When set, every request but ``GET /health`` must carry ``Authorization: Bearer <api_key>`` (else 401).
    api_key: str = dataclasses.field(default="", repr=False)
    parallel: int = 1
    queue: int = 16
    max_connections: int = 256
    backlog: int = 1024
    drain_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise InvalidInput(f"port must be in [0, 65535], got {self.port}", field="port")
        for name in ("max_body_bytes", "parallel", "max_connections", "backlog"):
            if getattr(self, name) < 1:
                raise InvalidInput(f"{name} must be >= 1, got {getattr(self, name)}", field=name)
        if self.queue < 0:
            raise InvalidInput(f"queue must be >= 0, got {self.queue}", field="queue")
        for name in ("request_timeout_s", "drain_s"):
            if not getattr(self, name) > 0:
                raise InvalidInput(f"{name} must be > 0, got {getattr(self, name)}", field=name)
        for origin in self.cors_origins:
            if not (origin == "*" or _is_web_origin(origin)):
                raise InvalidInput(f"a CORS origin is * or http(s)://host[:port] without a path, got {origin!r}",
                                   field="cors_origins")


def _is_web_origin(origin: str) -> bool:
    """``http(s)://host[:port]``, exactly what a browser sends in ``Origin``."""
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not (parts.path or parts.query
                                                                              or parts.fragment)


class ApiServer:
    """A running API server: ``port``, ``url`` (the OpenAI ``base_url``), ``metrics``, ``shutdown()``."""

    def __init__(self, app: ApiApp, config: ApiConfig, sock: socket.socket) -> None:
        import uvicorn

        from edge_agent.api.protocol import ApiProtocol

        self.app = app
        self.config = config
        self._socket = sock
        self._server = uvicorn.Server(uvicorn.Config(
            app, loop="asyncio", http=ApiProtocol, lifespan="off", log_config=None, access_log=False,
            server_header=False,
            timeout_keep_alive=max(1, round(config.request_timeout_s)), limit_concurrency=config.max_connections,
            backlog=config.backlog, timeout_graceful_shutdown=max(1, round(config.drain_s)),
            h11_max_incomplete_event_size=MAX_HEADER_BYTES))
        self._thread = threading.Thread(target=self._serve, name=f"edge-api:{self.port}", daemon=True)
        self._lock = threading.Lock()
        self._closed = False

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        """The base URL to give an OpenAI client (``.../v1``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def metrics(self) -> ApiMetrics:
        return self.app.metrics

    def start(self) -> ApiServer:
        self._thread.start()
        while not self._server.started and self._thread.is_alive():
            self._thread.join(0.01)
        if not self._server.started:
            raise Unavailable(f"the API server on {self.host}:{self.port} did not start")
        return self

    def shutdown(self) -> None:
        """Drains and stops (idempotent): no new connections, idle ones closed, requests in flight finish."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._server.should_exit = True
        self._thread.join()
        self._socket.close()

    def _serve(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def __enter__(self) -> ApiServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.shutdown()


def serve_api(answerer: Answerer, config: ApiConfig | None = None, *,
              device: Callable[[], DeviceSnapshot] | None = None) -> ApiServer:
    """Listens on ``config.host:config.port`` and serves on a background thread until ``shutdown()``.

    ``device``: what ``/metrics`` reports of the device beside the API (outbox, breaker, policy)."""
    config = config or ApiConfig()
    sock = _listen(config)
    app = ApiApp(answerer, metrics=ApiMetrics(device=device), admission=Admission(config.parallel, config.queue),
                 max_body_bytes=config.max_body_bytes, body_timeout_s=config.request_timeout_s,
                 cors_origins=config.cors_origins, api_key=config.api_key)
    return ApiServer(app, config, sock).start()


def _listen(config: ApiConfig) -> socket.socket:
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((config.host, config.port))
        sock.listen(config.backlog)
    except OSError as exc:
        sock.close()
        raise Unavailable(f"cannot listen on {config.host}:{config.port}: {exc}") from exc
    sock.set_inheritable(True)
    return sock
