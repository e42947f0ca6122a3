"""``GrpcOutcomeSink``: the real ``OutcomeSink``, the cloud's ``OutcomesService.UploadOutcomes``.

This is the one place where grpc errors of the upload path become domain errors, by status code:
DEADLINE_EXCEEDED -> DeadlineExceeded, RESOURCE_EXHAUSTED -> Overloaded, INVALID_ARGUMENT (the
whole batch refused) -> InvalidInput, anything else -> Unavailable (the records stay queued and
are sent again later, which the cloud's idempotency makes safe). An ack that is missing, malformed
or for another batch is Unavailable too: nothing it names can be trusted, so nothing is deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from confroute.contract import OutcomeAck, OutcomeBatch
from confroute.errors import ConfrouteError, DeadlineExceeded, InvalidInput, Overloaded, Unavailable
from confroute.v1 import outcomes_pb2, outcomes_pb2_grpc

_ERRORS: dict[grpc.StatusCode, type[ConfrouteError]] = {
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Overloaded,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidInput,
}


class GrpcOutcomeSink:
    """Uploads each batch as one short ``UploadOutcomes`` stream, under its own deadline.

    One stream per batch keeps the deadline per batch (a long-lived bidi stream has one deadline for
    its whole life); the channel, and with it the HTTP/2 connection, is reused. The caller owns the
    channel and closes it.
    """

    def __init__(self, channel: grpc.Channel, *, deadline_s: float = 10.0,
                 metadata: Sequence[tuple[str, str]] = ()) -> None:
        self._stub: Any = outcomes_pb2_grpc.OutcomesServiceStub(channel)  # type: ignore[no-untyped-call]
        self._deadline_s = deadline_s
        self._metadata = tuple(metadata)

    def upload(self, batch: OutcomeBatch) -> OutcomeAck:
        """The cloud's ack for ``batch``, received after it durably stored the batch."""
        try:
            responses = list(
                self._stub.UploadOutcomes(iter((batch.to_pb(),)), timeout=self._deadline_s, metadata=self._metadata)
            )
        except grpc.RpcError as exc:
            raise _translate(exc) from exc
        return _ack_for(batch.batch_id, responses)


def _translate(exc: grpc.RpcError) -> ConfrouteError:
    code = exc.code()
    error = _ERRORS.get(code, Unavailable)
    message = f"outcome upload failed with {code.name}: {exc.details()}"
    return InvalidInput(message, field="batch") if error is InvalidInput else error(message)


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
