"""The uploader drains the queue to a real gRPC OutcomesService, deleting only what the cloud acked."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from confroute.backoff import Backoff
from confroute.contract import OutcomeAck, OutcomeBatch
from confroute.errors import DeadlineExceeded, InvalidInput, RuntimeFailure, Unavailable
from edge_agent.outbox import GrpcOutcomeSink, OutcomeQueue, Uploader, UploaderConfig
from tests.edge_agent.outbox.fake_cloud import FakeCloud
from tests.factories import outcome, outcomes

FAST = UploaderConfig(max_attempts=3, backoff=Backoff(base_s=0.01, cap_s=0.05), interval_s=0.05)


def fill(queue: OutcomeQueue, count: int, prefix: str = "q") -> set[str]:
    for record in outcomes(count, prefix):
        queue.put(record)
    return {f"{prefix}-{i}" for i in range(count)}


def eventually(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class StoresThenDies:
    """The cloud stores the batch, then the device loses the ack (as if killed before deleting)."""

    def __init__(self, inner: GrpcOutcomeSink) -> None:
        self.inner = inner

    def upload(self, batch: OutcomeBatch) -> OutcomeAck:
        self.inner.upload(batch)
        raise Unavailable("the ack was lost")


class MiscountingSink:
    """A cloud whose ack claims fewer stored records than it stored."""

    def __init__(self, inner: GrpcOutcomeSink) -> None:
        self.inner = inner

    def upload(self, batch: OutcomeBatch) -> OutcomeAck:
        ack = self.inner.upload(batch)
        return OutcomeAck(ack.batch_id, ack.stored - 1, ack.duplicate_query_ids, ack.rejected)


def test_run_once_uploads_everything_in_batches_and_empties_the_queue(
    queue: OutcomeQueue, sink: GrpcOutcomeSink, cloud: FakeCloud
) -> None:
    sent = fill(queue, 25)

    report = Uploader(queue, sink, FAST).run_once()

    assert (report.batches, report.uploaded, report.error) == (3, 25, None)
    assert set(cloud.stored) == sent
    assert set(cloud.newly_stored.values()) == {1}
    assert queue.stats().queued == 0 and queue.stats().uploaded_total == 25


def test_when_the_cloud_is_down_nothing_is_deleted_and_a_later_round_uploads_it(
    queue: OutcomeQueue, sink: GrpcOutcomeSink, cloud: FakeCloud
) -> None:
    sent = fill(queue, 5)
    cloud.fail_with = grpc.StatusCode.UNAVAILABLE
    uploader = Uploader(queue, sink, FAST)

    failed = uploader.run_once()

    assert isinstance(failed.error, Unavailable) and failed.settled == 0
    assert queue.stats().queued == 5
    assert {e.attempts for e in queue.peek_batch()} == {1}  # one batch, retried by the uploader

    cloud.fail_with = None
    assert uploader.run_once().uploaded == 5
    assert set(cloud.stored) == sent and queue.stats().queued == 0


def test_a_cloud_failing_on_a_bug_is_not_retried_within_the_round_and_the_records_stay_queued(
    queue: OutcomeQueue, sink: GrpcOutcomeSink, cloud: FakeCloud
) -> None:
    fill(queue, 3)
    cloud.fail_with = grpc.StatusCode.INTERNAL
    uploader = Uploader(queue, sink, FAST)

    failed = uploader.run_once()

    assert isinstance(failed.error, RuntimeFailure) and failed.settled == 0
    assert cloud.calls == 1  # the same batch would meet the same bug: no retry within the round
    assert queue.stats().queued == 3

    cloud.fail_with = None  # the cloud was fixed: the next round delivers
    assert uploader.run_once().uploaded == 3


def test_a_slow_cloud_is_retried_a_bounded_number_of_times_then_left_for_later(
    queue: OutcomeQueue, cloud: FakeCloud, cloud_port: int
) -> None:
    fill(queue, 2)
    cloud.delay_s = 1.0
    with grpc.insecure_channel(f"127.0.0.1:{cloud_port}") as channel:
        started = time.monotonic()
        report = Uploader(queue, GrpcOutcomeSink(channel, deadline_s=0.1), FAST).run_once()

    assert isinstance(report.error, DeadlineExceeded)
    assert time.monotonic() - started < FAST.max_attempts * (0.1 + FAST.backoff.cap_s) + 1.0
    assert queue.stats().queued == 2


def test_a_record_stored_by_the_cloud_but_not_acked_locally_is_stored_there_only_once(
    queue: OutcomeQueue, sink: GrpcOutcomeSink, cloud: FakeCloud
) -> None:
    sent = fill(queue, 12)

    lost = Uploader(queue, StoresThenDies(sink), UploaderConfig(max_attempts=1)).run_once()
    assert isinstance(lost.error, Unavailable) and queue.stats().queued == 12
    report = Uploader(queue, sink, FAST).run_once()

    assert set(cloud.stored) == sent
    assert set(cloud.newly_stored.values()) == {1}
    assert report.duplicates == 10 and report.uploaded == 2  # the first batch was already there
    assert queue.stats().queued == 0


def test_records_the_cloud_rejects_are_dead_lettered_and_never_sent_again(
    queue: OutcomeQueue, sink: GrpcOutcomeSink, cloud: FakeCloud
) -> None:
    fill(queue, 3)
    cloud.refuse["q-1"] = "cohort retired"
    uploader = Uploader(queue, sink, FAST)

    report = uploader.run_once()
    uploader.run_once()

    assert (report.uploaded, report.dead_lettered) == (2, 1)
    assert [(d.query_id, d.reason) for d in queue.dead_letters()] == [("q-1", "cohort retired")]
    assert cloud.received["q-1"] == 1
    assert queue.stats().queued == 0 and queue.stats().dead_lettered_total == 1


def test_records_invalid_on_the_device_are_dead_lettered_without_being_sent(
    queue: OutcomeQueue, queue_file: Path, sink: GrpcOutcomeSink, cloud: FakeCloud
) -> None:
    queue.put(outcome("q-bad-propensity", propensity=2.0))
    queue.put(outcome("q-corrupt"))
    queue.put(outcome("q-good"))
    with sqlite3.connect(queue_file) as writer:
        writer.execute("UPDATE outbox SET payload = x'ffff' WHERE query_id = 'q-corrupt'")
    writer.close()

    report = Uploader(queue, sink, FAST).run_once()

    assert (report.uploaded, report.dead_lettered) == (1, 2)
    assert {d.query_id: d.field for d in queue.dead_letters()} == {"q-bad-propensity": "propensity",
                                                                  "q-corrupt": "payload"}
    assert set(cloud.received) == {"q-good"}


def test_an_ack_whose_count_does_not_add_up_deletes_nothing_it_does_not_name(
    queue: OutcomeQueue, sink: GrpcOutcomeSink, cloud: FakeCloud
) -> None:
    sent = fill(queue, 4)

    first = Uploader(queue, MiscountingSink(sink), FAST).run_once()
    assert first.uploaded == 0 and queue.stats().queued == 4
    second = Uploader(queue, sink, FAST).run_once()

    assert second.duplicates == 4 and queue.stats().queued == 0
    assert set(cloud.stored) == sent and set(cloud.newly_stored.values()) == {1}


def test_the_background_loop_uploads_new_records_and_stops_promptly(
    queue: OutcomeQueue, sink: GrpcOutcomeSink, cloud: FakeCloud
) -> None:
    uploader = Uploader(queue, sink, UploaderConfig(interval_s=30.0))
    uploader.start()
    try:
        sent = fill(queue, 15)
        uploader.wake()
        assert eventually(lambda: set(cloud.stored) == sent)
    finally:
        started = time.monotonic()
        uploader.stop()
    assert time.monotonic() - started < 2.0
    assert eventually(lambda: queue.stats().queued == 0)


def test_stop_cuts_a_retry_backoff_short(queue: OutcomeQueue, sink: GrpcOutcomeSink, cloud: FakeCloud) -> None:
    fill(queue, 1)
    cloud.fail_with = grpc.StatusCode.UNAVAILABLE
    uploader = Uploader(queue, sink, UploaderConfig(max_attempts=5, backoff=Backoff(base_s=30.0, cap_s=30.0)),
                        rng=random.Random(0))
    uploader.start()
    assert eventually(lambda: queue.peek_batch()[0].attempts == 1)
    time.sleep(0.1)

    started = time.monotonic()
    uploader.stop()

    assert time.monotonic() - started < 2.0
    assert queue.stats().queued == 1


@pytest.mark.parametrize("change", [{"max_attempts": 0}, {"interval_s": -1.0}])
def test_a_nonsensical_uploader_config_is_refused(change: dict[str, float]) -> None:
    with pytest.raises(InvalidInput):
        UploaderConfig(**change)  # type: ignore[arg-type]


def test_request_threads_can_put_while_the_loop_uploads_and_each_record_arrives_once(
    queue: OutcomeQueue, sink: GrpcOutcomeSink, cloud: FakeCloud
) -> None:
    uploader = Uploader(queue, sink, FAST)
    uploader.start()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            batches = list(pool.map(lambda t: fill(queue, 50, prefix=f"t{t}"), range(8)))
        sent = set().union(*batches)
        assert eventually(lambda: set(cloud.stored) == sent)
    finally:
        uploader.stop()
    assert set(cloud.newly_stored.values()) == {1}
    assert queue.stats().uploaded_total + queue.stats().duplicates_total == 400
