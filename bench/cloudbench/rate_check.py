"""CPU per token-bucket check, in isolation: :class:`RateLimiter` with leases (a busy device's tokens taken
ahead of use, the default) and without (every check a round trip: on its held connection, and through
redis-py's pipeline as before that), on a local ``redis-server``.

    python -m bench.cloudbench.rate_check [--checks N]

Each line is one way of sending, at one depth of batching (1: each check waits for the one before; 4 and
32: that many checks arrive in one event-loop turn and share a round trip): this process's user and system CPU
time and wall time per check, uvloop as in the service. The process's CPU includes the kernel's side of loopback
TCP, which on one box also delivers the bytes to Redis. Ad hoc: run it beside a baseline, not alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import uvloop

from bench.cloudbench.processes import RedisProcess
from cloud_service.identity.rate import LEASE_TTL_S, Rate, RateLimiter
from cloud_service.redis_client import connect

_DEPTHS = (1, 4, 32)
_UNLIMITED = Rate(1e9, 1_000_000_000)  # never refuses: without leases every check is a full round trip
_WAYS = (("redis-py pipeline", False, 0.0), ("held connection", True, 0.0), ("held, leases", True, LEASE_TTL_S))


def _cpu() -> tuple[float, float]:
    """This process's user and system CPU seconds."""
    times = os.times()
    return times.user, times.system


async def _per_check(
    url: str, *, held: bool, lease_ttl_s: float, depth: int, checks: int
) -> tuple[float, float, float]:
    """(user CPU µs, system CPU µs, wall µs) per check."""
    redis = connect(url, connect_timeout_s=5.0, command_timeout_s=5.0)
    try:
        limiter = RateLimiter(redis, {"escalate": _UNLIMITED}, held=held, lease_ttl_s=lease_ttl_s)
        await limiter.take("warm-up", "escalate")
        cpu, wall = _cpu(), time.perf_counter()
        for _ in range(checks // depth):
            if depth == 1:  # awaited in the caller's task, as a request handler does
                await limiter.take("dev-0", "escalate")
            else:
                await asyncio.gather(*(limiter.take(f"dev-{i}", "escalate") for i in range(depth)))
        done = checks // depth * depth
        used = [(after - before) / done * 1e6 for before, after in zip(cpu, _cpu(), strict=True)]
        return used[0], used[1], (time.perf_counter() - wall) / done * 1e6
    finally:
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checks", type=int, default=5000, help="checks per line (default 5000)")
    args = parser.parse_args()
    with RedisProcess() as server:
        print(f"{'sent through':<24} {'depth':>5} {'user µs/check':>14} {'system µs/check':>16} {'wall µs/check':>14}")
        for depth in _DEPTHS:
            for name, held, lease_ttl_s in _WAYS:
                user, system, wall = uvloop.run(
                    _per_check(server.url, held=held, lease_ttl_s=lease_ttl_s, depth=depth, checks=args.checks)
                )
                print(f"{name:<24} {depth:>5} {user:>14.1f} {system:>16.1f} {wall:>14.1f}")


if __name__ == "__main__":
    main()
