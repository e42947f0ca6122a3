"""The cloud service's gRPC server: the three confroute services (and the operators' PolicyAdminService
when the policy store keeps rollouts), health checking and reflection.

:func:`build_server` wires injected dependencies (backend, outcome log, policy store, metrics) into
one ``grpc.aio`` server behind the error interceptor, binds it and returns a :class:`CloudServer`.
Health (``grpc.health.v1``): the overall status ("") and EscalationService say NOT_SERVING until the
backend's readiness check first passes, then follow it; OutcomesService and FleetService need only Redis
(open before the server starts) and say SERVING while the process serves, so a readiness probe on them
keeps uploads and policy watches flowing while only Triton is down. At shutdown everything turns
NOT_SERVING before calls in flight get ``grace_s`` to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # type: ignore[import-untyped]
from grpc_reflection.v1alpha import reflection  # type: ignore[import-untyped]

from cloud_service.bundles.pointers import BundleCatalog
from cloud_service.bundles.servicer import BundleServicer
from cloud_service.config import ServiceConfig
from cloud_service.identity.service import IdentityServices, server_credentials
from cloud_service.metrics import ServiceMetrics
from cloud_service.operator.admin import RolloutStore, StoreAdmin
from cloud_service.ops.devices import Sightings
from cloud_service.outcomes.labels import LabelLog
from cloud_service.ports import InferenceBackend, OutcomeLog, PolicyStore
from cloud_service.server.escalation import EscalationServicer, EscalationSettings
from cloud_service.server.fleet import FleetServicer
from cloud_service.server.interceptor import ErrorInterceptor
from cloud_service.server.limits import DeviceLimits, InflightLimit, PerKeySlots, RequestLimits
from cloud_service.server.operator import PolicyAdminServicer
from cloud_service.server.outcomes import OutcomesServicer
from confroute.errors import Unavailable
from confroute.v1 import (
    bundle_pb2,
    bundle_pb2_grpc,
    escalation_pb2,
    escalation_pb2_grpc,
    fleet_pb2,
    fleet_pb2_grpc,
    operator_pb2,
    operator_pb2_grpc,
    outcomes_pb2,
    outcomes_pb2_grpc,
)

logger = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[bool]]
SERVICE_NAMES: tuple[str, ...] = (
    escalation_pb2.DESCRIPTOR.services_by_name["EscalationService"].full_name,
    outcomes_pb2.DESCRIPTOR.services_by_name["OutcomesService"].full_name,
    fleet_pb2.DESCRIPTOR.services_by_name["FleetService"].full_name,
)
BACKEND_HEALTH_NAMES: tuple[str, ...] = ("", SERVICE_NAMES[0])  # follow Triton
STORE_HEALTH_NAMES: tuple[str, ...] = SERVICE_NAMES[1:]  # outcomes and fleet: Redis only
OPERATOR_SERVICE = operator_pb2.DESCRIPTOR.services_by_name["PolicyAdminService"].full_name
BUNDLE_SERVICE = bundle_pb2.DESCRIPTOR.services_by_name["BundleService"].full_name
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True)
class Dependencies:
    """What the servicers run on; built by the caller, closed by the caller."""

    backend: InferenceBackend
    outcome_log: OutcomeLog
    policy_store: PolicyStore
    metrics: ServiceMetrics
    identity: IdentityServices | None = None  # None: calls are not authenticated (a development service)
    sightings: Sightings | None = None  # None: devices' last sightings are not noted (cloud_service.ops.devices)
    bundles: BundleCatalog | None = None  # None: no BundleService (no --bundle-dir; docs/bundle-delivery.md)


class CloudServer:
    """A bound, not yet started server; :meth:`start`, then :meth:`stop` (idempotent)."""

    def __init__(self, server: grpc.aio.Server, health_servicer: health.aio.HealthServicer, port: int) -> None:
        self._server = server
        self._health = health_servicer
        self.port = port
        self._readiness: asyncio.Task[None] | None = None

    async def start(self, ready: ReadinessCheck, interval_s: float) -> None:
        """Starts serving and the task that keeps health in step with ``ready``."""
        await self._set_health(_NOT_SERVING, BACKEND_HEALTH_NAMES)
        await self._set_health(_SERVING, STORE_HEALTH_NAMES)
        await self._server.start()
        self._readiness = asyncio.create_task(self._follow(ready, interval_s), name="readiness")

    async def stop(self, grace_s: float) -> None:
        """NOT_SERVING at once, then up to ``grace_s`` for calls in flight, then cancels the rest."""
        await self._health.enter_graceful_shutdown()
        if self._readiness is not None:
            self._readiness.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._readiness
            self._readiness = None
        await self._server.stop(grace_s)

    async def wait_for_termination(self) -> None:
        """Returns once the server has stopped."""
        await self._server.wait_for_termination()

    async def _follow(self, ready: ReadinessCheck, interval_s: float) -> None:
        serving: bool | None = None
        while True:
            now = await ready()
            if now != serving:
                logger.info("backend %s", "ready: SERVING" if now else "not ready: NOT_SERVING")
                await self._set_health(_SERVING if now else _NOT_SERVING, BACKEND_HEALTH_NAMES)
                serving = now
            await asyncio.sleep(interval_s)

    async def _set_health(self, status: int, names: tuple[str, ...]) -> None:
        for name in names:
            await self._health.set(name, status)


def server_options(config: ServiceConfig) -> list[tuple[str, int]]:
    """Channel arguments: room for bursts of Watch calls (by default grpc cancels calls beyond ~1,000-3,000 not
    yet accepted: a burst of 10,000 Watch calls left ~4,000 connected), bounded messages and no
    shared ports."""
    return [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.server.max_pending_requests", config.max_pending_requests),
        ("grpc.server.max_pending_requests_hard_limit", 2 * config.max_pending_requests),
        ("grpc.so_reuseport", 0),  # a port already taken must fail loudly, not be shared
    ]


def build_server(config: ServiceConfig, deps: Dependencies) -> CloudServer:
    """The server with every service added and ``config.listen`` bound (port 0: a free port)."""
    authenticator = deps.identity.authenticator if deps.identity is not None else None
    interceptor = ErrorInterceptor(authenticator, deps.metrics.count_refusal)
    server = interceptor.serving(grpc.aio.server(options=server_options(config)))  # handlers wrapped once
    sizes = RequestLimits(config.max_tokens, config.max_messages, config.max_prompt_bytes, config.max_batch_records)
    settings = EscalationSettings(max_deadline_s=config.max_deadline_s, retain_text=config.retain_text, limits=sizes)
    devices = DeviceLimits(
        deps.identity.rate if deps.identity is not None else None,
        PerKeySlots(config.max_device_escalations, "escalations"),
        PerKeySlots(config.max_device_watches, "policy watches"),
    )
    limit = InflightLimit(config.max_inflight, on_refused=deps.metrics.escalations_refused.inc)
    deps.metrics.watch_inflight(lambda: limit.in_use)
    deps.metrics.watch_policy_watchers(lambda: float(getattr(deps.policy_store, "watchers", math.nan)))
    escalation = EscalationServicer(deps.backend, deps.outcome_log, limit, deps.metrics, settings, devices,
                                    deps.sightings)
    # The generated *_pb2_grpc modules are untyped.
    escalation_pb2_grpc.add_EscalationServiceServicer_to_server(escalation, server)  # type: ignore[no-untyped-call]
    labels = deps.outcome_log if isinstance(deps.outcome_log, LabelLog) else None
    outcomes = OutcomesServicer(deps.outcome_log, deps.metrics, sizes, devices, labels, deps.sightings)
    outcomes_pb2_grpc.add_OutcomesServiceServicer_to_server(outcomes, server)  # type: ignore[no-untyped-call]
    fleet = FleetServicer(deps.policy_store, authenticator, devices.watches, deps.sightings)
    fleet_pb2_grpc.add_FleetServiceServicer_to_server(fleet, server)  # type: ignore[no-untyped-call]
    names = SERVICE_NAMES
    if isinstance(deps.policy_store, RolloutStore):  # the operators' policy commands (a store that keeps rollouts)
        admin = PolicyAdminServicer(StoreAdmin(deps.policy_store))
        operator_pb2_grpc.add_PolicyAdminServiceServicer_to_server(admin, server)  # type: ignore[no-untyped-call]
        names = (*names, OPERATOR_SERVICE)
    if deps.bundles is not None:  # whole-bundle delivery
        bundles = BundleServicer(deps.bundles)
        bundle_pb2_grpc.add_BundleServiceServicer_to_server(bundles, server)  # type: ignore[no-untyped-call]
        names = (*names, BUNDLE_SERVICE)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    credentials = server_credentials(config)
    try:
        if credentials is None:
            port = server.add_insecure_port(config.listen)
        else:
            port = server.add_secure_port(config.listen, credentials)
    except RuntimeError as exc:
        raise Unavailable(f"cannot listen on {config.listen}: {exc}") from exc
    return CloudServer(server, health_servicer, port)
