"""Versioned routing policies in Redis, one stream per (edge model version, cohort).

Each published policy is one stream entry (``version``, ``policy``: the serialized protobuf); the last
entry is the current policy, and the stream keeps about ``history`` earlier ones. Publishing is a Lua
script, so it is atomic: republishing the current version with the same content changes nothing, and
reusing it with other content is refused. Watchers block on ``XREAD`` after the last entry they saw, so
an update reaches them at once and none is missed while they are connected; after losing Redis they
reconnect with jittered backoff and start again from the current policy (a restarted server without
persistence may have lost the stream).

"Newer than ``known_version``" means "published later": a watcher yields the current policy whenever
its version differs from the one the device holds, which also rolls devices back when an operator
republishes an older version.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Mapping

from google.protobuf.message import DecodeError

from cloud_service.outcomes.backoff import Backoff
from cloud_service.outcomes.redis_client import connect, read_entries, stream_entries, translated
from cloud_service.policies.config import PolicyStoreConfig
from confroute.contract.policy import Policy
from confroute.errors import InvalidPolicy, Unavailable
from confroute.v1 import fleet_pb2

logger = logging.getLogger(__name__)

# KEYS[1]: the policy stream. ARGV: version, serialized policy, history length.
# Returns 1 when appended, 0 when that version is current with the same bytes, -1 when with other bytes.
PUBLISH = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if last then
  local fields = last[2]
  if fields[2] == ARGV[1] then
    if fields[4] == ARGV[2] then return 0 end
    return -1
  end
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'version', ARGV[1], 'policy', ARGV[2])
return 1
"""
_START = b"0-0"

_Entry = tuple[bytes, Policy]


class RedisPolicyStore:
    """A :class:`cloud_service.ports.PolicyStore` on Redis Streams."""

    def __init__(self, config: PolicyStoreConfig) -> None:
        self._config = config
        self._client = connect(
            config.url, connect_timeout_s=config.connect_timeout_s, command_timeout_s=config.command_timeout_s
        )
        self._publish = self._client.register_script(PUBLISH)

    @property
    def config(self) -> PolicyStoreConfig:
        return self._config

    async def current(self, edge_model_version: str, cohort: str) -> Policy | None:
        """The policy published last for this edge model version and cohort, if any."""
        _, policy = await self._latest(self._config.stream_key(edge_model_version, cohort))
        return policy

    async def publish(self, policy: Policy) -> None:
        """Makes ``policy`` current for its edge model version and cohort and wakes the watchers."""
        key = self._config.stream_key(policy.edge_model.version, policy.cohort)
        payload = policy.to_pb().SerializeToString(deterministic=True)
        with translated("publishing a policy"):
            outcome = await self._publish(keys=[key], args=[policy.policy_version, payload, self._config.history])
        if outcome == -1:
            raise InvalidPolicy(
                f"policy version {policy.policy_version!r} is already current for edge model "
                f"{policy.edge_model.version!r}, cohort {policy.cohort!r}, with other content; "
                "publish changes under a new version",
                field="policy_version",
            )

    async def watch(self, edge_model_version: str, cohort: str, known_version: str) -> AsyncGenerator[Policy, None]:
        """Yields the current policy if its version is not ``known_version``, then every later one.

        Never ends by itself; Redis outages are waited out (the caller cancels or closes the iterator).
        """
        key = self._config.stream_key(edge_model_version, cohort)
        backoff = Backoff(self._config.retry_base_s, self._config.retry_cap_s)
        after: bytes | None = None  # None: (re)start from the current policy
        while True:
            try:
                entries = await self._next_entries(key, after)
            except Unavailable as exc:
                after = None
                await self._wait_to_retry(backoff, exc)
                continue
            backoff.reset()
            if not entries and after is None:
                after = _START  # nothing published yet: wait for the first entry
            for entry_id, policy in entries:
                after = entry_id
                if policy.policy_version != known_version:
                    known_version = policy.policy_version
                    yield policy

    async def close(self) -> None:
        """Closes the connections; cancel or close the watchers first."""
        await self._client.aclose()

    async def _next_entries(self, key: str, after: bytes | None) -> list[_Entry]:
        if after is None:
            entry_id, policy = await self._latest(key)
            return [(entry_id, policy)] if policy is not None else []
        block_ms = int(self._config.watch_block_s * 1000)
        with translated("waiting for policy updates"):
            reply = await self._client.xread({key: after}, count=16, block=block_ms)
        return [(entry_id, _decode(fields)) for entry_id, fields in read_entries(reply)]

    async def _latest(self, key: str) -> tuple[bytes, Policy | None]:
        with translated("reading the current policy"):
            reply = await self._client.xrevrange(key, count=1)
        entries = stream_entries(reply)
        if not entries:
            return _START, None
        entry_id, fields = entries[0]
        return entry_id, _decode(fields)

    async def _wait_to_retry(self, backoff: Backoff, exc: Unavailable) -> None:
        delay = backoff.next_delay()
        log = logger.warning if backoff.attempts == 1 else logger.debug  # one warning per outage
        log("policy watch lost Redis, retrying in %.2f s: %s", delay, exc)
        await asyncio.sleep(delay)


def _decode(fields: Mapping[bytes, bytes]) -> Policy:
    try:
        message = fleet_pb2.Policy.FromString(fields[b"policy"])
    except (KeyError, DecodeError) as exc:
        raise InvalidPolicy(f"a stored policy cannot be decoded: {exc!r}") from exc
    return Policy.from_pb(message)
