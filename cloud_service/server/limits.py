"""A bounded number of escalations in flight, refused at once when full rather than queued.

A queue in front of a model that is already saturated only adds latency that the edge's deadline
then wastes; an immediate RESOURCE_EXHAUSTED lets the device answer locally instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from confroute.errors import Overloaded


class InflightLimit:
    """At most ``capacity`` holders of a slot at once; used from one event loop."""

    def __init__(self, capacity: int, on_refused: Callable[[], None] | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._capacity = capacity
        self._used = 0
        self._on_refused = on_refused

    @property
    def in_use(self) -> int:
        """Slots held now."""
        return self._used

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Holds one slot for the block; raises :class:`Overloaded` when none is free."""
        if self._used >= self._capacity:
            if self._on_refused is not None:
                self._on_refused()
            raise Overloaded(f"{self._capacity} escalations are in flight; retry later or answer locally")
        self._used += 1
        try:
            yield
        finally:
            self._used -= 1
