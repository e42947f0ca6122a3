"""Stopping a background task for good.

One cancellation is not always enough: redis-py's blocking read, cancelled while its connection breaks
(a Redis restart), turns the cancellation into a timeout that its retry loop then retries, and the task
goes on reading. :func:`stop_task` cancels again until the task has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

REPEAT_S = 0.1  # how often a swallowed cancellation is repeated


async def stop_task(task: asyncio.Task[Any], repeat_s: float = REPEAT_S) -> None:
    """Cancels ``task`` until it has ended; its own error, other than the cancellation, is raised."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=repeat_s)
    with contextlib.suppress(asyncio.CancelledError):
        await task
