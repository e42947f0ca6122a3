"""``Uploader``: drains the outcome queue to the cloud in batches, deleting only what the cloud acked.

Per batch, the ack decides each record's fate: stored or already known (duplicate) -> deleted;
rejected -> moved to the dead letters, never resent. A record the cloud stored but whose ack never
arrived (the agent died, the stream broke) stays queued and is sent again; the cloud is idempotent by
query id, so it stores it once and reports it as a duplicate, and only then is it deleted here.

Failures (cloud down, deadline, overload) are retried a bounded number of times with the jittered
exponential backoff of :mod:`confroute.backoff`; then the round ends with every unacked record still
queued, and the background loop tries again later.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from confroute.backoff import Backoff
from confroute.contract import OutcomeAck, OutcomeBatch, OutcomeRecord, RejectedOutcome
from confroute.errors import (
    ConfrouteError,
    DeadlineExceeded,
    InvalidInput,
    Overloaded,
    PermissionDenied,
    RuntimeFailure,
    Unauthenticated,
    Unavailable,
)
from edge_agent.outbox.queue import OutcomeQueue, QueuedOutcome

logger = logging.getLogger(__name__)

#: The sink errors worth another try: the cloud may come back, answer faster or have room later.
RETRYABLE = (Unavailable, DeadlineExceeded, Overloaded)
#: The errors that end a round with the batch still queued: the retryable ones, and a bug in the cloud
#: (RuntimeFailure, from INTERNAL): the same batch sent again at once meets the same bug, a later round may not;
#: and a refused credential: the records wait for the device to be enrolled again or its credential renewed.
ROUND_ENDING = (*RETRYABLE, RuntimeFailure, Unauthenticated, PermissionDenied)
UPLOAD_BACKOFF = Backoff(base_s=0.5, cap_s=30.0)


class OutcomeSink(Protocol):
    """Where batches go: the cloud's OutcomesService, or a fake in tests."""

    def upload(self, batch: OutcomeBatch) -> OutcomeAck:
        """The cloud's ack once it durably stored the batch; Unavailable/DeadlineExceeded/Overloaded
        when it could not be reached or did not answer in time, RuntimeFailure when it failed on a bug."""
        ...


@dataclass(frozen=True)
class UploaderConfig:
    """Retries per batch within one round, their backoff, and the background loop's pace."""

    max_attempts: int = 4
    backoff: Backoff = UPLOAD_BACKOFF
    interval_s: float = 5.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise InvalidInput(f"max_attempts must be >= 1, got {self.max_attempts}", field="max_attempts")
        if self.interval_s < 0:
            raise InvalidInput(f"interval_s must be >= 0, got {self.interval_s}", field="interval_s")


@dataclass(frozen=True)
class UploadReport:
    """What one round did; ``error`` is the failure that ended it early, if any."""

    batches: int = 0
    uploaded: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    error: ConfrouteError | None = field(default=None, compare=False)

    def __add__(self, other: UploadReport) -> UploadReport:
        return UploadReport(
            batches=self.batches + other.batches,
            uploaded=self.uploaded + other.uploaded,
            duplicates=self.duplicates + other.duplicates,
            dead_lettered=self.dead_lettered + other.dead_lettered,
            error=other.error or self.error,
        )

    @property
    def settled(self) -> int:
        """Records that left the queue this round."""
        return self.uploaded + self.duplicates + self.dead_lettered


