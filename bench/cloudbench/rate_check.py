"""CPU per token-bucket check, in isolation: :class:`RateLimiter` on its held connection against the same
checks sent through redis-py's pipeline (what it did before), on a local ``redis-server``.

    python -m bench.cloudbench.rate_check [--checks N]

Each line is one way of sending, at one depth of batching (1: each check waits for the one before; 4 and
32: that many checks arrive in one event-loop turn and share a round trip): this process's CPU time and
wall time per check, uvloop as in the service. The process's CPU includes the kernel's side of loopback
TCP, which on one box also delivers the bytes to Redis. Ad hoc: run it beside a baseline, not alone.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import uvloop

from bench.cloudbench.processes import RedisProcess
from cloud_service.identity.rate import Rate, RateLimiter
from cloud_service.redis_client import connect

_DEPTHS = (1, 4, 32)
_UNLIMITED = Rate(1e9, 1_000_000_000)  # never refuses: every check is a full round trip


async def _per_check(url: str, *, held: bool, depth: int, checks: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per check."""
    redis = connect(url, connect_timeout_s=5.0, command_timeout_s=5.0)
    try:
        limiter = RateLimiter(redis, {"escalate": _UNLIMITED}, held=held)
        await limiter.take("warm-up", "escalate")
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(checks // depth):
            await asyncio.gather(*(limiter.take(f"dev-{i}", "escalate") for i in range(depth)))
        done = checks // depth * depth
        return (time.process_time() - cpu) / done * 1e6, (time.perf_counter() - wall) / done * 1e6
    finally:
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checks", type=int, default=5000, help="checks per line (default 5000)")
    args = parser.parse_args()
    with RedisProcess() as server:
        print(f"{'sent through':<24} {'depth':>5} {'CPU µs/check':>13} {'wall µs/check':>14}")
        for depth in _DEPTHS:
            for held, name in ((False, "redis-py pipeline"), (True, "held connection")):
                cpu, wall = uvloop.run(_per_check(server.url, held=held, depth=depth, checks=args.checks))
                print(f"{name:<24} {depth:>5} {cpu:>13.1f} {wall:>14.1f}")


if __name__ == "__main__":
    main()
