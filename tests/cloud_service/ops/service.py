"""A cloud service for the monitoring tests: the real gRPC server with its ``/metrics`` endpoint, on loopback
ports it picks, an injected backend (no Triton needed) and in-memory stores, on its own event-loop thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

import grpc
from prometheus_client import make_wsgi_app

from cloud_service.config import ServiceConfig
from cloud_service.identity.service import IdentityServices
from cloud_service.metrics import METRICS_PATH, MetricsEndpoint, ServiceMetrics, create_metrics, serve_wsgi
from cloud_service.ops.devices import DeviceRecord, Sightings
from cloud_service.ops.http_api import status_routes
from cloud_service.ops.loop_monitor import LoopMonitor, LoopSnapshot
from cloud_service.ops.loop_source import Window
from cloud_service.ops.status import StatusSources
from cloud_service.policies.state import NO_ENTRY, Rollout, RolloutState
from cloud_service.server.app import Dependencies, build_server
from cloud_service.store.schema import Partition
from confroute.contract import (
    ChatMessage,
    ChatRole,
    EscalationRequest,
    EscalationResponse,
    FinishReason,
    GenerationParams,
    Label,
    LabelSource,
    ModelRef,
    OutcomeRecord,
    Policy,
    PolicyRequest,
    RoutingMode,
    Thresholds,
    Timings,
    Usage,
)
from confroute.contract.metadata import PROBE_VERSION_KEY
from confroute.errors import Unavailable
from confroute.v1 import escalation_pb2, escalation_pb2_grpc, fleet_pb2_grpc, outcomes_pb2, outcomes_pb2_grpc
from tests.cloud_service.memory_stores import MemoryPolicyStore
from tests.cloud_service.server.conftest import MemoryOutcomeLog
from tests.factories import COHORT, EDGE, escalated, outcome, outcomes, routed
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
    refresh: Callable[[], LoopSnapshot]  # one pass of the service's loop monitor, now

    @property
    def escalation(self) -> Any:
        return escalation_pb2_grpc.EscalationServiceStub(self.channel)  # type: ignore[no-untyped-call]

    @property
    def outcomes(self) -> Any:
        return outcomes_pb2_grpc.OutcomesServiceStub(self.channel)  # type: ignore[no-untyped-call]

    @property
    def fleet(self) -> Any:
        return fleet_pb2_grpc.FleetServiceStub(self.channel)  # type: ignore[no-untyped-call]

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"


@contextmanager
def monitored_service(
    backend: Any | None = None,
    store: MemoryPolicyStore | None = None,
    authenticator: Callable[[AsyncExitStack], Awaitable[IdentityServices | None]] | None = None,
    recalibrations: list[dict[str, Any]] | None = None,
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
    monitor = LoopMonitor(metrics, store, sightings=Sightings(), directory=MemoryDevices(),
                          source=MemoryLoopSource(log, recalibrations or []))

    async def ready() -> bool:
        return True

    async def start() -> tuple[int, MetricsEndpoint]:
        auth = await authenticator(stack) if authenticator is not None else None
        deps = Dependencies(backend or SyntheticBackend(), log, store, metrics, auth, monitor.sightings)
        server = build_server(config, deps)
        await server.start(ready, config.readiness_interval_s)
        stack.push_async_callback(server.stop, config.grace_s)
        sources = StatusSources(metrics, ready, store, config.max_inflight, monitor=monitor)
        routes = {METRICS_PATH: make_wsgi_app(metrics.registry),
                  **status_routes(asyncio.get_running_loop(), sources,
                                 auth.authenticator if auth is not None else None)}
        endpoint = serve_wsgi("127.0.0.1", 0, routes)
        stack.callback(endpoint.close)
        return server.port, endpoint

    try:
        port, endpoint = loop.run(start())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield RunningMonitoredService(port, endpoint.port, metrics, channel, lambda: loop.run(monitor.refresh()))
    finally:
        loop.run(stack.aclose())
        loop.close()


class MemoryDevices:
    """A device directory in a dict (``RedisDeviceDirectory`` is tested on Redis)."""

    def __init__(self) -> None:
        self.held: dict[str, DeviceRecord] = {}

    async def save(self, sightings: Sequence[DeviceRecord]) -> None:
        for record in sightings:
            known = self.held.get(record.device_id)
            self.held[record.device_id] = known.merged(record) if known else record

    async def records(self) -> list[DeviceRecord]:
        return list(self.held.values())


class MemoryLoopSource:
    """Windows of what the in-memory log stored (``RedisLoopSource`` is tested on Redis); ``recalibrations``
    (newest first, each naming its ``edge_model_version`` and ``cohort``) stand for the provenance stream."""

    def __init__(self, log: MemoryOutcomeLog, recalibrations: list[dict[str, Any]]) -> None:
        self._log = log
        self._recalibrations = recalibrations

    async def partitions(self) -> list[Partition]:
        found = {Partition(r.edge_model.version, r.cohort) for r in self._log.stored.values()}
        return sorted(found, key=lambda p: (p.edge_model_version, p.cohort))

    async def window(self, partition: Partition, count: int) -> Window:
        records = [r for r in self._log.stored.values()
                   if (r.edge_model.version, r.cohort) == (partition.edge_model_version, partition.cohort)]
        mine = [{k: v for k, v in entry.items() if k not in ("edge_model_version", "cohort")}
                for entry in self._recalibrations
                if (entry["edge_model_version"], entry["cohort"]) == (partition.edge_model_version, partition.cohort)]
        return Window(tuple(records[-count:]), {}, tuple(mine))


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


def labelled_traffic(service: RunningMonitoredService, n: int = 300) -> list[OutcomeRecord]:
    """``n`` routed outcomes of three devices in beta, the labelled ones labelled by user feedback (what a
    device may assert), uploaded; and a policy read by device-2 that reports its probe version."""
    records = [replace(r, label_source=LabelSource.USER_FEEDBACK) if r.label is not Label.UNKNOWN else r
               for r in routed(n, threshold=0.3, shadow_rate=0.5, seed=5, devices=3, prefix="lab")]
    upload(service, records)
    request = PolicyRequest(EDGE, COHORT, "device-2").to_get_pb()
    service.fleet.GetPolicy(request, timeout=5, metadata=((PROBE_VERSION_KEY, "probe-7"),))
    return records


HISTORY = [{"edge_model_version": EDGE.version, "cohort": COHORT, "id": "1-0", "at": "2026-12-07T10:00:00+00:00",
            "status": "published", "version": "p-live", "reason": "",
            "provenance": {"target": {"kind": "rate", "rate": 0.3}, "records": 300}}]


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
