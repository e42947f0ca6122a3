"""Running the cloud service until SIGINT or SIGTERM, then shutting down gracefully.

The outcome log and policy store come from a factory (an async context manager), so that the
process's wiring of Redis lives in one place (``cloud_service.cli``) and tests can pass their own.
The HTTP endpoint (``metrics_listen``) serves ``/metrics`` and the operators' status API and dashboard
(:mod:`cloud_service.ops.http_api`). Shutdown order: the HTTP endpoint stops, health NOT_SERVING and the
gRPC server drains (``grace_s``), the outcome log flushes and closes, and the Triton channel closes last.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass

from prometheus_client import make_wsgi_app

from cloud_service.backends.triton import TritonBackend, TritonBackendConfig
from cloud_service.bundles.pointers import open_bundle_catalog
from cloud_service.config import ServiceConfig
from cloud_service.identity.service import open_identity
from cloud_service.metrics import METRICS_PATH, ServiceMetrics, create_metrics, serve_wsgi
from cloud_service.ops.http_api import status_routes
from cloud_service.ops.loop_monitor import MonitorSettings, open_loop_monitor
from cloud_service.ops.status import StatusSources
from cloud_service.ports import OutcomeLog, PolicyStore
from cloud_service.server.app import CloudServer, Dependencies, build_server
from confroute.settings import split_address

logger = logging.getLogger(__name__)

Stores = tuple[OutcomeLog, PolicyStore]
StoresFactory = Callable[[ServiceConfig], AbstractAsyncContextManager[Stores]]


@dataclass(frozen=True)
class RunningService:
    """What :func:`start_service` started."""

    server: CloudServer
    metrics: ServiceMetrics
    metrics_port: int | None  # None: no /metrics endpoint


async def serve(config: ServiceConfig, open_stores: StoresFactory) -> None:
    """Serves until SIGINT or SIGTERM."""
    async with AsyncExitStack() as stack:
        running = await start_service(config, open_stores, stack)
        logger.info("cloud service listening on port %d (triton %s)", running.server.port, config.triton_url)
        await _signalled()
        logger.info("shutting down (grace %.1f s)", config.grace_s)


async def start_service(config: ServiceConfig, open_stores: StoresFactory, stack: AsyncExitStack) -> RunningService:
    """Builds and starts everything; ``stack`` undoes it in reverse order."""
    backend = await TritonBackend.create(
        TritonBackendConfig(url=config.triton_url, model=config.triton_model, prompt_format=config.prompt_format)
    )
    stack.push_async_callback(backend.close)
    outcome_log, policy_store = await stack.enter_async_context(open_stores(config))
    metrics = create_metrics()
    metrics.watch_outcome_log(outcome_log)
    identity = await stack.enter_async_context(open_identity(config))
    if identity is None:
        logger.warning("authentication is off: any caller may escalate, upload and watch (docs/identity.md)")
    # Before the server: at shutdown the server drains first, then the monitor flushes what its calls noted.
    monitor = await stack.enter_async_context(
        open_loop_monitor(outcome_log, policy_store, metrics, MonitorSettings.of(config)))
    bundles = await stack.enter_async_context(open_bundle_catalog(config))
    deps = Dependencies(backend, outcome_log, policy_store, metrics, identity, monitor.sightings, bundles)
    server = build_server(config, deps)
    await server.start(backend.ready, config.readiness_interval_s)
    stack.push_async_callback(server.stop, config.grace_s)
    metrics_port = None
    if config.metrics_listen:
        host, port = split_address(config.metrics_listen, "metrics_listen")
        sources = StatusSources(metrics, backend.ready, policy_store, config.max_inflight, monitor=monitor)
        routes = {METRICS_PATH: make_wsgi_app(metrics.registry),
                  **status_routes(asyncio.get_running_loop(), sources,
                                 identity.authenticator if identity is not None else None)}
        endpoint = serve_wsgi(host, port, routes)
        stack.callback(endpoint.close)
        metrics_port = endpoint.port
        logger.info("metrics on http://%s:%d/metrics, status on /api/status and /dashboard", host, metrics_port)
    return RunningService(server, metrics, metrics_port)


async def _signalled() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
