"""``GrpcOutcomeSink``: the real ``OutcomeSink``, the cloud's ``OutcomesService.UploadOutcomes`` (or, with
``labels=True``, ``UploadLabels``: the late labels of :mod:`edge_agent.outbox.feedback`, the same batch and
ack inside ``UploadLabelsRequest``/``UploadLabelsResponse``).

grpc errors of the upload path become domain errors here, through the device's one status table
(:mod:`edge_agent.cloud.status`, the same the escalation client uses): INVALID_ARGUMENT (the whole batch
refused) -> InvalidInput naming the batch, INTERNAL (a bug in the cloud) -> RuntimeFailure, the transient
codes -> Unavailable, DeadlineExceeded or Overloaded. Whatever the error, nothing is deleted: the records
stay queued and are sent again later, which the cloud's idempotency makes safe. An ack that is missing,
malformed or for another batch is Unavailable too: nothing it names can be trusted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc

from confroute.contract import OutcomeAck, OutcomeBatch
from confroute.errors import InvalidInput, Unavailable
from confroute.v1 import outcomes_pb2, outcomes_pb2_grpc
from edge_agent.cloud.status import translate


class GrpcOutcomeSink:
    """Uploads each batch as one short ``UploadOutcomes`` stream, under its own deadline.

    One stream per batch keeps the deadline per batch (a long-lived bidi stream has one deadline for
    its whole life); the channel, and with it the HTTP/2 connection, is reused. The caller owns the
    channel and closes it.
    """

    def __init__(self, channel: grpc.Channel, *, deadline_s: float = 10.0,
                 metadata: Sequence[tuple[str, str]] = (), labels: bool = False) -> None:
        stub: Any = outcomes_pb2_grpc.OutcomesServiceStub(channel)  # type: ignore[no-untyped-call]
        self._call = _labels_call(stub.UploadLabels) if labels else stub.UploadOutcomes
        self._what = "label upload" if labels else "outcome upload"
        self._deadline_s = deadline_s
        self._metadata = tuple(metadata)

    def upload(self, batch: OutcomeBatch) -> OutcomeAck:
        """The cloud's ack for ``batch``, received after it durably stored the batch."""
        try:
            responses = list(self._call(iter((batch.to_pb(),)), timeout=self._deadline_s, metadata=self._metadata))
        except grpc.RpcError as exc:
            raise translate(exc, self._what, field="batch") from exc
        return _ack_for(batch.batch_id, responses)


def _labels_call(call: Any) -> Callable[..., list[outcomes_pb2.UploadOutcomesResponse]]:
    """``UploadLabels`` taking and answering what ``UploadOutcomes`` does (its messages wrap a batch and an ack)."""
    def upload(batches: Iterator[outcomes_pb2.UploadOutcomesRequest], **options: Any
               ) -> list[outcomes_pb2.UploadOutcomesResponse]:
        requests = (outcomes_pb2.UploadLabelsRequest(batch=batch) for batch in batches)
        return [response.ack for response in call(requests, **options)]

    return upload


def _ack_for(batch_id: str, responses: Sequence[outcomes_pb2.UploadOutcomesResponse]) -> OutcomeAck:
    """The single ack of the batch, or Unavailable when the cloud answered anything else."""
    if len(responses) != 1:
        raise Unavailable(f"the cloud answered batch {batch_id} with {len(responses)} acks, expected 1")
    try:
        ack = OutcomeAck.from_pb(responses[0])
    except InvalidInput as exc:
        raise Unavailable(f"the cloud's ack for batch {batch_id} is malformed: {exc}") from exc
    if ack.batch_id != batch_id:
        raise Unavailable(f"the cloud acked batch {ack.batch_id} when {batch_id} was sent")
    return ack
