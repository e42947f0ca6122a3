"""One long-lived ``ModelStreamInfer`` call to Triton that carries every request of a backend.

Opening a gRPC stream per request costs more CPU than the rest of an escalation (call setup, three
sends, a cancel, on both sides). Here a writer task sends requests, one after the other, on a single
bidirectional stream, and a reader task hands each response to the request with the same ``id``:
Triton echoes a request's id in each of its responses, error responses included.

- Deadlines are kept here, per request. A request whose time runs out fails with
  :class:`DeadlineExceeded` and is forgotten: its later responses are dropped. Triton is not told
  (the streaming protocol cannot cancel one request of a stream), so the model finishes that work,
  bounded by the request's ``max_tokens``. Requests whose consumer leaves are abandoned the same way;
  one abandoned before its turn to be written is never sent.
- A broken stream (Triton stopped or unreachable, the stream ended) fails every request in flight on
  it with :class:`Unavailable`. The next request opens a new stream, unless the last one broke less
  than a backoff delay ago (jittered, doubling with each stream that breaks before answering anything,
  capped): meanwhile requests fail at once with Unavailable, so a Triton that is down is not hammered.
- :meth:`MultiplexedStream.close` ends the stream; requests in flight fail with Unavailable.

gRPC errors of the stream are translated here: whatever its status, a broken stream is Unavailable
(the status name is in the message). Errors a model reports for one request are
:class:`RuntimeFailure`, for that request only.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from cloud_service.backends.wire import with_id
from confroute.backoff import BackoffSchedule
from confroute.errors import DeadlineExceeded, RuntimeFailure, Unavailable

logger = logging.getLogger(__name__)

# A started ModelStreamInfer call (grpc.aio.StreamStreamCall) sending bytes, receiving ModelStreamInferResponse.
OpenCall = Callable[[], Any]


class Sink(Protocol):
    """Where the responses of one request go."""

    def add(self, response: Any) -> bool:
        """Takes one ``ModelInferResponse``; True once it was the request's last. Raises ``ValueError``
        for a response it cannot read (that fails the request with RuntimeFailure)."""
        ...


@dataclass
class _Waiter:
    sink: Sink
    done: asyncio.Future[None]

    def fail(self, error: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(error)


@dataclass
class _Link:
    """One open stream and the requests waiting for its responses."""

    call: Any
    outbox: asyncio.Queue[tuple[str, bytes]] = field(default_factory=asyncio.Queue)  # (request id, message)
    waiting: dict[str, _Waiter] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    answered: bool = False  # a response arrived: Triton was reachable
    broken: bool = False


class MultiplexedStream:
    """Requests to Triton over one shared stream; see the module docstring."""

    def __init__(self, open_call: OpenCall, *, url: str, model: str, backoff: BackoffSchedule) -> None:
        self._open_call = open_call
        self._url = url
        self._model = model
        self._backoff = backoff
        self._ids = itertools.count()
        self._link: _Link | None = None
        self._retry_at = 0.0
        self._last_error = ""
        self._closed = False

    async def infer(self, request: bytes, sink: Sink, timeout_s: float) -> None:
        """Sends ``request`` (a serialized ``ModelInferRequest`` without id) and returns once ``sink``
        took its last response. Raises DeadlineExceeded after ``timeout_s``, Unavailable when the
        stream is down or breaks, RuntimeFailure when the model reports an error."""
        link = self._current_link()
        request_id = format(next(self._ids), "x")
        loop = asyncio.get_running_loop()
        waiter = _Waiter(sink, loop.create_future())
        link.waiting[request_id] = waiter
        timer = loop.call_later(timeout_s, self._expire, link, request_id, timeout_s)
        link.outbox.put_nowait((request_id, with_id(request, request_id)))
        try:
            await waiter.done
        finally:
            timer.cancel()
            link.waiting.pop(request_id, None)

    async def close(self) -> None:
        """Ends the stream (requests in flight fail with Unavailable); later requests fail at once."""
        self._closed = True
        link, self._link = self._link, None
        if link is not None:
            self._break(link, Unavailable(f"Triton at {self._url}: the backend was closed"))
            for task in link.tasks:
                with suppress(asyncio.CancelledError):
                    await task

    def _current_link(self) -> _Link:
        if self._link is not None:
            return self._link
        if self._closed:
            raise Unavailable(f"Triton at {self._url}: the backend is closed")
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            raise Unavailable(f"{self._last_error} (the stream to Triton reopens in {wait:.2f} s)")
        link = _Link(self._open_call())
        link.tasks = [
            asyncio.create_task(self._write(link), name="triton-stream-writer"),
            asyncio.create_task(self._read(link), name="triton-stream-reader"),
        ]
        self._link = link
        return link

    async def _write(self, link: _Link) -> None:
        try:
            while True:
                request_id, message = await link.outbox.get()
                if request_id in link.waiting:  # not abandoned while it queued: Triton need not see it
                    await link.call.write(message)
        except (grpc.RpcError, asyncio.InvalidStateError) as exc:
            # The reader sees the status too; whichever comes first fails the requests.
            self._break(link, self._unavailable(exc))
        except Exception as exc:  # a bug: fail the requests now rather than at their deadlines
            logger.exception("writing to the stream to Triton at %s failed", self._url)
            self._break(link, Unavailable(f"Triton at {self._url}: the stream could not be written: {exc!r}"))

    async def _read(self, link: _Link) -> None:
        try:
            while (message := await link.call.read()) is not grpc.aio.EOF:
                link.answered = True
                self._dispatch(link, message)
        except grpc.RpcError as exc:
            self._break(link, self._unavailable(exc))
        except Exception as exc:  # a bug: fail the requests now rather than at their deadlines
            logger.exception("reading the stream from Triton at %s failed", self._url)
            self._break(link, Unavailable(f"Triton at {self._url}: the stream could not be read: {exc!r}"))
        else:
            self._break(link, Unavailable(f"Triton at {self._url}: UNAVAILABLE: Triton ended the stream"))

    def _dispatch(self, link: _Link, message: Any) -> None:
        response = message.infer_response
        waiter = link.waiting.get(response.id)
        if waiter is None:
            return  # its request was abandoned (deadline, consumer gone): nobody wants it
        if message.error_message:
            self._finish(link, response.id, RuntimeFailure(f"model {self._model} failed: {message.error_message}"))
            return
        try:
            last = waiter.sink.add(response)
        except ValueError as exc:  # UnicodeDecodeError is one
            failure = RuntimeFailure(f"model {self._model} sent a response that cannot be read: {exc}")
            failure.__cause__ = exc
            self._finish(link, response.id, failure)
            return
        if last:
            self._finish(link, response.id, None)

    def _finish(self, link: _Link, request_id: str, error: BaseException | None) -> None:
        waiter = link.waiting.pop(request_id)
        if error is not None:
            waiter.fail(error)
        elif not waiter.done.done():
            waiter.done.set_result(None)

    def _expire(self, link: _Link, request_id: str, timeout_s: float) -> None:
        waiter = link.waiting.pop(request_id, None)
        if waiter is not None:
            waiter.fail(DeadlineExceeded(f"Triton at {self._url}: DEADLINE_EXCEEDED: no answer in {timeout_s:.3g} s"))

    def _break(self, link: _Link, error: Unavailable) -> None:
        """Fails every request of ``link`` and retires it; the next request opens a new stream."""
        if link.broken:
            return
        link.broken = True
        link.call.cancel()
        current = asyncio.current_task()
        for task in link.tasks:
            if task is not current:
                task.cancel()
        waiting, link.waiting = link.waiting, {}
        for waiter in waiting.values():
            waiter.fail(error)
        if self._link is link:
            self._link = None
        if link.answered:
            self._backoff.reset()
        self._retry_at = time.monotonic() + self._backoff.next_delay()
        self._last_error = str(error)
        if not self._closed:  # one warning per outage: later attempts that fail to connect are debug
            log = logger.warning if link.answered else logger.debug
            log("the stream to Triton broke, failing %d request(s): %s", len(waiting), error)

    def _unavailable(self, exc: BaseException) -> Unavailable:
        if isinstance(exc, grpc.aio.AioRpcError):
            return Unavailable(f"Triton at {self._url}: {exc.code().name}: {exc.details()}")
        return Unavailable(f"Triton at {self._url}: UNAVAILABLE: {exc}")
