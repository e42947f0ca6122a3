"""The outcome log on Redis: ``record()`` off the request path, ``store()`` before an acknowledgement.

``start()`` (and the first ``store()``) asks Redis how it persists writes and refuses one without an
append-only file unless the config allows it; ``store()`` returns only once the batch is durable under
that policy (``cloud_service.store.durability``), since the device deletes what the service acknowledged.

``record()`` appends to a bounded in-memory buffer and returns at once. A background flusher, started by
``start()``, writes the buffer in batches: as soon as a batch is full, else ``flush_interval_s`` after the
first record of a batch arrived (so a burst is written together). The flusher sleeps on an event that
``record()`` sets: an idle log costs no CPU.
While Redis is unreachable the flusher keeps its batch and retries with bounded jittered backoff; the
buffer meanwhile fills up to ``buffer_size`` and then drops its OLDEST records: newer outcomes reflect the
policy and model now in use, so they are worth more to recalibration. Drops are counted in ``stats()``
and logged (at most one warning per ``DROP_WARNING_INTERVAL_S``). ``close()`` flushes with a bounded
wait; whatever it cannot write is counted as dropped and logged.

``record()`` must be called from the event loop's thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from contextlib import suppress
from types import TracebackType

from redis.asyncio.cluster import RedisCluster

from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.labels import LabelWriter, LateLabel
from cloud_service.outcomes.stats import Counters, OutcomeLogStats
from cloud_service.outcomes.writer import OutcomeWriter
from cloud_service.ports import StoreResult
from cloud_service.redis_client import connect, redacted
from cloud_service.store.durability import AckPolicy, Persistence, decide, inspect
from confroute.backoff import Backoff, BackoffSchedule
from confroute.contract.outcome import OutcomeRecord
from confroute.errors import Overloaded, Unavailable

logger = logging.getLogger(__name__)

DROP_WARNING_INTERVAL_S = 10.0


class RedisOutcomeLog:
    """An :class:`cloud_service.ports.OutcomeLog` on a Redis Stream, idempotent by query id."""

    def __init__(self, config: OutcomeLogConfig) -> None:
        self._config = config
        self._client = connect(
            config.url, connect_timeout_s=config.connect_timeout_s, command_timeout_s=config.command_timeout_s
        )
        self._writer = OutcomeWriter(self._client, config)
        self._flusher_writer = OutcomeWriter(self._client, config, held=True)  # one batch at a time
        self._labels = LabelWriter(self._client, config)
        self._ack: AckPolicy | None = None
        self._buffer: deque[OutcomeRecord] = deque()
        self._batch: list[OutcomeRecord] = []
        self._counters = Counters()
        self._waiting = asyncio.Event()  # the buffer holds records (or the log is closing)
        self._flush_now = asyncio.Event()  # a batch is full, the linger ran out, or the log is closing
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False
        self._last_drop_warning = -DROP_WARNING_INTERVAL_S

    @property
    def config(self) -> OutcomeLogConfig:
        return self._config

    def stats(self) -> OutcomeLogStats:
        """The counters now (see :class:`OutcomeLogStats`)."""
        return self._counters.snapshot(buffered=len(self._buffer) + len(self._batch))

    async def start(self) -> None:
        """Checks Redis's persistence (see :meth:`ack_policy`; raises ``Unavailable`` for a Redis without
        it), then starts the background flusher (records passed to ``record()`` before are kept). A Redis
        that cannot be reached now is checked on the first ``store()`` instead."""
        if self._ack is None:
            try:
                persistence = await inspect(self._client)
            except Unavailable as exc:
                logger.warning("outcome log: Redis unreachable at start, its persistence is checked on the first "
                               "upload: %s", exc)
            else:
                try:
                    self._ack = self._decide(persistence)
                except Unavailable:  # refused: this log is never used, so its connections go now
                    await self._client.aclose()
                    raise
        if self._flusher is None and not self._closing:
            self._flusher = asyncio.create_task(self._flush_loop(), name="outcome-log-flusher")
            logger.info("outcome log writing under %s at %s", self._config.key_prefix, redacted(self._config.url))

    async def __aenter__(self) -> RedisOutcomeLog:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def record(self, record: OutcomeRecord) -> None:
        """Queues one record for a batched write; never blocks, never raises (see the module docstring)."""
        if self._closing:
            self._drop(1, "the log is closed")
            return
        if len(self._buffer) >= self._config.buffer_size:
            self._buffer.popleft()
            self._drop(1, "the buffer is full")
        self._buffer.append(record)
        self._waiting.set()
        if len(self._buffer) >= self._config.batch_size:
            self._flush_now.set()

    async def ack_policy(self) -> AckPolicy:
        """How this log makes a batch durable before acknowledging it, read from the server once;
        raises ``Unavailable`` for a Redis without persistence unless the config allows it (see
        ``cloud_service.store.durability``)."""
        if self._ack is None:
            self._ack = self._decide(await inspect(self._client))
        return self._ack

    def _decide(self, persistence: Persistence) -> AckPolicy:
        return decide(persistence, cluster=isinstance(self._client, RedisCluster),
                      allow_volatile=self._config.allow_volatile, wait_aof_ms=self._config.wait_aof_ms)

    async def store(self, records: Sequence[OutcomeRecord]) -> StoreResult:
        """Writes the records durably (see :meth:`ack_policy`) before returning; raises ``Unavailable``
        (``Overloaded`` when Redis is out of memory) if they could not be written."""
        try:
            ack = await self.ack_policy()
            result = await self._writer.write(records, wait_aof_ms=ack.wait_aof_ms)
        except (Unavailable, Overloaded):
            self._counters.write_errors += 1
            raise
        self._count(result)
        return result

    async def label(self, labels: Sequence[LateLabel]) -> StoreResult:
        """Writes late labels a device uploaded (user feedback) as durably as :meth:`store` writes records."""
        try:
            ack = await self.ack_policy()
            return await self._labels.write_durably(labels, wait_aof_ms=ack.wait_aof_ms)
        except (Unavailable, Overloaded):
            self._counters.write_errors += 1
            raise

    async def close(self) -> None:
        """Flushes what is buffered (waiting at most ``close_timeout_s``) and closes the connections."""
        if self._closing:
            return
        self._closing = True
        self._waiting.set()
        self._flush_now.set()
        if self._flusher is None and self._buffer:
            self._flusher = asyncio.create_task(self._flush_loop(), name="outcome-log-flusher")
        try:
            if self._flusher is not None:
                await self._stop_flusher(self._flusher)
        finally:
            unwritten = len(self._buffer) + len(self._batch)
            self._buffer.clear()
            self._batch = []
            if unwritten:
                self._drop(unwritten, "not written before close", always_warn=True)
            await self._client.aclose()

    async def _stop_flusher(self, flusher: asyncio.Task[None]) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(flusher), self._config.close_timeout_s)
        except asyncio.TimeoutError:
            flusher.cancel()
            with suppress(asyncio.CancelledError):
                await flusher

    async def _flush_loop(self) -> None:
        while True:
            if not self._buffer and not self._closing:
                self._waiting.clear()
                await self._waiting.wait()
            if len(self._buffer) < self._config.batch_size and not self._closing:
                await self._linger()
            await self._drain()
            if self._closing:
                return

    async def _linger(self) -> None:
        """Waits ``flush_interval_s`` for more records, or less if a batch fills up meanwhile."""
        self._flush_now.clear()
        timer = asyncio.get_running_loop().call_later(self._config.flush_interval_s, self._flush_now.set)
        try:
            await self._flush_now.wait()
        finally:
            timer.cancel()

    async def _drain(self) -> None:
        while self._buffer:
            size = min(len(self._buffer), self._config.batch_size)
            self._batch = [self._buffer.popleft() for _ in range(size)]
            await self._write_batch()
            self._batch = []

    async def _write_batch(self) -> None:
        """Writes ``self._batch``, retrying while Redis is unreachable; a batch that cannot be encoded
        (a bug) is dropped, logged and counted rather than stopping the flusher."""
        backoff = Backoff(self._config.retry_base_s, self._config.retry_cap_s).schedule()
        while True:
            try:
                result = await self._flusher_writer.write(self._batch, origin="service")
            except (Unavailable, Overloaded) as exc:
                self._counters.write_errors += 1
                await self._wait_to_retry(backoff, exc)
            except Exception:
                self._counters.write_errors += 1
                logger.exception("outcome log: cannot write a batch of %d record(s); dropping it", len(self._batch))
                self._drop(len(self._batch), "the batch could not be written")
                return
            else:
                self._count(result)
                return

    async def _wait_to_retry(self, backoff: BackoffSchedule, exc: Exception) -> None:
        delay = backoff.next_delay()
        log = logger.warning if backoff.attempts == 1 else logger.debug  # one warning per outage, not per retry
        log("outcome log: %d record(s) wait for Redis, next try in %.2f s: %s", len(self._batch), delay, exc)
        await asyncio.sleep(delay)

    def _count(self, result: StoreResult) -> None:
        self._counters.written += len(result.stored)
        self._counters.duplicates += len(result.duplicates)

    def _drop(self, count: int, reason: str, *, always_warn: bool = False) -> None:
        self._counters.dropped += count
        now = time.monotonic()
        if always_warn or now - self._last_drop_warning >= DROP_WARNING_INTERVAL_S:
            self._last_drop_warning = now
            logger.warning(
                "outcome log dropped %d record(s): %s (%d dropped in all)", count, reason, self._counters.dropped
            )
