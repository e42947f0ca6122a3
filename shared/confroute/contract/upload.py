"""Batches of outcome records going up, and the per-batch acknowledgements coming back.

A device deletes a record only once an ack lists it as stored or duplicate: what the cloud has
not durably stored stays on the device and is sent again.
"""

from __future__ import annotations

from dataclasses import dataclass

from confroute.contract import _checks as check
from confroute.contract.outcome import OutcomeRecord
from confroute.errors import InvalidInput
from confroute.v1 import outcomes_pb2


@dataclass(frozen=True)
class OutcomeBatch:
    """One upload batch; ``batch_id`` is unique per batch on the device."""

    batch_id: str
    records: tuple[OutcomeRecord, ...]

    def to_pb(self) -> outcomes_pb2.UploadOutcomesRequest:
        return outcomes_pb2.UploadOutcomesRequest(
            batch_id=self.batch_id, records=[r.to_pb() for r in self.records]
        )

    @classmethod
    def from_pb(cls, pb: outcomes_pb2.UploadOutcomesRequest) -> OutcomeBatch:
        """The whole batch, or InvalidInput naming the first bad field as ``records[i].<field>``."""
        batch_id = check.nonempty(pb.batch_id, "batch_id")
        records: list[OutcomeRecord] = []
        for i, record in enumerate(pb.records):
            try:
                records.append(OutcomeRecord.from_pb(record))
            except InvalidInput as exc:
                raise InvalidInput(f"records[{i}]: {exc}", field=f"records[{i}].{exc.field}") from exc
        return cls(batch_id, tuple(records))

    @classmethod
    def partition_pb(
        cls, pb: outcomes_pb2.UploadOutcomesRequest
    ) -> tuple[OutcomeBatch, tuple[RejectedOutcome, ...]]:
        """The valid records as a batch, and a rejection for each invalid one, so that one bad
        record does not hold back the rest of its batch."""
        batch_id = check.nonempty(pb.batch_id, "batch_id")
        records: list[OutcomeRecord] = []
        rejected: list[RejectedOutcome] = []
        for record in pb.records:
            try:
                records.append(OutcomeRecord.from_pb(record))
            except InvalidInput as exc:
                rejected.append(RejectedOutcome(record.query_id, exc.field or "", str(exc)))
        return cls(batch_id, tuple(records)), tuple(rejected)


@dataclass(frozen=True)
class RejectedOutcome:
    """A record the cloud will never accept; the device drops it instead of retrying."""

    query_id: str
    field: str
    reason: str

    def to_pb(self) -> outcomes_pb2.RejectedOutcome:
        return outcomes_pb2.RejectedOutcome(query_id=self.query_id, field=self.field, reason=self.reason)

    @classmethod
    def from_pb(cls, pb: outcomes_pb2.RejectedOutcome) -> RejectedOutcome:
        return cls(query_id=pb.query_id, field=pb.field, reason=pb.reason)


@dataclass(frozen=True)
class OutcomeAck:
    """The cloud's answer to one batch: how many it stored, which it already had, which it refused."""

    batch_id: str
    stored: int
    duplicate_query_ids: tuple[str, ...] = ()
    rejected: tuple[RejectedOutcome, ...] = ()

    def to_pb(self) -> outcomes_pb2.UploadOutcomesResponse:
        return outcomes_pb2.UploadOutcomesResponse(
            batch_id=self.batch_id,
            stored=self.stored,
            duplicate_query_ids=self.duplicate_query_ids,
            rejected=[r.to_pb() for r in self.rejected],
        )

    @classmethod
    def from_pb(cls, pb: outcomes_pb2.UploadOutcomesResponse) -> OutcomeAck:
        return cls(
            batch_id=check.nonempty(pb.batch_id, "batch_id"),
            stored=check.count(pb.stored, 0, "stored"),
            duplicate_query_ids=tuple(pb.duplicate_query_ids),
            rejected=tuple(RejectedOutcome.from_pb(r) for r in pb.rejected),
        )
