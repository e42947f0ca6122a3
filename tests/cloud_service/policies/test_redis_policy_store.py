"""Versioned policies in Redis: publish, current, watch, and what happens when Redis restarts."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, TypeVar

import pytest
from redis.crc import key_slot

from cloud_service.policies import PolicyStoreConfig, RedisPolicyStore
from cloud_service.store.schema import hash_tag
from confroute.contract import CalibrationMap, Policy, Thresholds
from confroute.contract.common import ModelRef
from confroute.contract.enums import RoutingMode
from confroute.errors import InvalidPolicy, Unavailable
from tests.cloud_service.redis_server import RedisServer

pytestmark = pytest.mark.timeout(60)
T = TypeVar("T")
EDGE = ModelRef("smollm2-135m", "2026.01")
SOON_S = 2.0


def run(scenario: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(scenario, 30))


def policy(version: str, cohort: str = "beta", edge: ModelRef = EDGE, pre: float = 0.5) -> Policy:
    return Policy(
        policy_version=version,
        edge_model=edge,
        cohort=cohort,
        mode=RoutingMode.HYBRID,
        thresholds=Thresholds(pre=pre, post=0.6, hybrid_low=0.3, hybrid_high=0.8),
        issued_at=datetime(2026, 1, 5, tzinfo=timezone.utc),
        calibration=CalibrationMap(x=(0.0, 0.5, 1.0), y=(0.1, 0.5, 0.9)),
        shadow_rate=0.02,
    )


def content(p: Policy | None) -> Policy | None:
    """What was published, without the stamp the store adds when it issues a version."""
    return None if p is None else replace(p, issued_at=ISSUED, signature=b"", key_id="")


ISSUED = datetime(2026, 1, 5, tzinfo=timezone.utc)


def config(server: RedisServer, **settings: Any) -> PolicyStoreConfig:
    return PolicyStoreConfig(url=server.url, watch_block_s=0.2, retry_base_s=0.02, retry_cap_s=0.2, **settings)


class Watcher:
    """Reads a watch in the background, so that a test can see that nothing came without cancelling it."""

    def __init__(self, updates: AsyncGenerator[Policy, None]) -> None:
        self._updates = updates
        self._next: asyncio.Future[Policy] | None = None

    async def next(self, timeout_s: float = SOON_S) -> Policy:
        """The next policy the watch yields, within ``timeout_s``."""
        pending, self._next = self._pending(), None
        return await asyncio.wait_for(pending, timeout_s)

    async def nothing_within(self, wait_s: float) -> bool:
        """Whether the watch yielded nothing for ``wait_s`` (it keeps waiting afterwards)."""
        await asyncio.sleep(wait_s)
        return not self._pending().done()

    def _pending(self) -> asyncio.Future[Policy]:
        if self._next is None:
            self._next = asyncio.ensure_future(anext(self._updates))
        return self._next


@asynccontextmanager
async def watching(store: RedisPolicyStore, known_version: str, cohort: str = "beta") -> AsyncIterator[Watcher]:
    updates = store.watch(EDGE.version, cohort, known_version)
    watcher = Watcher(updates)
    try:
        yield watcher
    finally:
        if watcher._next is not None:
            watcher._next.cancel()
            with suppress(asyncio.CancelledError, StopAsyncIteration):
                await watcher._next
        await updates.aclose()


def test_a_published_policy_is_current(redis_server: RedisServer) -> None:
    async def scenario() -> Policy | None:
        store = RedisPolicyStore(config(redis_server))
        try:
            await store.publish(policy("p-1"))
            return await store.current(EDGE.version, "beta")
        finally:
            await store.close()

    assert content(run(scenario())) == policy("p-1")


def test_there_is_no_current_policy_before_the_first_publish(redis_server: RedisServer) -> None:
    async def scenario() -> Policy | None:
        store = RedisPolicyStore(config(redis_server))
        try:
            return await store.current(EDGE.version, "beta")
        finally:
            await store.close()

    assert run(scenario()) is None


def test_each_edge_model_version_and_cohort_has_its_own_policy(redis_server: RedisServer) -> None:
    newer_edge = ModelRef(EDGE.id, "2026.02")

    async def scenario() -> list[str | None]:
        store = RedisPolicyStore(config(redis_server))
        try:
            for published in (policy("p-1"), policy("p-2", cohort="gamma"), policy("p-3", edge=newer_edge)):
                await store.publish(published)
            keys = [(EDGE.version, "beta"), (EDGE.version, "gamma"), (newer_edge.version, "beta"), ("x", "beta")]
            currents = [await store.current(version, cohort) for version, cohort in keys]
            return [current.policy_version if current else None for current in currents]
        finally:
            await store.close()

    assert run(scenario()) == ["p-1", "p-2", "p-3", None]


def test_republishing_an_older_version_reissues_its_content_later(redis_server: RedisServer) -> None:
    async def scenario() -> tuple[Policy | None, Policy | None]:
        store = RedisPolicyStore(config(redis_server))
        try:
            for version in ("p-1", "p-2"):
                await store.publish(policy(version))
            p2 = await store.current(EDGE.version, "beta")
            await store.publish(policy("p-1"))
            return p2, await store.current(EDGE.version, "beta")
        finally:
            await store.close()

    p2, current = run(scenario())
    assert current is not None and p2 is not None
    assert current.policy_version == "p-1+publish.3"
    assert content(replace(current, policy_version="p-1")) == policy("p-1")
    assert current.issued_at > p2.issued_at  # devices take it: issued after what they hold


def test_republishing_the_current_version_changes_nothing_and_other_content_is_refused(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> Policy | None:
        store = RedisPolicyStore(config(redis_server))
        try:
            await store.publish(policy("p-1"))
            await store.publish(policy("p-1"))
            with pytest.raises(InvalidPolicy, match="other content"):
                await store.publish(policy("p-1", pre=0.9))
            return await store.current(EDGE.version, "beta")
        finally:
            await store.close()

    assert content(run(scenario())) == policy("p-1")


def test_a_watcher_gets_the_current_policy_when_it_holds_an_older_one(redis_server: RedisServer) -> None:
    async def scenario() -> Policy:
        store = RedisPolicyStore(config(redis_server))
        try:
            await store.publish(policy("p-2"))
            async with watching(store, known_version="p-1") as updates:
                return await updates.next()
        finally:
            await store.close()

    assert content(run(scenario())) == policy("p-2")


def test_a_watcher_gets_each_newer_version_soon_after_it_is_published(redis_server: RedisServer) -> None:
    async def scenario() -> tuple[bool, list[str], float]:
        store = RedisPolicyStore(config(redis_server))
        try:
            await store.publish(policy("p-1"))
            async with watching(store, known_version="p-1") as updates:
                quiet = await updates.nothing_within(0.5)
                started = time.monotonic()
                await store.publish(policy("p-2"))
                second = await updates.next()
                latency = time.monotonic() - started
                await store.publish(policy("p-3"))
                third = await updates.next()
            return quiet, [second.policy_version, third.policy_version], latency
        finally:
            await store.close()

    quiet, versions, latency = run(scenario())

    assert quiet, "a watcher that holds the current version gets nothing until a newer one is published"
    assert versions == ["p-2", "p-3"]
    assert latency < 0.5


def test_a_watcher_waits_for_the_first_policy_of_its_key(redis_server: RedisServer) -> None:
    async def scenario() -> Policy:
        store = RedisPolicyStore(config(redis_server))
        try:
            async with watching(store, known_version="") as updates:
                await store.publish(policy("p-1", cohort="other"))
                assert await updates.nothing_within(0.3)
                await store.publish(policy("p-1"))
                return await updates.next()
        finally:
            await store.close()

    assert content(run(scenario())) == policy("p-1")


def test_a_watcher_reconnects_after_redis_restarts(redis_server: RedisServer) -> None:
    async def scenario() -> Policy:
        store = RedisPolicyStore(config(redis_server))
        try:
            await store.publish(policy("p-1"))
            async with watching(store, known_version="p-1") as updates:
                assert await updates.nothing_within(0.3)
                redis_server.restart()  # the AOF keeps the policy stream; the watcher's connection drops
                await asyncio.sleep(0.3)
                await store.publish(policy("p-2"))
                return await updates.next(timeout_s=5.0)
        finally:
            await store.close()

    assert content(run(scenario())) == policy("p-2")


def test_current_raises_unavailable_while_redis_is_down(redis_server: RedisServer) -> None:
    redis_server.stop()

    async def scenario() -> None:
        store = RedisPolicyStore(config(redis_server))
        try:
            with pytest.raises(Unavailable, match="reading the current policy"):
                await store.current(EDGE.version, "beta")
            with pytest.raises(Unavailable, match="Redis failed"):
                await store.publish(policy("p-1"))
        finally:
            await store.close()

    run(scenario())


def test_keys_keep_versions_and_cohorts_inside_their_hash_tag() -> None:
    settings = PolicyStoreConfig(url="redis://127.0.0.1:6379/0")

    tricky = settings.stream_key("2026.01", "a}b{c|d")

    assert hash_tag(tricky) == "2026.01|a%7Db%7Bc%7Cd"
    assert settings.stream_key("2026.01", "a|b") != settings.stream_key("2026.01|a", "b")
    assert key_slot(tricky.encode()) == key_slot(b"{2026.01|a%7Db%7Bc%7Cd}")


def test_an_invalid_url_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match=r"policy store url must look like redis://"):
        PolicyStoreConfig(url="localhost:6379")


def test_a_policy_keeps_every_field_through_the_store(redis_server: RedisServer) -> None:
    unsigned = replace(policy("p-9"), shadow_rate=0.0)

    async def scenario() -> Policy | None:
        store = RedisPolicyStore(config(redis_server))
        try:
            await store.publish(unsigned)
            return await store.current(EDGE.version, "beta")
        finally:
            await store.close()

    assert content(run(scenario())) == unsigned


def test_a_published_policy_survives_a_sigkill_of_redis(crash_safe_redis: RedisServer) -> None:
    redis_server = crash_safe_redis
    async def publish() -> None:
        store = RedisPolicyStore(config(redis_server))
        try:
            await store.publish(policy("p-1"))
        finally:
            await store.close()

    async def current() -> Policy | None:
        store = RedisPolicyStore(config(redis_server))
        try:
            return await store.current(EDGE.version, "beta")
        finally:
            await store.close()

    run(publish())
    redis_server.stop(signal.SIGKILL)
    redis_server.start()  # from its AOF

    assert content(run(current())) == policy("p-1")
