"""Appends outcome records to the stream at most once per query id, one round trip per batch.

A Lua script makes "is this query id new? then XADD and remember it" atomic, so concurrent writers and
retries after a lost reply never log a query twice. The script takes many records per call (all keys
share one hash tag, so this holds in Redis Cluster too) and the calls of one batch are pipelined
without MULTI: about 1,000 records cost one round trip and no call blocks Redis for long. Each call
answers with one string of flags rather than an array: redis-py parses an array element by element,
which cost more than encoding the records.

A writer made with ``held`` (one caller writing one batch at a time: the service's flusher) sends a single
server's batches on a connection of the client's pool held for it
(:class:`~cloud_service.redis_client.HeldConnection`: commands packed once, replies parsed with hiredis),
without redis-py's pipeline machinery; a cluster's go through redis-py's cluster pipeline.

No entry holds text. With ``retain_text``, the service's records of judgeable escalations are also held
whole, with a TTL, for the judge (:mod:`cloud_service.outcomes.held`), in the same pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from cloud_service.outcomes import codec, held, statistics
from cloud_service.outcomes.config import OutcomeLogConfig, PartitionKeys
from cloud_service.ports import StoreResult
from cloud_service.redis_client import HeldConnection, RedisClient, packed, translated
from cloud_service.store.scripts import script
from confroute.contract.outcome import OutcomeRecord
from confroute.errors import Unavailable

# The script (``lua/append_once.lua``) takes all of a call's records in one JSON argument rather than one
# argument per record or field: redis-py spends microseconds packing each argument, and one JSON text is
# encoded (rapidjson) and decoded (Lua's bundled cjson) in C.
# Records per script call: Redis runs one call at a time, so this bounds how long others wait (~0.5 ms).
RECORDS_PER_CALL = 100

_Call = tuple[list[str], list[str | int]]
_SKIP_FOLD = False  # JSON false: no statistics for this record
_APPENDED = ord("1")


class OutcomeWriter:
    """Writes batches of records durably; every failure is a confroute error (see ``redis_client``)."""

    def __init__(self, client: RedisClient, config: OutcomeLogConfig, *, held: bool = False) -> None:
        """``held``: the caller writes one batch at a time, on a connection held for it (see the module
        docstring)."""
        self._client = client
        self._config = config
        self._held = HeldConnection(client) if held and isinstance(client, Redis) else None

    async def write(
        self, records: Sequence[OutcomeRecord], origin: str = "device", wait_aof_ms: int = 0
    ) -> StoreResult:
        """Appends the records ``origin`` has not logged before; returns which ids were new and which were not.

        ``origin`` is ``device`` for uploaded outcomes and ``service`` for the service's own record of an
        escalation; it is stored in the entry's ``origin`` field. ``wait_aof_ms`` > 0 returns only once the
        server fsynced the batch to its AOF (``WAITAOF 1 0``, see ``cloud_service.store.durability``) and
        raises ``Unavailable`` if that took longer.
        """
        if not records:
            return StoreResult(stored=(), duplicates=())
        order, calls, tags = self._calls(records, origin)
        holds = [r for r in records if origin == "service" and self._config.retain_text and held.judgeable(r)]
        with translated("appending outcome records"):
            by_order = await self._run(calls, tags, holds, wait_aof_ms)
        flags = bytearray(len(records))
        for position, flag in zip(order, by_order, strict=True):
            flags[position] = flag
        stored = tuple(record.query_id for record, flag in zip(records, flags, strict=True) if flag == _APPENDED)
        duplicates = tuple(record.query_id for record, flag in zip(records, flags, strict=True) if flag != _APPENDED)
        return StoreResult(stored=stored, duplicates=duplicates)

    def _calls(self, records: Sequence[OutcomeRecord], origin: str) -> tuple[list[int], list[_Call], set[str]]:
        """Script calls of at most ``RECORDS_PER_CALL`` records of one partition each, the position of each
        of their records in ``records``, and the tags of the partitions written."""
        def partition_of(position: int) -> tuple[str, str]:
            record = records[position]
            return record.edge_model.version, record.cohort

        order = sorted(range(len(records)), key=partition_of)
        calls: list[_Call] = []
        tags: set[str] = set()
        for (version, cohort), group in groupby(order, key=partition_of):
            keys = self._config.partition(version, cohort)
            tags.add(keys.tag)
            positions = list(group)
            for i in range(0, len(positions), RECORDS_PER_CALL):
                calls.append(self._call(keys, [records[p] for p in positions[i : i + RECORDS_PER_CALL]], origin))
        return order, calls, tags

    def _call(self, keys: PartitionKeys, records: Sequence[OutcomeRecord], origin: str) -> _Call:
        config = self._config
        fold = config.statistics and origin == "device"
        script_keys = [keys.stream]
        fields: list[list[str]] = []
        folds: list[object] = []
        for record in records:
            script_keys += (keys.seen(record.query_id, origin), keys.stats(record.mode._value_),
                            keys.labelled(record.query_id), keys.arm(record.policy_version))
            pairs = [*codec.encode_pairs(record, retain_text=False), "origin", origin]
            if fold:
                pairs += (statistics.FOLDED_FIELD, "1")
            fields.append(pairs)
            folds.append(statistics.record_fold(record).to_lua() if fold else _SKIP_FOLD)
        return script_keys, [config.dedupe_ttl_s, config.maxlen, codec.to_json(fields), codec.to_json(folds)]

    async def _run(self, calls: list[_Call], tags: set[str], holds: list[OutcomeRecord], wait_aof_ms: int) -> bytes:
        try:
            return await self._evalsha(calls, tags, holds, wait_aof_ms)
        except NoScriptError:  # a restarted (or another) server: no script ran, so running again is safe
            await script("append_once").load(self._client)
            # The pipeline's other commands did run: the texts are held and queued already.
            return await self._evalsha(calls, tags, [], wait_aof_ms)

    async def _evalsha(self, calls: list[_Call], tags: set[str], holds: list[OutcomeRecord], wait_aof_ms: int) -> bytes:
        """The flags of every record of ``calls``, in order; the partitions' tags are registered too
        (a set in its own slot, so a separate command: registering twice is harmless), and the held texts
        written. ``WAITAOF`` last, on the pipeline's connection: it waits for the fsync of that connection's
        writes."""
        if self._held is not None and not wait_aof_ms:
            return await self._evalsha_held(self._held, calls, tags, holds)
        pipe = self._client.pipeline(transaction=False)
        append_once = script("append_once")
        for keys, args in calls:
            append_once.queue(pipe, keys, args)
        pipe.sadd(self._config.partitions_key, *sorted(tags))
        self._hold(pipe, holds)
        if wait_aof_ms:
            pipe.execute_command("WAITAOF", 1, 0, wait_aof_ms)
        replies: list[Any] = await pipe.execute()
        if wait_aof_ms:
            fsynced = replies.pop()
            if int(fsynced[0]) < 1:
                raise Unavailable(f"Redis did not fsync the batch to its AOF within {wait_aof_ms} ms")
        return b"".join(replies[:len(calls)])

    async def _evalsha_held(
        self, connection: HeldConnection, calls: list[_Call], tags: set[str], holds: list[OutcomeRecord]
    ) -> bytes:
        """:meth:`_evalsha`'s commands, packed, on the held connection; the first error reply is raised, as
        redis-py's pipeline raises it, once every reply is read. (The service's records are acknowledged to
        nobody: a batch that waits for ``WAITAOF`` goes through the pipeline.)"""
        sha = script("append_once").sha
        commands = [packed("EVALSHA", sha, len(keys), *keys, *args) for keys, args in calls]
        commands.append(packed("SADD", self._config.partitions_key, *sorted(tags)))
        commands += self._hold_commands(holds)
        replies = await connection.execute(b"".join(commands), len(commands))
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return b"".join(replies[:len(calls)])

    def _hold_commands(self, records: list[OutcomeRecord]) -> list[bytes]:
        """:meth:`_hold`'s commands, packed."""
        config = self._config
        commands: list[bytes] = []
        for record in records:
            keys = config.partition(record.edge_model.version, record.cohort)
            commands.append(packed("SET", keys.held(record.query_id), held.hold_value(record), "EX", config.text_ttl_s))
            commands.append(packed("XADD", keys.to_judge, "MAXLEN", "~", config.maxlen, "*", "qid", record.query_id))
        return commands

    def _hold(self, pipe: Any, records: list[OutcomeRecord]) -> None:
        """Holds each record's texts under its TTL (one SET ... EX: never a key without one) and queues its
        id for the judge."""
        config = self._config
        for record in records:
            keys = config.partition(record.edge_model.version, record.cohort)
            pipe.set(keys.held(record.query_id), held.hold_value(record), ex=config.text_ttl_s)
            pipe.xadd(keys.to_judge, {"qid": record.query_id}, maxlen=config.maxlen, approximate=True)
