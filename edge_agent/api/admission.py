"""The admission gate: at most ``parallel`` requests answer at once, at most ``queue`` more wait their turn;
one more is refused at once (``Overloaded``: 429 with ``Retry-After``) instead of piling up behind the model.

Waiting and answering happen on worker threads (the answerer is blocking), so the gate is a thread
semaphore; the count of admitted requests is checked on the event loop, before any thread is used.
"""

from __future__ import annotations

import threading

from confroute.errors import Overloaded


class Admission:
    """Counts admitted requests; ``slot()`` is held by the worker thread while it answers."""

    def __init__(self, parallel: int, queue: int) -> None:
        self.parallel = parallel
        self.queue = queue
        self._lock = threading.Lock()
        self._admitted = 0
        self._running = 0
        self._slots = threading.Semaphore(parallel)

    @property
    def waiting(self) -> int:
        """Admitted requests not yet answering."""
        with self._lock:
            return self._admitted - self._running

    @property
    def running(self) -> int:
        with self._lock:
            return self._running

    def admit(self) -> None:
        """Takes a place (answering or waiting), or raises ``Overloaded`` when every place is taken."""
        with self._lock:
            if self._admitted >= self.parallel + self.queue:
                waiting = self._admitted - self._running
                raise Overloaded(f"the device is answering {self._running} requests and {waiting} wait; retry shortly")
            self._admitted += 1

    def acquire(self) -> None:
        """Blocks the worker thread until a request may answer."""
        self._slots.acquire()
        with self._lock:
            self._running += 1

    def release(self, *, running: bool) -> None:
        """Gives back the place (and the answering slot when ``running``)."""
        with self._lock:
            self._admitted -= 1
            if running:
                self._running -= 1
        if running:
            self._slots.release()
