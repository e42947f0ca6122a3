"""Appends outcome records to the stream at most once per query id, one round trip per batch.

A Lua script makes "is this query id new? then XADD and remember it" atomic, so concurrent writers and
retries after a lost reply never log a query twice. The script takes many records per call (all keys
share one hash tag, so this holds in Redis Cluster too) and the calls of one batch are pipelined
without MULTI: about 1,000 records cost one round trip and no call blocks Redis for long. Each call
answers with one string of flags rather than an array: redis-py parses an array element by element,
which cost more than encoding the records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from itertools import groupby
from typing import Any

from redis.exceptions import NoScriptError

from cloud_service.outcomes import codec, statistics
from cloud_service.outcomes.config import OutcomeLogConfig, PartitionKeys
from cloud_service.ports import StoreResult
from cloud_service.redis_client import RedisClient, translated
from confroute.contract.outcome import OutcomeRecord
from confroute.errors import Unavailable

# KEYS[1]: the stream; KEYS[4i-2], KEYS[4i-1], KEYS[4i], KEYS[4i+1]: record i's dedupe key, statistics
# prefix, late-label marker and policy-version totals (all in the stream's hash slot).
# ARGV[1]: dedupe TTL (s); ARGV[2]: approximate MAXLEN; ARGV[3]: a JSON array holding, for each
# record, its fields as an array [field, value, field, value, ...]; ARGV[4]: a JSON array holding, for
# each record, its statistics fold (see ``statistics.FOLD_FUNCTION``) or false. One argument for all the
# records, not one per record or field: redis-py spends microseconds packing each argument, and one
# JSON text is encoded (rapidjson) and decoded (Lua's bundled cjson) in C.
# Returns a string of one character per record: "1" appended, "0" already logged.
APPEND_ONCE = statistics.FOLD_FUNCTION + """
local ttl, maxlen = ARGV[1], ARGV[2]
local records = cjson.decode(ARGV[3])
local folds = cjson.decode(ARGV[4])
local added = {}
local markers = {}
for i = 1, #records do markers[i] = KEYS[4 * i] end
local late = redis.call('MGET', unpack(markers))
for i = 1, #records do
  local seen = KEYS[4 * i - 2]
  if redis.call('EXISTS', seen) == 0 then
    local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', unpack(records[i]))
    redis.call('SET', seen, id, 'EX', ttl)
    local spec = folds[i]
    if spec then fold(KEYS[4 * i - 1], KEYS[4 * i + 1], spec, late[i]) end
    added[i] = '1'
  else
    added[i] = '0'
  end
end
flush()
return table.concat(added)
"""
_SHA = hashlib.sha1(APPEND_ONCE.encode()).hexdigest()
# Records per script call: Redis runs one call at a time, so this bounds how long others wait (~0.5 ms).
RECORDS_PER_CALL = 100

_Call = tuple[list[str], list[str | int]]
_SKIP_FOLD = False  # JSON false: no statistics for this record
_APPENDED = ord("1")


class OutcomeWriter:
    """Writes batches of records durably; every failure is a confroute error (see ``redis_client``)."""

    def __init__(self, client: RedisClient, config: OutcomeLogConfig) -> None:
        self._client = client
        self._config = config

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
        with translated("appending outcome records"):
            by_order = await self._run(calls, tags, wait_aof_ms)
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
            pairs = [*codec.encode_pairs(record, retain_text=config.retain_text), "origin", origin]
            if fold:
                pairs += (statistics.FOLDED_FIELD, "1")
            fields.append(pairs)
            folds.append(statistics.record_fold(record).to_lua() if fold else _SKIP_FOLD)
        return script_keys, [config.dedupe_ttl_s, config.maxlen, codec.to_json(fields), codec.to_json(folds)]

    async def _run(self, calls: list[_Call], tags: set[str], wait_aof_ms: int) -> bytes:
        try:
            return await self._evalsha(calls, tags, wait_aof_ms)
        except NoScriptError:  # a restarted (or another) server: nothing ran, so running again is safe
            await self._client.script_load(APPEND_ONCE)
            return await self._evalsha(calls, tags, wait_aof_ms)

    async def _evalsha(self, calls: list[_Call], tags: set[str], wait_aof_ms: int) -> bytes:
        """The flags of every record of ``calls``, in order; the partitions' tags are registered too
        (a set in its own slot, so a separate command: registering twice is harmless). ``WAITAOF`` last,
        on the pipeline's connection: it waits for the fsync of that connection's writes."""
        pipe = self._client.pipeline(transaction=False)
        for keys, args in calls:
            # execute_command rather than evalsha(): redis-py's cluster pipeline refuses the latter by name,
            # though each call touches one slot (one partition) and routes like any keyed command.
            pipe.execute_command("EVALSHA", _SHA, len(keys), *keys, *args)
        pipe.sadd(self._config.partitions_key, *sorted(tags))
        if wait_aof_ms:
            pipe.execute_command("WAITAOF", 1, 0, wait_aof_ms)
        replies: list[Any] = await pipe.execute()
        if wait_aof_ms:
            fsynced = replies.pop()
            if int(fsynced[0]) < 1:
                raise Unavailable(f"Redis did not fsync the batch to its AOF within {wait_aof_ms} ms")
        return b"".join(replies[:len(calls)])
