"""A cloud service for the monitoring tests: the real gRPC server with its ``/metrics`` endpoint, on loopback
ports it picks, an injected backend (no Triton needed) and in-memory stores, on its own event-loop thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import grpc
from prometheus_client import make_wsgi_app

from cloud_service.config import ServiceConfig
from cloud_service.identity.service import IdentityServices
from cloud_service.metrics import METRICS_PATH, MetricsEndpoint, ServiceMetrics, create_metrics, serve_wsgi
from cloud_service.ops.http_api import status_routes
from cloud_service.ops.status import StatusSources
from cloud_service.policies.state import NO_ENTRY, Rollout, RolloutState
from cloud_service.server.app import Dependencies, build_server
from confroute.contract import (
    ChatMessage,
    ChatRole,
    EscalationRequest,
    EscalationResponse,
    FinishReason,
    GenerationParams,
    ModelRef,
    OutcomeRecord,
    Policy,
    RoutingMode,
    Thresholds,
    Timings,
    Usage,
)
from confroute.errors import Unavailable
from confroute.v1 import escalation_pb2, escalation_pb2_grpc, outcomes_pb2, outcomes_pb2_grpc
from tests.cloud_service.memory_stores import MemoryPolicyStore
from tests.cloud_service.server.conftest import MemoryOutcomeLog
from tests.factories import COHORT, EDGE, escalated, outcome, outcomes
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

    @property
    def outcomes(self) -> Any:
        return outcomes_pb2_grpc.OutcomesServiceStub(self.channel)  # type: ignore[no-untyped-call]

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"


@contextmanager
def monitored_service(
    backend: Any | None = None,
    store: MemoryPolicyStore | None = None,
    authenticator: Callable[[AsyncExitStack], Awaitable[IdentityServices | None]] | None = None,
) -> Iterator[RunningMonitoredService]:
    """Starts the service with its HTTP endpoint (``/metrics``, the status API, the dashboard), as
    ``cloud_service.server.runner`` wires them; stops everything on the way out."""
    loop = LoopThread("monitored-service")
    stack = AsyncExitStack()
    config = ServiceConfig(listen="127.0.0.1:0", metrics_listen="", readiness_interval_s=0.1, grace_s=0.5)
    metrics = create_metrics()
    log = MemoryOutcomeLog()
    metrics.watch_outcome_log(log)
    store = store or MemoryPolicyStore()

    async def ready() -> bool:
        return True

    async def start() -> tuple[int, MetricsEndpoint]:
        auth = await authenticator(stack) if authenticator is not None else None
        server = build_server(config, Dependencies(backend or SyntheticBackend(), log, store, metrics, auth))
        await server.start(ready, config.readiness_interval_s)
        stack.push_async_callback(server.stop, config.grace_s)
        sources = StatusSources(metrics, ready, store, config.max_inflight)
        routes = {METRICS_PATH: make_wsgi_app(metrics.registry),
                  **status_routes(asyncio.get_running_loop(), sources,
                                 auth.authenticator if auth is not None else None)}
        endpoint = serve_wsgi("127.0.0.1", 0, routes)
        stack.callback(endpoint.close)
        return server.port, endpoint

    try:
        port, endpoint = loop.run(start())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield RunningMonitoredService(port, endpoint.port, metrics, channel)
    finally:
        loop.run(stack.aclose())
        loop.close()


def escalate(service: RunningMonitoredService, query_id: str, *, cohort: str = "beta") -> bool:
    """One escalation (a ``fail-`` id fails UNAVAILABLE); whether it succeeded."""
    request = EscalationRequest(
        query_id=query_id, device_id="device-1", cohort=cohort, edge_model=ModelRef("smollm2", "b1"),
        messages=(ChatMessage(ChatRole.USER, "hi"),), params=GenerationParams(max_tokens=4), mode=RoutingMode.PRE,
    ).to_pb()
    try:
        service.escalation.Escalate(escalation_pb2.EscalateRequest(escalation=request), timeout=5)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.UNAVAILABLE and query_id.startswith("fail"), exc
        return False
    return True


def upload(service: RunningMonitoredService, records: list[OutcomeRecord]) -> None:
    """Uploads ``records`` as one batch and waits for its ack."""
    request = outcomes_pb2.UploadOutcomesRequest(batch_id="batch-1", records=[r.to_pb() for r in records])
    acks = list(service.outcomes.UploadOutcomes(iter([request]), timeout=5))
    assert acks[0].stored == len(records)


def synthetic_traffic(service: RunningMonitoredService, *, ok: int = 6, failed: int = 2) -> None:
    """Escalations (``failed`` of them UNAVAILABLE) and uploads: beta escalates 1 of 4, gamma 1 of 2."""
    for i in range(ok):
        escalate(service, f"ok-{i}")
    for i in range(failed):
        escalate(service, f"fail-{i}")
    upload(service, [*outcomes(3, prefix="b-local"), escalated("b-esc"),
                     outcome("g-local", cohort="gamma"), escalated("g-esc", cohort="gamma")])


def live_policy() -> Policy:
    return Policy(policy_version="p-live", edge_model=EDGE, cohort=COHORT, mode=RoutingMode.POST,
                  thresholds=Thresholds(pre=0.5, post=0.4, hybrid_low=0.3, hybrid_high=0.8),
                  issued_at=datetime(2026, 12, 1, tzinfo=timezone.utc))


class RolloutStore(MemoryPolicyStore):
    """An in-memory store that also tells who runs what, as RedisPolicyStore does."""

    async def rollout(self, edge_model_version: str, cohort: str) -> Rollout:
        policy = self.policies.get((edge_model_version, cohort))
        if policy is None:
            return Rollout(NO_ENTRY, RolloutState(), {})
        return Rollout("1-0", RolloutState(control=policy.policy_version, canary="p-next", share=0.1), {})
