"""Jittered exponential backoff, as a pure function of the attempt number and a uniform draw.

"Full jitter": attempt ``n`` (0-based) waits ``draw * min(cap_s, base_s * multiplier ** n)``, so a fleet
that failed at the same moment spreads its retries over the whole window instead of retrying in step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from confroute.errors import InvalidInput

_MAX_EXPONENT = 64  # beyond this the cap has long been reached; avoids float overflow on long outages


@dataclass(frozen=True)
class Backoff:
    """Delays of at most ``cap_s`` seconds, growing by ``multiplier`` per attempt from ``base_s``."""

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

    def delay(self, attempt: int, draw: float) -> float:
        """The wait before retry number ``attempt``; ``draw`` is uniform in [0, 1)."""
        return draw * self.window(attempt)
