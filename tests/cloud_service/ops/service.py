"""A cloud service for the monitoring tests: the real gRPC server with its ``/metrics`` endpoint, on loopback
ports it picks, an injected backend (no Triton needed) and in-memory stores, on its own event-loop thread."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import grpc

from cloud_service.config import ServiceConfig
from cloud_service.metrics import ServiceMetrics, create_metrics, serve_metrics
from cloud_service.server.app import Dependencies, build_server
from confroute.contract import EscalationResponse, FinishReason, ModelRef, Timings, Usage
from confroute.errors import Unavailable
from confroute.v1 import escalation_pb2_grpc
from tests.cloud_service.memory_stores import MemoryPolicyStore
from tests.cloud_service.server.conftest import MemoryOutcomeLog
from tests.harness import LoopThread


class SyntheticBackend:
    """Answers at once, reporting ``queue_ms`` queued and ``compute_ms`` computed; a query whose id starts
    with ``fail`` is UNAVAILABLE."""

    def __init__(self, queue_ms: float = 30.0, compute_ms: float = 10.0) -> None:
        self._timings = Timings(queue_ms, compute_ms, queue_ms + compute_ms)

    async def generate(self, request: Any, timeout_s: float) -> EscalationResponse:
        if request.query_id.startswith("fail"):
            raise Unavailable("synthetic outage")
        return EscalationResponse("ok", FinishReason.STOP, ModelRef("synthetic", "1"), Usage(3, 1), self._timings)

    async def stream(self, request: Any, timeout_s: float) -> AsyncIterator[Any]:
        yield await self.generate(request, timeout_s)

    async def close(self) -> None:
        """Nothing to release."""


@dataclass
class RunningMonitoredService:
    """The service's addresses and instruments."""

    grpc_port: int
    metrics_port: int
    metrics: ServiceMetrics
    channel: grpc.Channel

    @property
    def escalation(self) -> Any:
        return escalation_pb2_grpc.EscalationServiceStub(self.channel)  # type: ignore[no-untyped-call]


@contextmanager
def monitored_service(backend: Any | None = None) -> Iterator[RunningMonitoredService]:
    """Starts the service and its ``/metrics``; stops both on the way out."""
    loop = LoopThread("monitored-service")
    stack = AsyncExitStack()
    config = ServiceConfig(listen="127.0.0.1:0", metrics_listen="", readiness_interval_s=0.1, grace_s=0.5)
    metrics = create_metrics()
    log = MemoryOutcomeLog()
    metrics.watch_outcome_log(log)
    endpoint = serve_metrics(metrics, "127.0.0.1", 0)

    async def start() -> int:
        async def ready() -> bool:
            return True

        server = build_server(config, Dependencies(backend or SyntheticBackend(), log, MemoryPolicyStore(), metrics))
        await server.start(ready, config.readiness_interval_s)
        stack.push_async_callback(server.stop, config.grace_s)
        return server.port

    try:
        port = loop.run(start())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield RunningMonitoredService(port, endpoint.port, metrics, channel)
    finally:
        loop.run(stack.aclose())
        endpoint.close()
        loop.close()