class Uploader:
    """Moves records from the queue to a sink: ``run_once()`` now, or ``start()``/``stop()`` a loop."""

    def __init__(self, queue: OutcomeQueue, sink: OutcomeSink, config: UploaderConfig = UploaderConfig(),
                 *, rng: random.Random | None = None) -> None:
        self._queue = queue
        self._sink = sink
        self._config = config
        self._rng = rng or random.Random()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> UploadReport:
        """Uploads batch after batch until the queue is empty, a batch fails for good, or stop().

        A retryable failure, or a bug in the cloud, ends the round and is returned in ``error``;
        InvalidInput from the sink (the cloud refused a whole batch: a device bug) propagates. Either way
        nothing is deleted.
        """
        report = UploadReport()
        while not self._stopping.is_set():
            entries = self._queue.peek_batch()
            if not entries:
                break
            step = self._send(entries)
            report += step
            if step.error is not None or step.settled == 0:
                break  # retried enough for now, or an ack that settles nothing: don't spin
        return report

    def start(self) -> None:
        """Runs rounds in a background thread: after each, waits ``interval_s`` (longer while failing)."""
        if self._thread is not None:
            raise RuntimeError("the uploader is already running")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="outcome-uploader", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Starts the next round now instead of after the interval."""
        self._wake.set()

    def stop(self, timeout_s: float | None = 10.0) -> None:
        """Ends the loop after the batch in flight (a pending backoff is cut short) and joins it."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                failed = self.run_once().error is not None
            except Exception:  # the loop must outlive any one round; the queue keeps the records
                logger.exception("outcome upload round failed")
                failed = True
            failures = failures + 1 if failed else 0
            delay = self._config.interval_s
            if failures:
                delay += self._config.backoff.delay(failures, self._rng)
            self._wake.wait(delay)
            self._wake.clear()

    def _send(self, entries: Sequence[QueuedOutcome]) -> UploadReport:
        """One batch: undecodable records go to the dead letters, the rest up, then the ack is applied."""
        records, broken = _decode(entries)
        report = UploadReport(dead_lettered=self._queue.dead_letter(broken))
        if not records:
            return report
        batch = OutcomeBatch(batch_id=uuid.uuid4().hex, records=tuple(records))
        self._queue.mark_attempted(r.query_id for r in records)
        try:
            ack = self._upload(batch)
        except ROUND_ENDING as exc:
            logger.warning("outcome upload failed, %d records stay queued: %s", len(records), exc)
            return replace(report, error=exc)
        return report + self._settle(batch, ack)

    def _upload(self, batch: OutcomeBatch) -> OutcomeAck:
        """The sink's ack, after up to ``max_attempts`` tries; the last error if none succeeded."""
        config = self._config
        for attempt in range(config.max_attempts):
            try:
                return self._sink.upload(batch)
            except RETRYABLE:
                last_try = attempt + 1 == config.max_attempts
                if last_try or self._stopping.wait(config.backoff.delay(attempt, self._rng)):
                    raise
        raise AssertionError("unreachable: max_attempts >= 1")

    def _settle(self, batch: OutcomeBatch, ack: OutcomeAck) -> UploadReport:
        """Applies an ack: deletes the stored and duplicates, dead-letters the rejected.

        The ack counts stored records without naming them: they are the batch's records that are
        neither duplicate nor rejected, provided the count agrees. If it does not, they stay queued;
        the next upload names them as duplicates and they are deleted then.
        """
        sent = {r.query_id for r in batch.records}
        rejected = [r for r in ack.rejected if r.query_id in sent]
        duplicates = sent.intersection(ack.duplicate_query_ids)
        stored = sent - duplicates - {r.query_id for r in rejected}
        if ack.stored != len(stored):
            logger.warning("ack %s counts %d stored of %d; keeping them to resend", ack.batch_id, ack.stored,
                           len(stored))
            stored = set()
        dead = self._queue.dead_letter(rejected)
        self._queue.ack(stored, duplicates=duplicates)
        return UploadReport(batches=1, uploaded=len(stored), duplicates=len(duplicates), dead_lettered=dead)


def _decode(entries: Sequence[QueuedOutcome]) -> tuple[list[OutcomeRecord], list[RejectedOutcome]]:
    """The records that decode and validate, and a rejection for each that does not."""
    records: list[OutcomeRecord] = []
    broken: list[RejectedOutcome] = []
    for entry in entries:
        try:
            records.append(entry.record())
        except InvalidInput as exc:
            broken.append(RejectedOutcome(entry.query_id, exc.field or "", f"on the device: {exc}"))
    return records, broken
