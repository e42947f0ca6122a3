"""Bounded, jittered exponential backoff: the one retry pacing of both sides.

The jitter policy, stated once: retry ``n`` (0-based) waits a uniform draw from ``[0, w(n))`` with
``w(n) = min(cap_s, base_s * multiplier ** n)`` ("full jitter"). Of the policies compared in the AWS
Architecture Blog's "Exponential Backoff And Jitter" (2015), full jitter sent the fewest calls and
finished soonest when many clients lost the same server at once: a fleet that failed together comes
back spread over the whole window instead of in step. The window only bounds the wait; a caller that
needs a floor (a deadline budget, a loop interval) adds it itself.

The draw always comes from a ``random.Random`` the caller owns (never the module-global one), so a test
can fix it and two loops never share a sequence by accident.

- :class:`Backoff` is the policy, frozen and pure: ``delay(attempt, rng)``, for loops that count their
  own attempts (the edge's escalation retries, its policy watch, its outcome uploads).
- :class:`BackoffSchedule` counts for loops that don't (the cloud's Redis and Triton reconnects):
  ``next_delay()`` after each failure, ``reset()`` after a success.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from confroute.errors import InvalidInput

_MAX_EXPONENT = 64  # the cap is reached long before; keeps multiplier ** n finite on long outages


@dataclass(frozen=True)
class Backoff:
    """Waits of at most ``cap_s`` seconds, the window growing by ``multiplier`` per attempt from ``base_s``."""

    base_s: float = 0.05
    cap_s: float = 1.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.base_s) and self.base_s > 0):
            raise InvalidInput(f"backoff base_s must be > 0, got {self.base_s}", field="backoff.base_s")
        if not (math.isfinite(self.cap_s) and self.cap_s >= self.base_s):
            raise InvalidInput(f"backoff cap_s must be >= base_s, got {self.cap_s}", field="backoff.cap_s")
        if not (math.isfinite(self.multiplier) and self.multiplier >= 1.0):
            raise InvalidInput(f"backoff multiplier must be >= 1, got {self.multiplier}", field="backoff.multiplier")

    def window(self, attempt: int) -> float:
        """The longest wait before retry number ``attempt`` (0-based)."""
        return min(self.cap_s, self.base_s * self.multiplier ** min(max(attempt, 0), _MAX_EXPONENT))

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The wait before retry number ``attempt``: uniform in ``[0, window(attempt))``."""
        return rng.random() * self.window(attempt)

    def schedule(self, rng: random.Random | None = None) -> BackoffSchedule:
        """A counter of this policy's delays for one retry loop; ``rng`` defaults to a fresh, private one."""
        return BackoffSchedule(self, rng if rng is not None else random.Random())


class BackoffSchedule:
    """The delays of one retry loop under a :class:`Backoff`, counting its attempts."""

    def __init__(self, backoff: Backoff, rng: random.Random) -> None:
        self._backoff = backoff
        self._rng = rng
        self._attempts = 0

    def next_delay(self) -> float:
        """The pause before the next attempt, in seconds."""
        delay = self._backoff.delay(self._attempts, self._rng)
        self._attempts += 1
        return delay

    @property
    def attempts(self) -> int:
        """How many delays were handed out since the start or the last ``reset()``."""
        return self._attempts

    def reset(self) -> None:
        """Starts over from ``base_s`` (after a success)."""
        self._attempts = 0
