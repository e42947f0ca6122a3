"""Folding the outcome streams into the statistics through a consumer group, each entry exactly once.

Several workers share a stream as consumers of one group (``XREADGROUP``). An entry is acknowledged in
the same Lua script that folds it, and folded only if that ``XACK`` removed it from the group's
pending list: whoever acknowledges first folds, so an entry is never folded twice, and an entry read
by a worker that died before its script ran stays pending until a worker takes it over (its own
pending entries after a restart, ``XAUTOCLAIM`` for another consumer's idle ones). Entries whose
statistics were kept at ingest (field ``st``) and the service's records are acknowledged without a fold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cloud_service.calibration.config import RecalibrationConfig
from cloud_service.outcomes import codec, statistics
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.consumer import GroupConsumer, GroupSettings
from cloud_service.outcomes.labels import folded_marker
from cloud_service.redis_client import RedisClient, StreamEntry, translated
from cloud_service.store.scripts import script
from confroute.contract.outcome import OutcomeRecord


@dataclass
class FoldCounts:
    """Entries read, acknowledged by this worker, and folded by it (the rest: done at ingest)."""

    read: int = 0
    acknowledged: int = 0
    folded: int = 0

    def add(self, other: FoldCounts) -> None:
        self.read += other.read
        self.acknowledged += other.acknowledged
        self.folded += other.folded


class StreamFolder:
    """One consumer of the recalibration group on every outcome stream it is given."""

    def __init__(self, client: RedisClient, log_config: OutcomeLogConfig, config: RecalibrationConfig) -> None:
        self._client = client
        self._log = log_config
        self._config = config
        settings = GroupSettings(config.group, config.consumer, config.batch_size, config.claim_idle_s)
        self._consumer = GroupConsumer(client, settings)

    async def fold_all(self, stream: str) -> FoldCounts:
        """Folds this consumer's pending entries, then others' idle ones, then every new one."""
        counts = FoldCounts()
        async for entries in self._consumer.batches(stream):
            counts.add(await self._fold_batch(stream, entries))
        return counts

    async def _fold_batch(self, stream: str, entries: Sequence[StreamEntry]) -> FoldCounts:
        """Folds and acknowledges ``entries`` in one script (atomic: a crash leaves them all pending)."""
        keys = [stream]
        items: list[list[object]] = []
        for ident, fields in entries:
            record = _record(fields) if _needs_fold(fields) else None  # decoding is most of the cost: only if needed
            spec = statistics.record_fold(record).to_lua() if record is not None else False
            keys += _entry_keys(self._log, record, stream)
            items.append([ident.decode() if isinstance(ident, bytes) else ident, spec])
        args: list[str | int] = [self._config.group, self._log.dedupe_ttl_s, codec.to_json(items)]
        with translated("folding outcome entries"):  # lua/fold_and_ack.lua
            acked, folded = await script("fold_and_ack").run(self._client, keys, args)
        return FoldCounts(read=len(entries), acknowledged=int(acked), folded=int(folded))


def _needs_fold(fields: Mapping[bytes, bytes]) -> bool:
    return fields.get(b"origin", b"device") == b"device" and statistics.FOLDED_FIELD.encode() not in fields


def _record(fields: Mapping[bytes, bytes]) -> OutcomeRecord | None:
    """The entry's record, or None for an entry that is gone (trimmed) or not an outcome."""
    try:
        return codec.decode(fields) if fields else None
    except (KeyError, ValueError):
        return None


def _entry_keys(config: OutcomeLogConfig, record: OutcomeRecord | None, stream: str) -> list[str]:
    if record is None:  # acknowledged without a fold: the keys only hold the positions (in the stream's slot)
        return [stream, stream, stream, stream]
    keys = config.partition(record.edge_model.version, record.cohort)
    return [keys.stats(record.mode._value_), keys.labelled(record.query_id), folded_marker(config, record),
            keys.arm(record.policy_version)]
