"""Buffered writes with ``record()``: batching, idempotency, Redis outages, a full buffer, close."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from cloud_service.outcomes import OutcomeLogConfig, OutcomeLogStats, RedisOutcomeLog
from tests.cloud_service.outcomes.samples import eventually, logged_ids, outcome, outcomes, stream_length
from tests.cloud_service.redis_server import RedisServer, RedisServerMissing

pytestmark = pytest.mark.timeout(60)
T = TypeVar("T")


def run(scenario: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(scenario, 30))


@pytest.fixture
def durable_redis() -> Iterator[RedisServer]:
    """A redis-server with an append-only file, so that its data survives a restart."""
    try:
        server = RedisServer(appendonly=True)
    except RedisServerMissing as exc:
        pytest.skip(str(exc))
    with server:
        yield server


def fast_retries(url: str, **settings: Any) -> OutcomeLogConfig:
    return OutcomeLogConfig(url=url, retry_base_s=0.02, retry_cap_s=0.2, **settings)


def test_recorded_outcomes_are_written_in_the_background(redis_server: RedisServer) -> None:
    config = OutcomeLogConfig(url=redis_server.url)

    async def scenario() -> OutcomeLogStats:
        async with RedisOutcomeLog(config) as log:
            for record in outcomes(2500):
                log.record(record)
            await eventually(lambda: log.stats().written == 2500, what="all records written")
            return log.stats()

    assert run(scenario()) == OutcomeLogStats(written=2500)
    assert logged_ids(config) == [f"q-{i}" for i in range(2500)]


def test_a_record_is_written_within_a_few_milliseconds_without_a_full_batch(redis_server: RedisServer) -> None:
    config = OutcomeLogConfig(url=redis_server.url, flush_interval_s=0.005)

    async def scenario() -> float:
        async with RedisOutcomeLog(config) as log:
            started = time.monotonic()
            log.record(outcome("q-1"))
            await eventually(lambda: log.stats().written == 1, timeout_s=2.0, what="the record written")
            return time.monotonic() - started

    assert run(scenario()) < 0.5
    assert logged_ids(config) == ["q-1"]


def test_the_same_query_recorded_twice_is_logged_once(redis_server: RedisServer) -> None:
    config = OutcomeLogConfig(url=redis_server.url)

    async def scenario() -> OutcomeLogStats:
        async with RedisOutcomeLog(config) as log:
            log.record(outcome("q-1"))
            log.record(outcome("q-1"))
            await eventually(lambda: log.stats().buffered == 0, what="the buffer drained")
            log.record(outcome("q-1"))
            await eventually(lambda: log.stats().duplicates == 2, what="the repeat seen")
            return log.stats()

    assert run(scenario()) == OutcomeLogStats(written=1, duplicates=2)
    assert logged_ids(config) == ["q-1"]


def test_the_device_record_of_an_escalated_query_is_logged_beside_the_service_record(
        redis_server: RedisServer) -> None:
    config = OutcomeLogConfig(url=redis_server.url)

    async def scenario() -> tuple[tuple[str, ...], tuple[str, ...]]:
        async with RedisOutcomeLog(config) as log:
            log.record(outcome("q-1"))  # the service's own record of escalation q-1
            await eventually(lambda: log.stats().written == 1, what="the record written")
            await log.store([outcome("q-1"), outcome("q-2")])  # the device uploads its outcomes
            result = await log.store([outcome("q-1")])  # and, after a lost ack, again
            return result.stored, result.duplicates

    assert run(scenario()) == ((), ("q-1",))
    assert logged_ids(config) == ["q-1", "q-1", "q-2"]


def test_every_outcome_recorded_through_an_outage_is_logged_exactly_once(durable_redis: RedisServer) -> None:
    config = fast_retries(durable_redis.url, batch_size=50)

    async def scenario() -> OutcomeLogStats:
        async with RedisOutcomeLog(config) as log:
            for record in outcomes(100):
                log.record(record)
            await asyncio.sleep(0)  # let the flusher take its first batch, then pull Redis away
            durable_redis.stop()
            for record in outcomes(100, start=100):
                log.record(record)
            await eventually(lambda: log.stats().write_errors > 0, what="a failed write")
            assert log.stats().buffered > 0
            durable_redis.start()
            await eventually(lambda: log.stats().buffered == 0, what="the buffer drained after the restart")
            return log.stats()

    stats = run(scenario())

    assert sorted(logged_ids(config)) == sorted(f"q-{i}" for i in range(200))
    assert stream_length(config) == 200
    assert stats.written + stats.duplicates == 200  # a batch whose reply was lost is retried: duplicates
    assert stats.dropped == 0


def test_a_full_buffer_drops_its_oldest_records_and_counts_them(redis_server: RedisServer) -> None:
    config = fast_retries(redis_server.url, buffer_size=10, batch_size=5)
    redis_server.stop()

    async def scenario() -> tuple[OutcomeLogStats, OutcomeLogStats]:
        async with RedisOutcomeLog(config) as log:
            for record in outcomes(30):
                log.record(record)
            while_down = log.stats()
            redis_server.start()
            await eventually(lambda: log.stats().buffered == 0, what="the buffer drained after the restart")
            return while_down, log.stats()

    while_down, after = run(scenario())

    assert (while_down.buffered, while_down.dropped) == (10, 20)
    assert (after.written, after.dropped) == (10, 20)
    assert logged_ids(config) == [f"q-{i}" for i in range(20, 30)]


def test_close_writes_what_was_recorded_before_start(redis_server: RedisServer) -> None:
    config = OutcomeLogConfig(url=redis_server.url)

    async def scenario() -> OutcomeLogStats:
        log = RedisOutcomeLog(config)
        for record in outcomes(3):
            log.record(record)
        await log.close()
        return log.stats()

    assert run(scenario()) == OutcomeLogStats(written=3)
    assert logged_ids(config) == ["q-0", "q-1", "q-2"]


def test_close_gives_up_after_its_timeout_and_counts_what_it_could_not_write(redis_server: RedisServer) -> None:
    config = fast_retries(redis_server.url, close_timeout_s=0.3)
    redis_server.stop()

    async def scenario() -> tuple[float, OutcomeLogStats]:
        log = RedisOutcomeLog(config)
        await log.start()
        for record in outcomes(7):
            log.record(record)
        started = time.monotonic()
        await log.close()
        return time.monotonic() - started, log.stats()

    elapsed, stats = run(scenario())

    assert elapsed < 2.0
    assert (stats.buffered, stats.dropped, stats.written) == (0, 7, 0)
    assert stats.write_errors > 0


def test_a_record_after_close_is_counted_as_dropped(redis_server: RedisServer) -> None:
    async def scenario() -> OutcomeLogStats:
        log = RedisOutcomeLog(OutcomeLogConfig(url=redis_server.url))
        await log.close()
        log.record(outcome("q-1"))
        return log.stats()

    assert run(scenario()) == OutcomeLogStats(dropped=1)
