"""Outcome-log throughput into a real redis-server, through ``RedisOutcomeLog``.

- ``store()``: durable writes of batches (the upload path, acked only once stored);
- ``record()``: the escalation path, a non-blocking enqueue drained by the background flusher;
- the floor under both: the same records' fields appended with raw pipelined ``XADD`` (no dedupe, no
  statistics), one pipeline per batch, from a client built as the log builds its own.

Records are built before the clock starts (in the service they arrive built from protobuf); encoding
them for Redis, the round trips and Redis's own work are timed. Each measurement writes to a stream of
its own and checks with ``XLEN`` that every record landed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta

import redis

from cloud_service.outcomes import codec
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.redis_log import RedisOutcomeLog
from cloud_service.redis_client import RedisClient, connect
from confroute.contract.common import ModelRef
from confroute.contract.outcome import Latency, OutcomeRecord
from tests.factories import T0, escalated, outcomes

RECORD_CHUNK = 1000  # record() calls between yields to the event loop, as a busy service would make
WAIT_S = 60.0


@dataclass(frozen=True)
class Throughput:
    """Records written and the time they took."""

    records: int
    elapsed_s: float
    in_stream: int  # XLEN of the stream afterwards

    @property
    def per_s(self) -> float:
        return self.records / self.elapsed_s if self.elapsed_s > 0 else 0.0


def sample_records(prefix: str, count: int) -> list[OutcomeRecord]:
    """``count`` escalation outcomes with distinct query ids, shaped like the service's own records."""
    return outcomes(count, prefix, shape=escalated, device_id="bench-device", cohort="bench",
                    cloud_model=ModelRef("echo", "1"), latency=Latency(edge_ms=0.0, total_ms=1.25, cloud_ms=1.25),
                    finished_at=T0 + timedelta(milliseconds=1), policy_version="p-bench")


def _config(url: str, name: str) -> OutcomeLogConfig:
    return OutcomeLogConfig(url=url, key_prefix=f"confroute:{{bench-{name}}}")


def _xlen(config: OutcomeLogConfig, stream: str | None = None) -> int:
    with redis.Redis.from_url(config.url) as client:
        length: int = client.xlen(stream or config.stream_key)
        return length


async def store_throughput(url: str, records: list[OutcomeRecord], batch: int, name: str = "store") -> Throughput:
    """``store()`` of consecutive batches of ``batch`` records, one awaited after the other."""
    config = _config(url, name)
    log = RedisOutcomeLog(config)
    try:
        await log.store(sample_records(f"{name}-warmup", batch))  # connects and loads the script
        started = time.perf_counter()
        for i in range(0, len(records), batch):
            await log.store(records[i : i + batch])
        elapsed = time.perf_counter() - started
    finally:
        await log.close()
    return Throughput(len(records), elapsed, _xlen(config) - batch)


async def floor_throughput(url: str, records: list[OutcomeRecord], batch: int, name: str = "floor") -> Throughput:
    """Raw pipelined ``XADD MAXLEN ~`` of the records' fields (encoded before the clock starts: the floor is
    the client's and Redis's cost of the append itself), ``batch`` per pipeline, one awaited after the other."""
    config = _config(url, name)
    client = connect(url, connect_timeout_s=config.connect_timeout_s, command_timeout_s=config.command_timeout_s)
    fields = [codec.encode_pairs(record, retain_text=config.retain_text) for record in records]
    try:
        await _xadd_all(client, config, fields[:batch])  # connects, as the warm-up batch of store() does
        before = _xlen(config)
        started = time.perf_counter()
        for i in range(batch, len(fields), batch):
            await _xadd_all(client, config, fields[i : i + batch])
        elapsed = time.perf_counter() - started
    finally:
        await client.aclose()
    return Throughput(len(fields) - batch, elapsed, _xlen(config) - before)


async def _xadd_all(client: RedisClient, config: OutcomeLogConfig, fields: list[list[str]]) -> None:
    pipe = client.pipeline(transaction=False)
    for pairs in fields:
        pipe.execute_command("XADD", config.stream_key, "MAXLEN", "~", config.maxlen, "*", *pairs)
    await pipe.execute()


async def record_throughput(url: str, records: list[OutcomeRecord], name: str = "record") -> Throughput:
    """``record()`` of every record (yielding to the loop every ``RECORD_CHUNK``), until all are written."""
    config = _config(url, name)
    async with RedisOutcomeLog(config) as log:
        await log.store(sample_records(f"{name}-warmup", 10))
        before = log.stats().written
        started = time.perf_counter()
        for i in range(0, len(records), RECORD_CHUNK):
            for record in records[i : i + RECORD_CHUNK]:
                log.record(record)
            await asyncio.sleep(0)
        while log.stats().written + log.stats().dropped - before < len(records):
            if time.perf_counter() - started > WAIT_S:
                raise RuntimeError(f"record(): not all written after {WAIT_S} s: {log.stats()}")
            await asyncio.sleep(0.001)
        elapsed = time.perf_counter() - started
        dropped = log.stats().dropped
    if dropped:
        raise RuntimeError(f"record() dropped {dropped} record(s)")
    return Throughput(len(records), elapsed, _xlen(config) - 10)


async def wait_for_stream(url: str, expected: int, timeout_s: float = 10.0) -> int:
    """The length of the service's outcome stream once it reaches ``expected`` (or after ``timeout_s``)."""
    config = OutcomeLogConfig(url=url)
    # the load generator's requests all come from edge model version "bench", cohort "bench" (load.py)
    stream = config.partition("bench", "bench").stream
    deadline = time.perf_counter() + timeout_s
    while (length := _xlen(config, stream)) < expected and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    return length
