"""Per-device rate limits that hold across replicas: a token bucket per (device, kind of call) in Redis.

One ``EVALSHA`` per admitted call: the script refills the bucket from Redis's own clock (so replicas'
clocks do not matter), takes one token if there is one and otherwise answers how many milliseconds
until there will be. The caller turns that into :class:`~confroute.errors.RateLimited`, which the
service answers RESOURCE_EXHAUSTED with ``retry-after-ms`` and the device honours.

Checks share round trips: at most one pipeline of checks is in flight; the checks that arrive meanwhile
go out together in the next one as soon as it returns (an idle replica sends a lone check at once, at
the end of the event loop's turn; a busy one sends many per round trip). A write and a read per call were
the largest part of an escalation's own CPU time (on loopback the sender's kernel also runs Redis's
side of TCP; bench.cloud_service, docs/service-profile.md). Each call still gets its own bucket's answer.

On a single server the checks go out on a connection of the client's pool held for them
(:class:`~cloud_service.redis_client.HeldConnection`: pre-packed ``EVALSHA``s, replies parsed with hiredis),
not through redis-py's command machinery, which cost several times the round trip's own CPU; a cluster's
checks go through redis-py's cluster pipeline, which routes each bucket to its node.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from cloud_service.redis_client import HeldConnection, RedisClient, packed, translated
from cloud_service.store.schema import IdentityKeys
from cloud_service.store.scripts import script
from confroute.errors import RateLimited


@dataclass(frozen=True)
class Rate:
    """``per_s`` tokens a second, at most ``burst`` saved up; ``per_s`` 0 is no limit."""

    per_s: float
    burst: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.per_s) and self.per_s >= 0) or self.burst < 1:
            raise ValueError(f"a rate needs per_s >= 0 and burst >= 1, got {self.per_s}, {self.burst}")


_Take = tuple[str, Rate, "asyncio.Future[int]"]  # a bucket's key, its rate, and where its answer goes
_MAX_PACKED = 100_000  # buckets whose packed EVALSHA is kept


class RateLimiter:
    """Token buckets in Redis, one per (principal, kind); the client is the caller's to close."""

    def __init__(
        self, redis: RedisClient, rates: dict[str, Rate], keys: IdentityKeys | None = None, *, held: bool = True
    ) -> None:
        """``held`` False sends a single server's checks through redis-py's pipeline too (a comparison)."""
        self._redis = redis
        self._rates = {kind: rate for kind, rate in rates.items() if rate.per_s > 0}
        self._keys = keys or IdentityKeys()
        self._pending: list[_Take] = []  # checks not sent yet
        self._sending: asyncio.Task[None] | None = None  # the pipeline in flight
        self._scheduled = False  # a send is due at the end of this turn
        self._held = HeldConnection(redis) if held and isinstance(redis, Redis) else None  # a cluster: its pipeline
        self._packed: dict[str, bytes] = {}  # a bucket's key -> its EVALSHA, packed

    async def take(self, principal_id: str, kind: str) -> None:
        """Admits one call of ``kind`` or raises RateLimited with the wait; kinds without a rate pass."""
        rate = self._rates.get(kind)
        if rate is None:
            return
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[int] = loop.create_future()
        self._pending.append((self._keys.rate(principal_id, kind), rate, answer))
        if self._sending is None and not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._send)
        wait_ms = await answer
        if wait_ms > 0:
            raise RateLimited(f"device {principal_id} is over its {kind} rate of {rate.per_s:g}/s",
                              retry_after_s=wait_ms / 1000.0)

    def _send(self) -> None:
        self._scheduled = False
        takes, self._pending = self._pending, []
        if takes:
            self._sending = asyncio.ensure_future(self._check(takes))  # held: the loop keeps weak references
            self._sending.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending = None
        if task.cancelled():
            pending, self._pending = self._pending, []
            for _, _, answer in pending:
                answer.cancel()
        elif self._pending:  # what arrived meanwhile goes in the next pipeline
            self._send()

    async def _check(self, takes: list[_Take]) -> None:
        """One pipelined round trip for ``takes``; each answer (or the failure) goes to its caller."""
        try:
            with translated("checking a rate limit"):
                try:
                    waits = await self._evalsha(takes)
                # A restarted server ran none of its calls, so sending them again is safe; on a cluster the
                # other nodes' calls did run and are charged twice, once: stricter, never looser.
                except NoScriptError:
                    await script("token_bucket").load(self._redis)
                    waits = await self._evalsha(takes)
        except asyncio.CancelledError:  # the loop is shutting down: so are the callers
            for _, _, answer in takes:
                answer.cancel()
            raise
        except Exception as exc:
            for _, _, answer in takes:
                if not answer.done():
                    answer.set_exception(exc)
            return
        for (_, _, answer), wait_ms in zip(takes, waits, strict=True):
            if not answer.done():  # a caller cancelled meanwhile
                answer.set_result(int(wait_ms))

    async def _evalsha(self, takes: list[_Take]) -> list[Any]:
        if self._held is not None:
            return await self._evalsha_held(self._held, takes)
        pipe = self._redis.pipeline(transaction=False)
        bucket = script("token_bucket")
        for key, rate, _ in takes:
            bucket.queue(pipe, [key], [rate.per_s, rate.burst, 1])
        replies: list[Any] = await pipe.execute()
        return replies

    async def _evalsha_held(self, held: HeldConnection, takes: list[_Take]) -> list[Any]:
        commands = b"".join(self._command(key, rate) for key, rate, _ in takes)
        replies = await held.execute(commands, len(takes))
        for reply in replies:  # NOSCRIPT: every reply is, the server ran none
            if isinstance(reply, Exception):
                raise reply
        return replies

    def _command(self, key: str, rate: Rate) -> bytes:
        command = self._packed.get(key)
        if command is None:
            if len(self._packed) >= _MAX_PACKED:
                self._packed.clear()
            command = packed("EVALSHA", script("token_bucket").sha, 1, key, rate.per_s, rate.burst, 1)
            self._packed[key] = command
        return command
