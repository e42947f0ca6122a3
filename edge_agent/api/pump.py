"""Runs the answerer's blocking stream on a worker thread and hands its items to the event loop.

The worker drains the stream as fast as the answerer produces it, whatever the client's reading speed:
items wait in the pump's queue (one answer's tokens, bounded by ``max_tokens``), so a slow client never
holds the model. ``close()`` (the client went away) stops the worker at its next item and closes the
answerer's generator, which stops generation.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Generic, TypeVar

from edge_agent.api.admission import Admission

T = TypeVar("T")
_END = object()


class Pump(Generic[T]):
    """``async for item in pump`` yields what ``open_stream()`` yields; its exceptions are re-raised."""

    def __init__(self, open_stream: Callable[[], Iterator[T]], admission: Admission, *, name: str) -> None:
        self._open = open_stream
        self._admission = admission
        self._loop = asyncio.get_running_loop()
        self._items: collections.deque[object] = collections.deque()
        self._lock = threading.Lock()
        self._ready = asyncio.Event()
        self._signalled = False  # a wake-up of the consumer is pending: no need for another
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Pump[T]:
        """Starts the worker; the caller must have been admitted (``Admission.admit``)."""
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed.set()

    async def __aiter__(self) -> AsyncIterator[T]:
        while True:
            for item in await self._batch():
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item  # type: ignore[misc]

    async def _batch(self) -> list[object]:
        """Everything the worker has put since the last batch; waits while there is nothing."""
        while True:
            with self._lock:
                batch = list(self._items)
                self._items.clear()
                self._signalled = bool(batch)
            if batch:
                return batch
            await self._ready.wait()
            self._ready.clear()

    def _put(self, item: object) -> None:
        """Wakes the event loop only when the consumer may be waiting (one wake-up per batch, not per item)."""
        with self._lock:
            self._items.append(item)
            wake = not self._signalled
            self._signalled = True
        if wake:
            self._loop.call_soon_threadsafe(self._ready.set)

    def _run(self) -> None:
        running = False
        try:
            self._admission.acquire()
            running = True
            if self._closed.is_set():
                return
            self._drain()
        finally:
            self._admission.release(running=running)
            self._put_quietly(_END)

    def _drain(self) -> None:
        stream: Iterator[T] | None = None
        try:
            stream = self._open()
            for item in stream:
                self._put(item)
                if self._closed.is_set():
                    break
        except Exception as exc:  # delivered to the request, which answers with its status
            self._put_quietly(_Failure(exc))
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    def _put_quietly(self, item: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone (server stopped): nobody listens any more
            self._put(item)


class _Failure:
    def __init__(self, error: Exception) -> None:
        self.error = error
