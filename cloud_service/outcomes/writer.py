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

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from cloud_service.outcomes import codec
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.redis_client import translated
from cloud_service.ports import StoreResult
from confroute.contract.outcome import OutcomeRecord

# KEYS[1]: the stream; KEYS[1 + i]: the dedupe key of record i.
# ARGV[1]: dedupe TTL (s); ARGV[2]: approximate MAXLEN; ARGV[3]: a JSON array holding, for each
# record, its fields as an array [field, value, field, value, ...]. One argument for all the records,
# not one per record or field: redis-py spends microseconds packing each argument, and one JSON text
# is encoded (rapidjson) and decoded (Lua's bundled cjson) in C.
# Returns a string of one character per record: "1" appended, "0" already logged.
APPEND_ONCE = """
local ttl, maxlen = ARGV[1], ARGV[2]
local records = cjson.decode(ARGV[3])
local added = {}
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', unpack(records[i - 1]))
    redis.call('SET', KEYS[i], id, 'EX', ttl)
    added[i - 1] = '1'
  else
    added[i - 1] = '0'
  end
end
return table.concat(added)
"""
_SHA = hashlib.sha1(APPEND_ONCE.encode()).hexdigest()
# Records per script call: Redis runs one call at a time, so this bounds how long others wait (~0.5 ms).
RECORDS_PER_CALL = 100

_Call = tuple[list[str], list[str | int]]
_APPENDED = ord("1")


class OutcomeWriter:
    """Writes batches of records durably; every failure is a confroute error (see ``redis_client``)."""

    def __init__(self, client: Redis, config: OutcomeLogConfig) -> None:
        self._client = client
        self._config = config

    async def write(self, records: Sequence[OutcomeRecord], origin: str = "device") -> StoreResult:
        """Appends the records ``origin`` has not logged before; returns which ids were new and which were not.

        ``origin`` is ``device`` for uploaded outcomes and ``service`` for the service's own record of an
        escalation; it is stored in the entry's ``origin`` field.
        """
        calls = [self._call(records[i : i + RECORDS_PER_CALL], origin)
                 for i in range(0, len(records), RECORDS_PER_CALL)]
        if not calls:
            return StoreResult(stored=(), duplicates=())
        with translated("appending outcome records"):
            flags = await self._run(calls)
        stored = tuple(record.query_id for record, flag in zip(records, flags, strict=True) if flag == _APPENDED)
        duplicates = tuple(record.query_id for record, flag in zip(records, flags, strict=True) if flag != _APPENDED)
        return StoreResult(stored=stored, duplicates=duplicates)

    def _call(self, records: Sequence[OutcomeRecord], origin: str) -> _Call:
        config = self._config
        keys = [config.stream_key, *(config.seen_key(record.query_id, origin) for record in records)]
        fields = [[*codec.encode_pairs(record, retain_text=config.retain_text), "origin", origin]
                  for record in records]
        return keys, [config.dedupe_ttl_s, config.maxlen, codec.to_json(fields)]

    async def _run(self, calls: list[_Call]) -> bytes:
        try:
            return await self._evalsha(calls)
        except NoScriptError:  # a restarted (or another) server: nothing ran, so running again is safe
            await self._client.script_load(APPEND_ONCE)
            return await self._evalsha(calls)

    async def _evalsha(self, calls: list[_Call]) -> bytes:
        """The flags of every record of ``calls``, in order."""
        if len(calls) == 1:  # the common case of small batches: a pipeline would only add overhead
            keys, args = calls[0]
            return bytes(await self._client.evalsha(_SHA, len(keys), *keys, *args))
        pipe = self._client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(_SHA, len(keys), *keys, *args)
        replies: list[bytes] = await pipe.execute()
        return b"".join(replies)
