"""One consumer of a consumer group on the outcome streams: what it must handle, batch by batch.

:meth:`GroupConsumer.batches` yields, in order: this consumer's own pending entries (read before a
crash or restart and never acknowledged), entries other consumers left pending longer than
``claim_idle_s`` (``XAUTOCLAIM``: their consumer died), then new entries until the stream is drained.
Acknowledging is the caller's job, once its work for a batch is committed; a batch that is not
acknowledged stays pending and comes back on the next pass (or to another consumer).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

from redis.exceptions import ResponseError

from cloud_service.redis_client import RedisClient, StreamEntry, read_entries, translated

_NEW = ">"
_OWN_PENDING = "0"


@dataclass(frozen=True)
class GroupSettings:
    group: str
    consumer: str
    batch_size: int
    claim_idle_s: float


class GroupConsumer:
    """Reads outcome streams as ``settings.consumer`` of ``settings.group`` (created at the start of the
    stream the first time)."""

    def __init__(self, client: RedisClient, settings: GroupSettings) -> None:
        self._client = client
        self._settings = settings

    async def batches(self, stream: str) -> AsyncIterator[list[StreamEntry]]:
        await self.ensure_group(stream)
        pending = await self._read(stream, _OWN_PENDING)  # one pass: what fails again waits for a claim
        if pending:
            yield pending
        while claimed := await self._claim(stream):
            yield claimed
            if len(claimed) < self._settings.batch_size:
                break
        while fresh := await self._read(stream, _NEW):
            yield fresh

    async def ack(self, stream: str, ids: list[bytes]) -> int:
        if not ids:
            return 0
        with translated("acknowledging outcome entries"):
            return int(await self._client.xack(stream, self._settings.group, *ids))

    async def ensure_group(self, stream: str) -> None:
        """Creates the group at the start of the stream (MKSTREAM) unless it exists; another consumer
        creating it at the same moment is fine."""
        with translated("creating a consumer group"):
            if await self._has_group(stream):
                return
            try:
                await self._client.xgroup_create(stream, self._settings.group, id="0", mkstream=True)
            except ResponseError:
                if not await self._has_group(stream):
                    raise

    async def _claim(self, stream: str) -> list[StreamEntry]:
        idle_ms = int(self._settings.claim_idle_s * 1000)
        with translated("claiming idle outcome entries"):
            reply = await self._client.xautoclaim(
                stream, self._settings.group, self._settings.consumer, idle_ms, "0-0", count=self._settings.batch_size
            )
        return [(ident, fields or {}) for ident, fields in cast("list[tuple[bytes, Any]]", reply[1])]

    async def _read(self, stream: str, after: str) -> list[StreamEntry]:
        with translated("reading an outcome stream"):
            reply = await self._client.xreadgroup(
                self._settings.group, self._settings.consumer, {stream: after}, count=self._settings.batch_size
            )
        return read_entries(reply)

    async def _has_group(self, stream: str) -> bool:
        if not await self._client.exists(stream):
            return False
        groups = await self._client.xinfo_groups(stream)
        return any(_text(group.get("name", b"")) == self._settings.group for group in groups)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
