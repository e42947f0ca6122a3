"""A circuit breaker: stop calling a cloud that keeps failing, and probe it again after a cool-down.

    CLOSED --(failure_threshold consecutive failures)--> OPEN --(cooldown_s elapsed)--> HALF_OPEN
    HALF_OPEN --(the trial call succeeds)--> CLOSED;  HALF_OPEN --(it fails)--> OPEN (a new cool-down)

While OPEN every call is refused at once, so the agent answers locally without waiting for a deadline.
In HALF_OPEN one trial call is let through; others are refused until it reports. A trial that never
reports (its caller went away) is given up after another ``cooldown_s``, so the breaker cannot stick.
Pure logic on an injectable monotonic clock; a lock makes it safe to share between threads.
"""

from __future__ import annotations

import enum
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confroute.errors import InvalidInput

Clock = Callable[[], float]


class BreakerState(enum.Enum):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls are refused until the cool-down ends
    HALF_OPEN = "half_open"  # one trial call decides


@dataclass(frozen=True)
class BreakerSettings:
    """Open after ``failure_threshold`` consecutive failures; try again after ``cooldown_s`` seconds."""

    failure_threshold: int = 5
    cooldown_s: float = 30.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise InvalidInput("breaker failure_threshold must be >= 1", field="breaker.failure_threshold")
        if not (math.isfinite(self.cooldown_s) and self.cooldown_s > 0):
            raise InvalidInput("breaker cooldown_s must be > 0", field="breaker.cooldown_s")


class CircuitBreaker:
    """Decides whether a call may go out (:meth:`allow`) from the outcomes reported to it."""

    def __init__(self, settings: BreakerSettings, clock: Clock = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None  # None: closed
        self._trial_started: float | None = None

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state(self._clock())

    def allow(self) -> bool:
        """Whether a call may go out now; in HALF_OPEN this claims the one trial call."""
        with self._lock:
            now = self._clock()
            state = self._state(now)
            if state is BreakerState.CLOSED:
                return True
            if state is BreakerState.OPEN:
                return False
            trial = self._trial_started
            if trial is None or now - trial >= self._settings.cooldown_s:
                self._trial_started = now
                return True
            return False

    def retry_after(self) -> float:
        """Seconds until the cool-down ends (0 unless OPEN)."""
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(0.0, self._opened_at + self._settings.cooldown_s - self._clock())

    def record_success(self) -> None:
        """The cloud answered: close, and forget earlier failures."""
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_started = None

    def record_failure(self) -> None:
        """The cloud failed (down, overloaded, too slow, erroring): count it, and open when due."""
        with self._lock:
            now = self._clock()
            self._failures += 1
            trial_failed = self._state(now) is BreakerState.HALF_OPEN
            if trial_failed or self._failures >= self._settings.failure_threshold:
                self._opened_at = now
                self._trial_started = None

    def _state(self, now: float) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if now - self._opened_at < self._settings.cooldown_s:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN
