"""OutcomesService: devices stream batches of outcome records; each is acked once durably stored.

A batch's invalid records are rejected one by one (the device drops them) while the valid ones are
stored; the ack is sent only after :meth:`OutcomeLog.store` returned, so a device that deletes what an
ack names never loses a record. A log that cannot be reached ends the call with UNAVAILABLE and the
device sends the batch again later (the log is idempotent by ``query_id``).

What steers thresholds is checked here: a record's label may come only from a source a device can
witness (:data:`DEVICE_LABEL_SOURCES`: never a reference answer or the cloud judge), and with
authentication on, a record for another device than the caller is rejected (the device drops it).
Batches are bounded (``max_batch_records``), rate limited per device, and checked off the event loop.

``UploadLabels`` takes labels learned after a record was sent (user feedback): each record of a batch is
the device's record of the query with its label set; only ``user_feedback`` is accepted there, from the
device the record names. The label is written once per query id (``LabelLog``); the ack counts first
labels as stored and lists the queries labelled before as duplicates.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc

from cloud_service.identity.access import require_scope
from cloud_service.identity.context import current_principal
from cloud_service.identity.record import UPLOAD, Principal
from cloud_service.metrics import ServiceMetrics
from cloud_service.ops.devices import Sightings
from cloud_service.outcomes.labels import LabelLog, uploaded_label
from cloud_service.ports import OutcomeLog, StoreResult
from cloud_service.server.limits import DeviceLimits, RequestLimits
from confroute.contract.enums import AnsweredBy, Label, LabelSource
from confroute.contract.outcome import OutcomeRecord
from confroute.contract.upload import OutcomeAck, OutcomeBatch, RejectedOutcome
from confroute.errors import PermissionDenied, Unavailable
from confroute.v1 import outcomes_pb2, outcomes_pb2_grpc

_NOTHING_STORED = StoreResult(stored=(), duplicates=())
#: Which records of a batch the caller may upload, and a rejection for each other (admissible, admissible_labels).
Admit = Callable[[tuple[OutcomeRecord, ...], "Principal | None"],
                 tuple[tuple[OutcomeRecord, ...], tuple[RejectedOutcome, ...]]]
DEVICE_LABEL_SOURCES = frozenset({LabelSource.NONE, LabelSource.USER_FEEDBACK, LabelSource.AGREEMENT})


class OutcomesServicer(outcomes_pb2_grpc.OutcomesServiceServicer):  # type: ignore[misc]
    """Stores uploaded batches in the outcome log and acknowledges each."""

    def __init__(
        self,
        outcome_log: OutcomeLog,
        metrics: ServiceMetrics,
        limits: RequestLimits | None = None,
        devices: DeviceLimits | None = None,
        labels: LabelLog | None = None,
        sightings: Sightings | None = None,
    ) -> None:
        self._log = outcome_log
        self._labels = labels
        self._sightings = sightings
        self._metrics = metrics
        self._limits = limits or RequestLimits()
        self._devices = devices

    async def UploadOutcomes(  # noqa: N802 -- the name is the RPC's
        self,
        request_iterator: AsyncIterator[outcomes_pb2.UploadOutcomesRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[outcomes_pb2.UploadOutcomesResponse]:
        """One ack per batch, in order, each after the batch's records are stored."""
        async for batch, records, rejected in self._batches(request_iterator, admissible):
            if self._sightings is not None:
                self._sightings.note_uploads(records, context.invocation_metadata() or ())
            result = await self._log.store(records) if records else _NOTHING_STORED
            self._count(len(result.stored), len(result.duplicates), len(rejected))
            self._observe(records, frozenset(result.stored))
            yield _ack(batch, result, rejected)

    async def UploadLabels(  # noqa: N802 -- the name is the RPC's
        self,
        request_iterator: AsyncIterator[outcomes_pb2.UploadLabelsRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[outcomes_pb2.UploadLabelsResponse]:
        """One ack per batch of late labels, in order, each after the batch's labels are stored."""
        if self._labels is None:
            raise Unavailable("this service stores no late labels (its outcome log cannot)")
        batches = (request.batch async for request in request_iterator)
        async for batch, records, rejected in self._batches(batches, admissible_labels):
            labels = [uploaded_label(record) for record in records]
            result = await self._labels.label(labels) if labels else _NOTHING_STORED
            self._count(len(result.stored), len(result.duplicates), len(rejected), kind="label")
            yield outcomes_pb2.UploadLabelsResponse(ack=_ack(batch, result, rejected))

    async def _batches(
        self, requests: AsyncIterator[outcomes_pb2.UploadOutcomesRequest], admit: Admit
    ) -> AsyncIterator[tuple[OutcomeBatch, tuple[OutcomeRecord, ...], tuple[RejectedOutcome, ...]]]:
        """Each uploaded batch, bounded and rate-limited per device, decoded, with the records ``admit`` lets
        the caller upload and those refused."""
        principal = _uploader()
        device = principal.principal_id if principal is not None else None
        async for request in requests:
            self._limits.check_batch(len(request.records))
            if self._devices is not None:
                await self._devices.take(device, UPLOAD)
            # Checking thousands of records takes milliseconds of Python: off the loop, so that escalations
            # answered meanwhile do not wait for it.
            batch, rejected = await asyncio.to_thread(OutcomeBatch.partition_pb, request)
            records, refused = admit(batch.records, principal)
            yield batch, records, rejected + refused

    def _count(self, stored: int, duplicates: int, rejected: int, kind: str = "upload") -> None:
        writes = self._metrics.outcome_writes
        writes.labels(kind, "stored").inc(stored)
        writes.labels(kind, "duplicate").inc(duplicates)
        writes.labels(kind, "rejected").inc(rejected)


    def _observe(self, records: tuple[OutcomeRecord, ...], stored: frozenset[str]) -> None:
        for record in records:
            if record.query_id in stored:
                self._metrics.observe_uploaded(record.edge_model.version, record.cohort, record.decision.value,
                                               record.policy_version, record.label_source.value)


def _ack(batch: OutcomeBatch, result: StoreResult, rejected: tuple[RejectedOutcome, ...]
         ) -> outcomes_pb2.UploadOutcomesResponse:
    return OutcomeAck(batch_id=batch.batch_id, stored=len(result.stored), duplicate_query_ids=result.duplicates,
                      rejected=rejected).to_pb()


def _uploader() -> Principal | None:
    """The calling device (None with authentication off); an operator may not upload."""
    principal = current_principal()
    require_scope(principal, UPLOAD)
    if principal is not None and not principal.is_device:
        raise PermissionDenied(f"operator {principal.principal_id} may not upload outcomes")
    return principal


def admissible_labels(
    records: tuple[OutcomeRecord, ...], principal: Principal | None
) -> tuple[tuple[OutcomeRecord, ...], tuple[RejectedOutcome, ...]]:
    """The late labels a device may upload (its own queries, user feedback), and a rejection for each other."""
    kept: list[OutcomeRecord] = []
    refused: list[RejectedOutcome] = []
    for record in records:
        if (other := _other_device(record, principal)) is not None:
            refused.append(other)
        elif record.label is Label.UNKNOWN or record.label_source is not LabelSource.USER_FEEDBACK:
            refused.append(RejectedOutcome(record.query_id, "label_source",
                                           "a late label from a device must be a known user_feedback label"))
        elif record.answered_by is not AnsweredBy.EDGE:
            refused.append(RejectedOutcome(record.query_id, "answered_by",
                                           "a user's rating of the cloud's answer is no label of the edge's answer"))
        else:
            kept.append(record)
    return tuple(kept), tuple(refused)


def admissible(
    records: tuple[OutcomeRecord, ...], principal: Principal | None
) -> tuple[tuple[OutcomeRecord, ...], tuple[RejectedOutcome, ...]]:
    """The records a device may upload, and a rejection for each other one."""
    kept: list[OutcomeRecord] = []
    refused: list[RejectedOutcome] = []
    for record in records:
        if (other := _other_device(record, principal)) is not None:
            refused.append(other)
        elif record.label_source not in DEVICE_LABEL_SOURCES:
            refused.append(RejectedOutcome(record.query_id, "label_source",
                                           f"a device may not assert label_source {record.label_source.value}"))
        else:
            kept.append(record)
    return tuple(kept), tuple(refused)


def _other_device(record: OutcomeRecord, principal: Principal | None) -> RejectedOutcome | None:
    """The rejection of a record of another device than the authenticated uploader (None: its own)."""
    if principal is None or record.device_id == principal.principal_id:
        return None
    return RejectedOutcome(record.query_id, "device_id", f"not the uploading device {principal.principal_id}")
