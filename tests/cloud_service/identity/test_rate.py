"""The per-device token bucket on a real Redis: the checks of one event-loop turn share a round trip, and each
still gets its own bucket's answer."""

from __future__ import annotations

import asyncio

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
