"""The outcome queue: a durable, bounded, idempotent FIFO in a real SQLite file."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from confroute.contract import RejectedOutcome
from confroute.errors import InvalidInput, Unavailable
from edge_agent.outbox import OutcomeQueue, QueueConfig
from tests.factories import outcome, outcomes


def ids(queue: OutcomeQueue, n: int = 1000) -> list[str]:
    return [entry.query_id for entry in queue.peek_batch(n)]


def test_peek_returns_the_oldest_records_and_leaves_them_queued(queue: OutcomeQueue) -> None:
    for record in outcomes(5):
        assert queue.put(record)

    assert ids(queue, 3) == ["q-0", "q-1", "q-2"]
    assert ids(queue, 3) == ["q-0", "q-1", "q-2"]
    assert queue.peek_batch(1)[0].record() == outcome("q-0")


def test_peek_defaults_to_the_configured_batch_size(queue: OutcomeQueue) -> None:
    for record in outcomes(25):
        queue.put(record)

    assert len(queue.peek_batch()) == queue.config.batch_size == 10


def test_ack_deletes_only_the_named_records_and_counts_them(queue: OutcomeQueue) -> None:
    for record in outcomes(4):
        queue.put(record)

    assert queue.ack(["q-1", "q-3", "never-queued"], duplicates=["q-0"]) == 3

    assert ids(queue) == ["q-2"]
    stats = queue.stats()
    assert (stats.queued, stats.uploaded_total, stats.duplicates_total) == (1, 2, 1)


def test_putting_the_same_query_id_twice_stores_it_once(queue: OutcomeQueue) -> None:
    assert queue.put(outcome("q-1")) is True
    assert queue.put(outcome("q-1", cohort="other")) is False

    assert ids(queue) == ["q-1"]
    assert queue.peek_batch()[0].record().cohort == "beta"
    assert queue.stats().queued == 1


def test_a_record_without_a_query_id_is_refused(queue: OutcomeQueue) -> None:
    with pytest.raises(InvalidInput) as caught:
        queue.put(outcome(""))
    assert caught.value.field == "query_id"


def test_at_its_record_bound_the_oldest_records_are_evicted_and_counted(queue_file: Path) -> None:
    with OutcomeQueue(QueueConfig(queue_file, max_records=3)) as queue:
        for record in outcomes(5):
            queue.put(record)

        assert ids(queue) == ["q-2", "q-3", "q-4"]
        assert queue.stats().evicted_total == 2
        assert queue.stats().queued == 3


def test_eviction_ignores_the_kind_of_record_so_the_uploaded_sample_stays_unbiased(queue_file: Path) -> None:
    with OutcomeQueue(QueueConfig(queue_file, max_records=2)) as queue:
        queue.put(outcome("shadow", shadow=True, propensity=0.1))
        queue.put(outcome("plain-1"))
        queue.put(outcome("plain-2"))

        assert ids(queue) == ["plain-1", "plain-2"]


def test_at_its_byte_bound_as_many_oldest_records_go_as_the_new_one_needs(queue_file: Path) -> None:
    size = len(outcome("q-0").to_pb().SerializeToString())
    with OutcomeQueue(QueueConfig(queue_file, max_bytes=3 * size + size // 2)) as queue:
        for record in outcomes(3):
            queue.put(record)
        queue.put(outcome("q-big", answer_text="x" * size))  # about twice the size of the others

        assert ids(queue) == ["q-2", "q-big"]
        assert queue.stats().evicted_total == 2
        assert queue.stats().queued_bytes <= queue.config.max_bytes


def test_a_record_larger_than_the_whole_queue_is_refused_and_nothing_is_evicted(queue_file: Path) -> None:
    with OutcomeQueue(QueueConfig(queue_file, max_bytes=400)) as queue:
        queue.put(outcome("q-0"))
        with pytest.raises(InvalidInput):
            queue.put(outcome("q-huge", answer_text="x" * 1000))

        assert ids(queue) == ["q-0"]
        assert queue.stats().evicted_total == 0


def test_records_and_counters_survive_closing_and_reopening_the_file(queue_file: Path) -> None:
    config = QueueConfig(queue_file, max_records=3)
    with OutcomeQueue(config) as queue:
        for record in outcomes(4):
            queue.put(record)
        queue.ack(["q-1"])
        queue.dead_letter([RejectedOutcome("q-2", "cohort", "unknown cohort")])

    with OutcomeQueue(config) as reopened:
        assert ids(reopened) == ["q-3"]
        assert reopened.peek_batch()[0].record() == outcome("q-3")
        stats = reopened.stats()
        assert (stats.evicted_total, stats.uploaded_total, stats.dead_lettered_total) == (1, 1, 1)
        assert [d.query_id for d in reopened.dead_letters()] == ["q-2"]


def test_dead_letters_leave_the_queue_with_their_reason_and_payload(queue: OutcomeQueue) -> None:
    queue.put(outcome("q-1"))
    queue.put(outcome("q-2"))

    assert queue.dead_letter([RejectedOutcome("q-1", "propensity", "out of range")]) == 1

    assert ids(queue) == ["q-2"]
    (dead,) = queue.dead_letters()
    assert (dead.query_id, dead.field, dead.reason) == ("q-1", "propensity", "out of range")
    assert dead.payload == outcome("q-1").to_pb().SerializeToString(deterministic=True)


def test_attempts_are_counted_per_record(queue: OutcomeQueue) -> None:
    queue.put(outcome("q-1"))
    queue.put(outcome("q-2"))
    queue.mark_attempted(["q-1"])
    queue.mark_attempted(["q-1"])

    assert [(e.query_id, e.attempts) for e in queue.peek_batch()] == [("q-1", 2), ("q-2", 0)]


def test_the_file_is_in_wal_mode_and_synced_as_configured(queue: OutcomeQueue, queue_file: Path) -> None:
    assert queue.config.synchronous == "NORMAL"
    with sqlite3.connect(queue_file) as probe:
        assert probe.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    probe.close()


def test_a_file_from_a_newer_schema_is_refused(queue_file: Path) -> None:
    with sqlite3.connect(queue_file) as newer:
        newer.execute("PRAGMA user_version = 99")
    newer.close()

    with pytest.raises(InvalidInput, match="schema 99"):
        OutcomeQueue(QueueConfig(queue_file))


@pytest.mark.parametrize("change", [{"max_records": 0}, {"batch_size": 0}, {"synchronous": "OFF"}])
def test_a_nonsensical_config_is_refused(queue_file: Path, change: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        replace(QueueConfig(queue_file), **change)  # type: ignore[arg-type]


def test_a_write_the_file_cannot_take_is_unavailable_rolled_back_and_the_queue_goes_on(queue: OutcomeQueue) -> None:
    for record in outcomes(3):
        queue.put(record)
    pages = queue._conn.execute("PRAGMA page_count").fetchone()[0]  # the disk is "full": no page may be added
    queue._conn.execute(f"PRAGMA max_page_count={pages}")
    big = [outcome(f"big-{i}", prompt_text="x" * 20_000) for i in range(20)]

    with pytest.raises(Unavailable, match="cannot be written"):
        for record in big:
            queue.put(record)

    assert ids(queue)[:3] == ["q-0", "q-1", "q-2"] and queue.stats().queued == len(ids(queue))
    queue._conn.execute("PRAGMA max_page_count=1073741823")  # room again
    assert queue.put(outcome("after"))
    assert ids(queue)[-1] == "after"
