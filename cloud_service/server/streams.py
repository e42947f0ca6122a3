"""Closing async iterators deterministically.

A servicer that stops reading a backend's or a store's async generator early (the client cancelled,
the deadline passed) must close it at once, so that its ``finally`` releases what it holds (a call
to Triton, a watcher) instead of waiting for the garbage collector.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

T = TypeVar("T")


@asynccontextmanager
async def closing(iterator: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Yields ``iterator`` and closes it (``aclose``, when it has one) on the way out."""
    try:
        yield iterator
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
