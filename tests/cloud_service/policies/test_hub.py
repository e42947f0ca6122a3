"""The policy hub stops its followers, even one that swallows a cancellation (as redis-py's blocking read
can after a Redis restart: the cancellation becomes a timeout, which its retry loop retries)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cloud_service.policies.hub import PolicyHub

pytestmark = pytest.mark.timeout(30)


class Stubborn:
    """A follower that ignores the first cancellation it gets and keeps following."""

    def __init__(self) -> None:
        self.swallowed = 0
        self.running = False

    async def follow(self, key: str) -> AsyncIterator[str]:
        self.running = True
        try:
            yield f"{key}-1"
            while True:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    if self.swallowed:
                        raise
                    self.swallowed += 1
        finally:
            self.running = False


def test_close_stops_a_follower_that_swallowed_a_cancellation() -> None:
    stubborn = Stubborn()

    async def scenario() -> None:
        hub = PolicyHub(stubborn.follow)
        async with hub.subscribe("k") as feed:
            await asyncio.wait_for(feed.changed.wait(), 5)
            closing = asyncio.create_task(hub.close())
            done, _ = await asyncio.wait({closing}, timeout=5)  # not wait_for: its cancel would unblock close
            assert done, "close() hung on a follower that swallowed its cancellation"

    asyncio.run(scenario())
    assert stubborn.swallowed == 1
    assert not stubborn.running


def test_the_last_watcher_leaving_stops_a_stubborn_follower() -> None:
    stubborn = Stubborn()

    async def scenario() -> None:
        hub = PolicyHub(stubborn.follow)
        async with hub.subscribe("k") as feed:
            await asyncio.wait_for(feed.changed.wait(), 5)
        for _ in range(50):
            if not stubborn.running:
                break
            await asyncio.sleep(0.05)
        assert not stubborn.running, "the follower kept running after its last watcher left"
        await hub.close()

    asyncio.run(scenario())
    assert stubborn.swallowed == 1
