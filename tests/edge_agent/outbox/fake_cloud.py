"""A tiny OutcomesService on a loopback port: stores records in a dict keyed by query id, acks per batch.

It behaves like the real cloud (invalid records rejected one by one, duplicates reported), and can be
told to fail with a status code, to be slow, or to be stricter than the device (``refuse``).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from typing import Any

import grpc

from confroute.contract import OutcomeAck, OutcomeBatch, OutcomeRecord, RejectedOutcome
from confroute.errors import InvalidInput
from confroute.v1 import outcomes_pb2, outcomes_pb2_grpc


class FakeCloud(outcomes_pb2_grpc.OutcomesServiceServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.stored: dict[str, OutcomeRecord] = {}
        self.newly_stored: Counter[str] = Counter()  # how often each id was stored as new: must stay 1
        self.received: Counter[str] = Counter()
        self.calls = 0  # UploadOutcomes requests, failed ones included
        self.fail_with: grpc.StatusCode | None = None  # e.g. UNAVAILABLE: the outcome log is down
        self.delay_s = 0.0
        self.refuse: dict[str, str] = {}  # query id -> reason, as a stricter cloud would
        self.released = threading.Event()  # cuts a delay short at teardown
        self._lock = threading.Lock()

    def UploadOutcomes(  # noqa: N802 -- the name is the RPC's
        self, request_iterator: Iterator[outcomes_pb2.UploadOutcomesRequest], context: Any
    ) -> Iterator[outcomes_pb2.UploadOutcomesResponse]:
        for request in request_iterator:
            self.calls += 1
            if self.fail_with is not None:
                context.abort(self.fail_with, "told to fail")
            self.released.wait(self.delay_s)
            try:
                batch, rejected = OutcomeBatch.partition_pb(request)
            except InvalidInput as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            yield self._store(batch, rejected).to_pb()

    def _store(self, batch: OutcomeBatch, rejected: tuple[RejectedOutcome, ...]) -> OutcomeAck:
        with self._lock:
            stored, duplicates, refused = 0, [], list(rejected)
            for record in batch.records:
                self.received[record.query_id] += 1
                if record.query_id in self.refuse:
                    refused.append(RejectedOutcome(record.query_id, "cohort", self.refuse[record.query_id]))
                elif record.query_id in self.stored:
                    duplicates.append(record.query_id)
                else:
                    self.stored[record.query_id] = record
                    self.newly_stored[record.query_id] += 1
                    stored += 1
            return OutcomeAck(batch.batch_id, stored, tuple(duplicates), tuple(refused))


@contextmanager
def serving(cloud: FakeCloud) -> Iterator[int]:
    """Serves ``cloud`` on 127.0.0.1 at a free port, which it yields; stops the server on exit."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    outcomes_pb2_grpc.add_OutcomesServiceServicer_to_server(cloud, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        cloud.released.set()
        server.stop(grace=None).wait()
