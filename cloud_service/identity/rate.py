"""Per-device rate limits that hold across replicas: a token bucket per (device, kind of call) in Redis.

One ``EVALSHA`` per admitted call: the script refills the bucket from Redis's own clock (so replicas'
clocks do not matter), takes one token if there is one and otherwise answers how many milliseconds
until there will be. The caller turns that into :class:`~confroute.errors.RateLimited`, which the
service answers RESOURCE_EXHAUSTED with ``retry-after-ms`` and the device honours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cloud_service.redis_client import RedisClient, translated
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


class RateLimiter:
    """Token buckets in Redis, one per (principal, kind); the client is the caller's to close."""

    def __init__(self, redis: RedisClient, rates: dict[str, Rate], keys: IdentityKeys | None = None) -> None:
        self._redis = redis
        self._rates = {kind: rate for kind, rate in rates.items() if rate.per_s > 0}
        self._keys = keys or IdentityKeys()

    async def take(self, principal_id: str, kind: str) -> None:
        """Admits one call of ``kind`` or raises RateLimited with the wait; kinds without a rate pass."""
        rate = self._rates.get(kind)
        if rate is None:
            return
        with translated("checking a rate limit"):
            wait_ms = int(await script("token_bucket").run(self._redis, [self._keys.rate(principal_id, kind)],
                                                            [rate.per_s, rate.burst, 1]))
        if wait_ms > 0:
            raise RateLimited(f"device {principal_id} is over its {kind} rate of {rate.per_s:g}/s",
                              retry_after_s=wait_ms / 1000.0)
