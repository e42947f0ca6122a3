"""OutcomesService: devices stream batches of outcome records; each is acked once durably stored.

A batch's invalid records are rejected one by one (the device drops them) while the valid ones are
stored; the ack is sent only after :meth:`OutcomeLog.store` returned, so a device that deletes what an
ack names never loses a record. A log that cannot be reached ends the call with UNAVAILABLE and the
device sends the batch again later (the log is idempotent by ``query_id``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from cloud_service.metrics import ServiceMetrics
from cloud_service.ports import OutcomeLog, StoreResult
from confroute.contract.upload import OutcomeAck, OutcomeBatch
from confroute.v1 import outcomes_pb2, outcomes_pb2_grpc

_NOTHING_STORED = StoreResult(stored=(), duplicates=())


class OutcomesServicer(outcomes_pb2_grpc.OutcomesServiceServicer):  # type: ignore[misc]
    """Stores uploaded batches in the outcome log and acknowledges each."""

    def __init__(self, outcome_log: OutcomeLog, metrics: ServiceMetrics) -> None:
        self._log = outcome_log
        self._metrics = metrics

    async def UploadOutcomes(  # noqa: N802 -- the name is the RPC's
        self,
        request_iterator: AsyncIterator[outcomes_pb2.UploadOutcomesRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[outcomes_pb2.UploadOutcomesResponse]:
        """One ack per batch, in order, each after the batch's records are stored."""
        async for request in request_iterator:
            batch, rejected = OutcomeBatch.partition_pb(request)
            result = await self._log.store(batch.records) if batch.records else _NOTHING_STORED
            self._count(len(result.stored), len(result.duplicates), len(rejected))
            ack = OutcomeAck(
                batch_id=batch.batch_id,
                stored=len(result.stored),
                duplicate_query_ids=result.duplicates,
                rejected=rejected,
            )
            yield ack.to_pb()

    def _count(self, stored: int, duplicates: int, rejected: int) -> None:
        writes = self._metrics.outcome_writes
        writes.labels("upload", "stored").inc(stored)
        writes.labels("upload", "duplicate").inc(duplicates)
        writes.labels("upload", "rejected").inc(rejected)
