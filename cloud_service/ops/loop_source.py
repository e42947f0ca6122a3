"""What the loop monitor reads of the outcome log: the partitions, and each one's last window.

A window is the newest ``count`` entries of the partition's stream that a device logged (the service's
own record of an escalation is the same query seen from the cloud), the late labels written back to the
partition's ``labels`` stream (``cloud_service.outcomes.labels``) and the last recalibrations' provenance
(``cloud_service.calibration.worker``): three ``XREVRANGE`` in one pipelined round trip on one slot.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cloud_service.outcomes import codec
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.statistics import CODE_LABELS
from cloud_service.redis_client import RedisClient, stream_entries, translated
from cloud_service.store.schema import Partition
from confroute.contract.enums import Label
from confroute.contract.outcome import OutcomeRecord

RECALIBRATIONS = 5
SHARED_STREAM_READ = 4  # one stream for every partition: read this many times the window, keep the partition's


@dataclass(frozen=True)
class Window:
    """One partition's recent outcomes (oldest first), late labels by query id, recalibrations (newest first)."""

    records: tuple[OutcomeRecord, ...] = ()
    late_labels: Mapping[str, Label] = field(default_factory=dict)
    recalibrations: tuple[Mapping[str, Any], ...] = ()


class LoopSource(Protocol):
    """Where windows come from (:class:`RedisLoopSource`)."""

    async def partitions(self) -> list[Partition]: ...

    async def window(self, partition: Partition, count: int) -> Window: ...


class RedisLoopSource:
    """Windows read from the outcome log's streams in Redis."""

    def __init__(self, client: RedisClient, log: OutcomeLogConfig) -> None:
        self._client = client
        self._log = log

    async def partitions(self) -> list[Partition]:
        with translated("listing outcome partitions"):
            tags = await self._client.smembers(self._log.partitions_key)  # type: ignore[misc]
        found = [Partition.from_tag(tag.decode() if isinstance(tag, bytes) else tag) for tag in tags]
        return sorted(found, key=lambda p: (p.edge_model_version, p.cohort))

    async def window(self, partition: Partition, count: int) -> Window:
        keys = self._log.partition(partition.edge_model_version, partition.cohort)
        # One stream may hold every partition (a prefix with its own hash tag): read more, keep this one's.
        pipe = self._client.pipeline(transaction=False)
        pipe.xrevrange(keys.stream, count=count * SHARED_STREAM_READ if self._log.single_slot else count)
        pipe.xrevrange(keys.labels, count=count)
        pipe.xrevrange(keys.recalibrations, count=RECALIBRATIONS)
        with translated("reading an outcome window"):
            entries, labels, recalibrations = await pipe.execute()
        # Decoding thousands of entries takes milliseconds of Python: off the event loop.
        return await asyncio.to_thread(_window, partition, count, entries, labels, recalibrations)


def _window(partition: Partition, count: int, entries: Any, labels: Any, recalibrations: Any) -> Window:
    records = [record for _, fields in reversed(stream_entries(entries))
               if fields.get(b"origin", b"device") == b"device" and _in(fields, partition)
               and (record := _decoded(fields)) is not None]
    provenance = tuple(map(_recalibration, stream_entries(recalibrations)))
    return Window(tuple(records[-count:]), _labels(labels), provenance)


def _decoded(fields: Mapping[bytes, bytes]) -> OutcomeRecord | None:
    """The entry's record; None for one this version cannot read (the window does without it)."""
    try:
        return codec.decode(fields)
    except (KeyError, ValueError, TypeError):
        return None


def _in(fields: Mapping[bytes, bytes], partition: Partition) -> bool:
    return (fields.get(b"edge_version", b"").decode() == partition.edge_model_version
            and fields.get(b"cohort", b"").decode() == partition.cohort)


def _labels(reply: Any) -> dict[str, Label]:
    found: dict[str, Label] = {}
    for _, fields in reversed(stream_entries(reply)):
        label = CODE_LABELS.get(fields.get(b"label", b"").decode())
        if label is not None:
            found.setdefault(fields.get(b"qid", b"").decode(), label)
    return found


def _recalibration(entry: Any) -> dict[str, Any]:
    entry_id, fields = entry
    text = {key.decode(): value.decode() for key, value in fields.items()}
    provenance = json.loads(text.get("provenance", "{}") or "{}")
    return {"id": entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id), "at": text.get("at", ""),
            "status": text.get("status", ""), "version": text.get("version", ""), "reason": text.get("reason", ""),
            "provenance": provenance}
