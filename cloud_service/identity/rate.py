"""Per-device rate limits that hold across replicas: a token bucket per (device, kind of call) in Redis.

An ``EVALSHA`` per check (or per lease, below): the script refills the bucket from Redis's own clock (so
replicas' clocks do not matter), takes as many whole tokens as it holds up to the count asked, and answers
how many it took and, when fewer than asked, how many milliseconds until the next. A caller left without a
token gets :class:`~confroute.errors.RateLimited` with that wait, which the service answers
RESOURCE_EXHAUSTED with ``retry-after-ms`` and the device honours.

Checks share round trips: at most one pipeline of checks is in flight; the checks that arrive meanwhile
go out together in the next one as soon as it returns (an idle replica sends a lone check at once, at
the end of the event loop's turn; a busy one sends many per round trip). A write and a read per call were
the largest part of an escalation's own CPU time (on loopback the sender's kernel also runs Redis's
side of TCP; bench.cloud_service, docs/service-profile.md). Each call still gets its own bucket's answer.

Leases: a busy device's tokens are taken ahead of use. A replica asks a bucket for one token per waiting
call; when it spent what it took last within ``lease_ttl_s`` it asks for twice as many as the last time,
when some of them expired unspent it asks for as many as it spent (at most ``lease_max``, and at most what
the bucket refills in ``lease_ttl_s``), and spends the ones left over without a round trip until they run
out or ``lease_ttl_s`` passes; then they are dropped. The script
grants what the bucket holds, up to the count asked. What this does to exactness, with R replicas and
L = min(lease_max, floor(rate x lease_ttl_s)) (10/s with the defaults 0.5 s and 16: L = 5):

- never looser in the long run: every admitted call spent a token taken from the Redis bucket, so the
  admitted rate never passes the configured rate;
- over a window of T seconds a device is admitted at most burst + rate x T + R x L calls (the bucket's own
  bound plus what the replicas held when the window opened, each lease taken at most ``lease_ttl_s``
  earlier): at most R x ``lease_ttl_s`` seconds' worth of its rate more;
- stricter: tokens leased by one replica and not spent there are lost to the device's calls on the others
  (at most L per replica per ``lease_ttl_s``), so a device spread over replicas may be refused early;
- a rate of under 2 tokens per ``lease_ttl_s`` (L <= 1), a device's first call, or one after a pause is
  checked in Redis per call, exactly as without leases (``lease_ttl_s`` 0 turns leasing off).
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
_MAX_KEPT = 100_000  # buckets whose packed EVALSHA and lease are kept
LEASE_TTL_S = 0.5  # how long a replica may spend tokens it took from a bucket ahead of use
LEASE_MAX = 16  # the most tokens one replica takes from one bucket in one round trip ahead of use


@dataclass
class _Lease:
    """Tokens this replica took from a bucket and has not spent yet, spendable until ``expires``."""

    tokens: int
    expires: float  # the event loop's clock
    size: int  # tokens the bucket granted the last time, the callers' included


class RateLimiter:
    """Token buckets in Redis, one per (principal, kind); the client is the caller's to close.

    With ``lease_ttl_s`` > 0 a replica takes a busy bucket's tokens ahead of use (a lease, see the module
    docstring) and spends them without a round trip until they run out or ``lease_ttl_s`` passes.
    """

    def __init__(
        self,
        redis: RedisClient,
        rates: dict[str, Rate],
        keys: IdentityKeys | None = None,
        *,
        held: bool = True,
        lease_ttl_s: float = LEASE_TTL_S,
        lease_max: int = LEASE_MAX,
    ) -> None:
        """``held`` False sends a single server's checks through redis-py's pipeline too (a comparison);
        ``lease_ttl_s`` 0 takes every token in Redis when it is spent (no leases)."""
        self._redis = redis
        self._rates = {kind: rate for kind, rate in rates.items() if rate.per_s > 0}
        self._keys = keys or IdentityKeys()
        self._pending: list[_Take] = []  # checks not sent yet
        self._sending: asyncio.Task[None] | None = None  # the pipeline in flight
        self._scheduled = False  # a send is due at the end of this turn
        self._held = HeldConnection(redis) if held and isinstance(redis, Redis) else None  # a cluster: its pipeline
        self._packed: dict[tuple[str, int], bytes] = {}  # (a bucket's key, tokens wanted) -> its EVALSHA, packed
        self._lease_ttl_s = lease_ttl_s
        self._lease_max = lease_max
        self._leases: dict[str, _Lease] = {}  # a bucket's key -> what this replica holds of it

    async def take(self, principal_id: str, kind: str) -> None:
        """Admits one call of ``kind`` or raises RateLimited with the wait; kinds without a rate pass."""
        rate = self._rates.get(kind)
        if rate is None:
            return
        key = self._keys.rate(principal_id, kind)
        loop = asyncio.get_running_loop()
        lease = self._leases.get(key)
        if lease is not None and lease.tokens > 0 and loop.time() < lease.expires:
            lease.tokens -= 1  # taken from the bucket ahead of use, within the lease's time
            return
        answer: asyncio.Future[int] = loop.create_future()
        self._pending.append((key, rate, answer))
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
        """One pipelined round trip for ``takes``, one lease per bucket; each answer (or the failure) goes to
        its caller."""
        buckets = _by_bucket(takes)
        wanted = [self._wanted(key, rate, len(answers)) for key, (rate, answers) in buckets.items()]
        try:
            with translated("checking a rate limit"):
                try:
                    replies = await self._evalsha(buckets, wanted)
                # A restarted server ran none of its calls, so sending them again is safe; on a cluster the
                # other nodes' calls did run and are charged twice, once: stricter, never looser.
                except NoScriptError:
                    await script("token_bucket").load(self._redis)
                    replies = await self._evalsha(buckets, wanted)
        except asyncio.CancelledError:  # the loop is shutting down: so are the callers
            for _, _, answer in takes:
                answer.cancel()
            raise
        except Exception as exc:
            for _, _, answer in takes:
                if not answer.done():
                    answer.set_exception(exc)
            return
        for (key, (rate, answers)), (granted, wait_ms) in zip(buckets.items(), replies, strict=True):
            self._hand_out(key, answers, int(granted), int(wait_ms), self._lease_bound(rate))

    def _lease_bound(self, rate: Rate) -> int:
        """The most tokens this replica holds of one bucket ahead of use: no more than it refills in a lease."""
        return min(self._lease_max, math.floor(rate.per_s * self._lease_ttl_s))

    def _wanted(self, key: str, rate: Rate, callers: int) -> int:
        """Tokens to ask ``key``'s bucket for: at least one per waiting caller; for a device busy on this
        replica, a lease of twice the last one when it was spent within its time, or of what was spent of it
        when some expired, at most the kind's lease bound; after a pause, no lease."""
        lease = self._leases.get(key)
        bound = self._lease_bound(rate)
        if lease is None or bound <= 1 or asyncio.get_running_loop().time() >= lease.expires + self._lease_ttl_s:
            return callers
        spent = lease.size - lease.tokens
        return max(callers, min(bound, 2 * lease.size if lease.tokens == 0 else spent))

    def _hand_out(self, key: str, answers: list[asyncio.Future[int]], granted: int, wait_ms: int,
                  bound: int) -> None:
        """The granted tokens to the waiting callers in order, the rest (at most ``bound``: callers who
        cancelled meanwhile leave theirs, and more would pass the documented bound) kept as the bucket's lease;
        the callers beyond them are refused with the bucket's wait."""
        left = granted
        for answer in answers:
            if answer.done():  # a caller cancelled meanwhile: its token stays in the lease
                continue
            if left > 0:
                left -= 1
                answer.set_result(0)
            else:
                answer.set_result(max(1, wait_ms))
        if self._lease_ttl_s > 0:
            if len(self._leases) >= _MAX_KEPT and key not in self._leases:
                self._leases.clear()  # what they held is lost: stricter, never looser
            expires = asyncio.get_running_loop().time() + self._lease_ttl_s
            self._leases[key] = _Lease(min(left, max(bound, 0)), expires, granted)

    async def _evalsha(self, buckets: dict[str, tuple[Rate, list[asyncio.Future[int]]]],
                       wanted: list[int]) -> list[Any]:
        if self._held is not None:
            return await self._evalsha_held(self._held, buckets, wanted)
        pipe = self._redis.pipeline(transaction=False)
        bucket = script("token_bucket")
        for (key, (rate, _)), count in zip(buckets.items(), wanted, strict=True):
            bucket.queue(pipe, [key], [rate.per_s, rate.burst, count])
        replies: list[Any] = await pipe.execute()
        return replies

    async def _evalsha_held(self, held: HeldConnection, buckets: dict[str, tuple[Rate, list[asyncio.Future[int]]]],
                            wanted: list[int]) -> list[Any]:
        commands = b"".join(self._command(key, rate, count)
                            for (key, (rate, _)), count in zip(buckets.items(), wanted, strict=True))
        replies = await held.execute(commands, len(wanted))
        for reply in replies:  # NOSCRIPT: every reply is, the server ran none
            if isinstance(reply, Exception):
                raise reply
        return replies

    def _command(self, key: str, rate: Rate, count: int) -> bytes:
        command = self._packed.get((key, count))
        if command is None:
            if len(self._packed) >= _MAX_KEPT:
                self._packed.clear()
            command = packed("EVALSHA", script("token_bucket").sha, 1, key, rate.per_s, rate.burst, count)
            self._packed[(key, count)] = command
        return command


def _by_bucket(takes: list[_Take]) -> dict[str, tuple[Rate, list[asyncio.Future[int]]]]:
    """``takes`` grouped by bucket, in order of arrival."""
    buckets: dict[str, tuple[Rate, list[asyncio.Future[int]]]] = {}
    for key, rate, answer in takes:
        bucket = buckets.get(key)
        if bucket is None:
            buckets[key] = (rate, [answer])
        else:
            bucket[1].append(answer)
    return buckets
