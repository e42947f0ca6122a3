"""The judge's own budget: a bound on calls in flight and a token bucket on calls started per second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class CallBudget:
    """``async with budget.call():`` waits for a free slot and a token, then holds the slot."""

    def __init__(self, max_in_flight: int, calls_per_second: float) -> None:
        self._slots = asyncio.Semaphore(max_in_flight)
        self._rate = calls_per_second
        self._capacity = max(1.0, calls_per_second)
        self._tokens = self._capacity
        self._refilled = time.monotonic()
        self._lock = asyncio.Lock()
        self.in_flight = 0
        self.peak_in_flight = 0

    @asynccontextmanager
    async def call(self) -> AsyncIterator[None]:
        async with self._slots:
            await self._take_token()
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1

    async def _take_token(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self._capacity, self._tokens + (now - self._refilled) * self._rate)
                self._refilled = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self._rate)
