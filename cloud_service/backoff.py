"""Bounded, jittered exponential backoff for retry loops that must not hammer a recovering dependency."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delay ``n`` (from 0) is drawn uniformly from [d/2, d] with ``d = min(cap_s, base_s * 2**n)``.

    Half of each delay is fixed so retries never bunch at zero; the random half spreads many clients
    that lost the same server apart. ``reset()`` after a success.
    """

    base_s: float = 0.05
    cap_s: float = 2.0
    _attempt: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not 0 < self.base_s <= self.cap_s:
            raise ValueError(f"backoff needs 0 < base_s <= cap_s, got {self.base_s} and {self.cap_s}")

    def next_delay(self) -> float:
        """The pause before the next attempt, in seconds."""
        ceiling = min(self.cap_s, self.base_s * 2 ** min(self._attempt, 30))
        self._attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    @property
    def attempts(self) -> int:
        """How many delays were handed out since the start or the last ``reset()``."""
        return self._attempt

    def reset(self) -> None:
        """Starts over from ``base_s``."""
        self._attempt = 0
