"""EscalationService: the edge's unsure queries answered by the cloud model, whole or streamed.

Thin: pb -> :class:`EscalationRequest` -> backend -> pb. The backend gets the client's remaining
deadline, capped by the configured maximum. Each answered escalation is also recorded in the outcome
log, with its metrics and one DEBUG line, in a callback scheduled after the answer is handed to gRPC,
so none of it sits on the request path.

With authentication on, the escalation's ``device_id`` and ``cohort`` must be the caller's own
(PERMISSION_DENIED otherwise), so every recorded outcome names the device that really sent it, and the
device's rate and concurrent escalations are bounded (:class:`DeviceLimits`). Every escalation's sizes
are bounded (:class:`RequestLimits`: INVALID_ARGUMENT beyond them).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType

import grpc
from prometheus_client import Histogram

from cloud_service.identity.access import require_self
from cloud_service.identity.context import current_principal
from cloud_service.identity.record import ESCALATE
from cloud_service.metrics import ServiceMetrics
from cloud_service.ops.devices import Sightings
from cloud_service.ports import InferenceBackend, OutcomeLog
from cloud_service.server.limits import DeviceLimits, InflightLimit, RequestLimits
from cloud_service.server.status import status_for
from cloud_service.server.streams import closing
from confroute.contract.answer import EscalationResponse, stream_event_to_pb
from confroute.contract.enums import AnsweredBy, Decision
from confroute.contract.escalation import EscalationRequest
from confroute.contract.outcome import Latency, OutcomeRecord
from confroute.v1 import common_pb2, escalation_pb2, escalation_pb2_grpc

logger = logging.getLogger(__name__)


class _Call:
    """What the servicer knows of one call when it ends; as a context manager it counts the escalation by
    cohort, edge model version, mode, kind and the status it ends with, and times it (a class rather than
    a generator-based context manager: it runs on every call). A stream whose final answer was handed over
    is OK even if the client then cancels: the device has what it asked for and closes the call (it used
    to count as CANCELLED)."""

    __slots__ = ("_escalation", "_metrics", "_seconds", "_started", "answered")

    def __init__(self, escalation: escalation_pb2.Escalation, metrics: ServiceMetrics, seconds: Histogram) -> None:
        self.answered = False  # the final answer was handed to gRPC
        self._escalation = escalation
        self._metrics = metrics
        self._seconds = seconds
        self._started = 0.0

    def __enter__(self) -> _Call:
        self._started = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        status = grpc.StatusCode.OK
        if exc is not None:
            status = status_for(exc) or grpc.StatusCode.INTERNAL
            if self.answered and status is grpc.StatusCode.CANCELLED:
                status = grpc.StatusCode.OK
        escalation = self._escalation
        self._metrics.observe_escalation(
            escalation.cohort, _mode_label(escalation.mode), status.name,
            edge_model_version=escalation.edge_model.version, shadow=escalation.shadow,
        )
        self._seconds.observe(time.perf_counter() - self._started)


class _BackendCall:
    """Counts the cloud model's failures by the status they are answered with (not cancellations)."""

    __slots__ = ("_metrics",)

    def __init__(self, metrics: ServiceMetrics) -> None:
        self._metrics = metrics

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, Exception):
            status = status_for(exc)
            if status is not grpc.StatusCode.CANCELLED:
                self._metrics.triton_errors.labels((status or grpc.StatusCode.INTERNAL).name).inc()


@dataclass(frozen=True)
class EscalationSettings:
    """The part of the service config the escalation servicer reads."""

    max_deadline_s: float
    retain_text: bool = False
    limits: RequestLimits = field(default_factory=RequestLimits)


