"""The per-device token bucket on a real Redis: the checks of one event-loop turn share a round trip, and each
still gets its own bucket's answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cloud_service.identity.rate import Rate, RateLimiter
from cloud_service.redis_client import connect
from cloud_service.store.schema import IdentityKeys
from confroute.errors import RateLimited, Unavailable
from tests.cloud_service.redis_server import RedisServer


async def _takes(limiter: RateLimiter, devices: list[str]) -> list[BaseException | None]:
    return list(await asyncio.gather(*(limiter.take(d, "escalate") for d in devices), return_exceptions=True))


@pytest.mark.parametrize("held", [True, False], ids=["held-connection", "redis-py-pipeline"])
def test_checks_sent_together_are_answered_bucket_by_bucket(redis_server: RedisServer, held: bool) -> None:
    async def run() -> None:
        redis = connect(redis_server.url, connect_timeout_s=5.0, command_timeout_s=5.0)
        try:
            limiter = RateLimiter(redis, {"escalate": Rate(0.5, 3)}, held=held)
            # one turn: 5 calls of dev-a (burst 3) and 2 of dev-b, all in one pipeline
            outcomes = await _takes(limiter, ["dev-a"] * 5 + ["dev-b"] * 2)
            refused = [isinstance(o, RateLimited) for o in outcomes]
            assert refused == [False, False, False, True, True, False, False]
            assert all(o.retry_after_s > 0 for o in outcomes if isinstance(o, RateLimited))
            await limiter.take("dev-b", "upload")  # a kind without a rate passes without a call
        finally:
            await redis.aclose()

    asyncio.run(run())


def test_a_server_that_forgot_the_script_is_sent_it_again(redis_server: RedisServer) -> None:
    async def run() -> None:
        redis = connect(redis_server.url, connect_timeout_s=5.0, command_timeout_s=5.0)
        try:
            limiter = RateLimiter(redis, {"escalate": Rate(100.0, 10)})
            await limiter.take("dev-a", "escalate")
            await redis.script_flush()
            assert await _takes(limiter, ["dev-a", "dev-b"]) == [None, None]
        finally:
            await redis.aclose()

    asyncio.run(run())


def test_a_cancelled_caller_does_not_disturb_the_others(redis_server: RedisServer) -> None:
    async def run() -> None:
        redis = connect(redis_server.url, connect_timeout_s=5.0, command_timeout_s=5.0)
        try:
            limiter = RateLimiter(redis, {"escalate": Rate(100.0, 10)})
            first = asyncio.ensure_future(limiter.take("dev-a", "escalate"))
            second = asyncio.ensure_future(limiter.take("dev-b", "escalate"))
            await asyncio.sleep(0)
            first.cancel()
            await second
            with pytest.raises(asyncio.CancelledError):
                await first
        finally:
            await redis.aclose()

    asyncio.run(run())


def test_checks_arriving_while_a_pipeline_is_in_flight_go_in_the_next(redis_server: RedisServer) -> None:
    async def run() -> None:
        redis = connect(redis_server.url, connect_timeout_s=5.0, command_timeout_s=5.0)
        try:
            limiter = RateLimiter(redis, {"escalate": Rate(0.5, 4)})
            calls = []
            for _ in range(6):  # one check per turn: the first goes alone, the rest wait for its answer
                calls.append(asyncio.ensure_future(limiter.take("dev-a", "escalate")))
                await asyncio.sleep(0)
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
            assert [isinstance(o, RateLimited) for o in outcomes] == [False] * 4 + [True] * 2
        finally:
            await redis.aclose()

    asyncio.run(run())


def test_a_restarted_server_is_reconnected_to_and_sent_the_script_again(redis_server: RedisServer) -> None:
    async def run() -> None:
        redis = connect(redis_server.url, connect_timeout_s=5.0, command_timeout_s=5.0)
        try:
            limiter = RateLimiter(redis, {"escalate": Rate(100.0, 10)})
            await limiter.take("dev-a", "escalate")
            redis_server.restart()  # the held connection is gone, and so is the script
            assert await _takes(limiter, ["dev-a", "dev-b"]) == [None, None]
        finally:
            await redis.aclose()

    asyncio.run(run())


def test_a_failing_bucket_fails_its_pipeline_as_unavailable(redis_server: RedisServer) -> None:
    async def run() -> None:
        redis = connect(redis_server.url, connect_timeout_s=5.0, command_timeout_s=5.0)
        try:
            limiter = RateLimiter(redis, {"escalate": Rate(100.0, 10)})
            await redis.set(IdentityKeys().rate("dev-x", "escalate"), "not a hash")
            outcomes = await _takes(limiter, ["dev-x"])
            assert isinstance(outcomes[0], Unavailable)
            assert await _takes(limiter, ["dev-a"]) == [None]  # the connection is still in step
        finally:
            await redis.aclose()

    asyncio.run(run())


async def _evalsha_calls(redis: Any) -> int:
    stats: dict[str, Any] = await redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def test_a_busy_device_spends_leased_tokens_without_a_round_trip_each(redis_server: RedisServer) -> None:
    async def run() -> None:
        redis = connect(redis_server.url, connect_timeout_s=5.0, command_timeout_s=5.0)
        try:
            limiter = RateLimiter(redis, {"escalate": Rate(1000.0, 1000)}, lease_ttl_s=0.5, lease_max=16)
            before = await _evalsha_calls(redis)
            for _ in range(40):
                await limiter.take("dev-a", "escalate")
            # leases of 1, 2, 4, 8, 16, 16 tokens: 6 round trips for 40 calls, not 40
            assert await _evalsha_calls(redis) - before <= 8
        finally:
            await redis.aclose()

    asyncio.run(run())


def test_leased_tokens_never_admit_more_than_the_bucket_holds(redis_server: RedisServer) -> None:
    async def run() -> None:
        redis = connect(redis_server.url, connect_timeout_s=5.0, command_timeout_s=5.0)
        try:  # two replicas of one device, each leasing up to 4 (2/s over a 2 s lease) from a burst of 8
            replicas = [RateLimiter(redis, {"escalate": Rate(2.0, 8)}, lease_ttl_s=2.0) for _ in range(2)]
            outcomes = [await _takes(replicas[i % 2], ["dev-a"]) for i in range(24)]
            admitted = sum(o == [None] for o in outcomes)
            assert 8 <= admitted <= 9  # the burst, and at most the one token refilled meanwhile
        finally:
            await redis.aclose()

    asyncio.run(run())


def test_a_lease_not_spent_in_its_time_is_not_spent_later(redis_server: RedisServer) -> None:
    async def run() -> None:
        redis = connect(redis_server.url, connect_timeout_s=5.0, command_timeout_s=5.0)
        try:
            limiter = RateLimiter(redis, {"escalate": Rate(1000.0, 1000)}, lease_ttl_s=0.1)
            for _ in range(2):  # the second check leases 2 tokens and keeps one
                await limiter.take("dev-a", "escalate")
            await asyncio.sleep(0.2)
            before = await _evalsha_calls(redis)
            await limiter.take("dev-a", "escalate")
            assert await _evalsha_calls(redis) - before == 1
        finally:
            await redis.aclose()

    asyncio.run(run())


def test_without_leases_every_check_is_a_round_trip(redis_server: RedisServer) -> None:
    async def run() -> None:
        redis = connect(redis_server.url, connect_timeout_s=5.0, command_timeout_s=5.0)
        try:
            limiter = RateLimiter(redis, {"escalate": Rate(1000.0, 1000)}, lease_ttl_s=0.0)
            await limiter.take("dev-b", "escalate")  # the script loaded: NOSCRIPT counts as a call
            before = await _evalsha_calls(redis)
            for _ in range(5):
                await limiter.take("dev-a", "escalate")
            assert await _evalsha_calls(redis) - before == 5
        finally:
            await redis.aclose()

    asyncio.run(run())