class EscalationServicer(escalation_pb2_grpc.EscalationServiceServicer):  # type: ignore[misc]
    """Answers escalations with the inference backend, within an in-flight limit."""

    def __init__(
        self,
        backend: InferenceBackend,
        outcome_log: OutcomeLog,
        limit: InflightLimit,
        metrics: ServiceMetrics,
        settings: EscalationSettings,
        devices: DeviceLimits | None = None,
        sightings: Sightings | None = None,
    ) -> None:
        self._backend = backend
        self._sightings = sightings
        self._devices = devices or DeviceLimits.unlimited()
        self._log = outcome_log
        self._limit = limit
        self._metrics = metrics
        self._settings = settings
        self._queued = metrics.outcome_writes.labels("escalation", "queued")
        self._seconds = {kind: metrics.escalation_seconds.labels(kind) for kind in ("escalation", "shadow")}

    async def Escalate(  # noqa: N802 -- the name is the RPC's
        self, request: escalation_pb2.EscalateRequest, context: grpc.aio.ServicerContext
    ) -> escalation_pb2.EscalateResponse:
        """The whole answer in one response."""
        with self._counted(request.escalation):
            escalation, device = await self._admit(request.escalation)
            with self._devices.escalations.slot(device), self._limit.slot():
                started_at = datetime.now(timezone.utc)
                with self._backend_call():
                    answer = await self._backend.generate(escalation, self._timeout(context))
        self._record_later(escalation, answer, started_at)
        return escalation_pb2.EscalateResponse(answer=answer.to_pb())

    async def EscalateStream(  # noqa: N802
        self, request: escalation_pb2.EscalateStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[escalation_pb2.EscalateStreamResponse]:
        """Token deltas as the model produces them, then the final answer."""
        with self._counted(request.escalation) as call:
            escalation, device = await self._admit(request.escalation)
            with self._devices.escalations.slot(device), self._limit.slot():
                started_at = datetime.now(timezone.utc)
                with self._backend_call():
                    async with closing(self._backend.stream(escalation, self._timeout(context))) as events:
                        async for event in events:
                            if isinstance(event, EscalationResponse):
                                self._record_later(escalation, event, started_at)
                                call.answered = True  # handed to gRPC with the yield below
                            yield stream_event_to_pb(event)

    async def _admit(self, pb: escalation_pb2.Escalation) -> tuple[EscalationRequest, str | None]:
        """The checked request and the calling device (None: authentication is off), or why not."""
        escalation = EscalationRequest.from_pb(pb)
        principal = current_principal()
        require_self(principal, escalation.device_id, escalation.cohort, ESCALATE)
        self._settings.limits.check_escalation(escalation)
        device = principal.principal_id if principal is not None else None
        await self._devices.take(device, ESCALATE)
        if self._sightings is not None:
            self._sightings.note(escalation.device_id, escalation.cohort, escalation.edge_model.version, "escalate",
                                 policy_version=escalation.policy_version)
        return escalation, device

    def _timeout(self, context: grpc.aio.ServicerContext) -> float:
        remaining: float | None = context.time_remaining()
        cap = self._settings.max_deadline_s
        return cap if remaining is None else min(remaining, cap)

    def _counted(self, escalation: escalation_pb2.Escalation) -> _Call:
        """Counts and times the escalation (see :class:`_Call`)."""
        return _Call(escalation, self._metrics, self._seconds["shadow" if escalation.shadow else "escalation"])

    def _backend_call(self) -> _BackendCall:
        """Counts the cloud model's failures by the status they are answered with (not cancellations)."""
        return _BackendCall(self._metrics)

    def _record_later(self, request: EscalationRequest, answer: EscalationResponse, started_at: datetime) -> None:
        finished_at = datetime.now(timezone.utc)
        asyncio.get_running_loop().call_soon(self._record, request, answer, started_at, finished_at)

    def _record(
        self, request: EscalationRequest, answer: EscalationResponse, started_at: datetime, finished_at: datetime
    ) -> None:
        record = outcome_record(request, answer, started_at, finished_at, retain_text=self._settings.retain_text)
        self._log.record(record)
        self._queued.inc()
        timings = answer.timings
        self._metrics.observe_answer_timings(timings.queue_ms, timings.compute_ms, timings.total_ms)
        logger.debug(  # one line per escalation is DEBUG: the outcome log keeps each one
            "escalation %s cohort=%s mode=%s shadow=%s tokens=%d+%d finish=%s cloud_ms=%.1f",
            request.query_id,
            request.cohort,
            request.mode.value,
            request.shadow,
            answer.usage.prompt_tokens,
            answer.usage.completion_tokens,
            answer.finish_reason.value,
            answer.timings.total_ms,
        )


def outcome_record(
    request: EscalationRequest,
    answer: EscalationResponse,
    started_at: datetime,
    finished_at: datetime,
    *,
    retain_text: bool = False,
) -> OutcomeRecord:
    """What the cloud saw of one escalation, for the outcome log.

    A normal escalation is ESCALATED and answered by the CLOUD. A shadow request's answer is not
    shown to the user, so it is logged as the LOCAL decision it shadows, answered by the EDGE. The
    edge's own latency is not known here: ``edge_ms`` is 0 and both ``cloud_ms`` and ``total_ms``
    are the server's time. Texts are kept only with ``retain_text``.
    """
    decision, answered_by = (
        (Decision.LOCAL, AnsweredBy.EDGE) if request.shadow else (Decision.ESCALATED, AnsweredBy.CLOUD)
    )
    server_ms = answer.timings.total_ms
    return OutcomeRecord(
        query_id=request.query_id,
        device_id=request.device_id,
        cohort=request.cohort,
        edge_model=request.edge_model,
        cloud_model=answer.model,
        mode=request.mode,
        decision=decision,
        answered_by=answered_by,
        latency=Latency(edge_ms=0.0, total_ms=server_ms, cloud_ms=server_ms),
        started_at=started_at,
        finished_at=finished_at,
        signals=request.signals,
        policy_version=request.policy_version,
        shadow=request.shadow,
        propensity=request.propensity,
        prompt_text=_prompt_text(request) if retain_text else None,
        answer_text=answer.text if retain_text else None,
        edge_draft_text=request.draft_answer if retain_text else None,
    )


def _prompt_text(request: EscalationRequest) -> str:
    return "\n".join(f"{message.role.value}: {message.content}" for message in request.messages)


@functools.lru_cache(maxsize=64)
def _mode_label(mode: int) -> str:
    try:
        name: str = common_pb2.RoutingMode.Name(mode)
    except ValueError:
        return "unknown"
    return name.removeprefix("ROUTING_MODE_").lower()
