"""Bounds: escalations in flight (in all and per device), and the sizes of requests.

A queue in front of a model that is already saturated only adds latency that the edge's deadline
then wastes; an immediate RESOURCE_EXHAUSTED lets the device answer locally instead. Per-device caps
(:class:`PerKeySlots`) keep one device from holding every slot or thousands of watch streams; they are
per replica (the Redis token bucket in :mod:`cloud_service.identity.rate` is the fleet-wide rate).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cloud_service.identity.rate import RateLimiter
from confroute.contract.escalation import EscalationRequest
from confroute.errors import InvalidInput, Overloaded


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


class PerKeySlots:
    """At most ``capacity`` calls at once per key (a device), on this replica; refused when full."""

    def __init__(self, capacity: int, what: str) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._capacity = capacity
        self._what = what
        self._used: dict[str, int] = {}

    def in_use(self, key: str) -> int:
        return self._used.get(key, 0)

    @contextmanager
    def slot(self, key: str | None) -> Iterator[None]:
        """Holds one of ``key``'s slots for the block (None: no key, no limit)."""
        if key is None:
            yield
            return
        used = self._used.get(key, 0)
        if used >= self._capacity:
            raise Overloaded(f"{key} already has {self._capacity} {self._what} open")
        self._used[key] = used + 1
        try:
            yield
        finally:
            left = self._used[key] - 1
            if left:
                self._used[key] = left
            else:
                del self._used[key]


@dataclass(frozen=True)
class RequestLimits:
    """Sizes every request is held to (``cloud-service serve`` flags of the same names)."""

    max_tokens: int = 4096
    max_messages: int = 256
    max_prompt_bytes: int = 256 * 1024
    max_batch_records: int = 1000

    def check_escalation(self, request: EscalationRequest) -> None:
        """InvalidInput naming the field when the request asks for more than the service gives."""
        if request.params.seed is not None and request.params.seed < 0:  # samplers take seeds in [0, 2^63)
            raise InvalidInput(f"seed must be >= 0, got {request.params.seed}", field="params.seed")
        if request.params.max_tokens > self.max_tokens:
            raise InvalidInput(f"max_tokens must be <= {self.max_tokens}, got {request.params.max_tokens}",
                               field="params.max_tokens")
        if len(request.messages) > self.max_messages:
            raise InvalidInput(f"at most {self.max_messages} messages, got {len(request.messages)}", field="messages")
        size = sum(len(m.content.encode("utf-8", "surrogatepass")) for m in request.messages)
        if size > self.max_prompt_bytes:  # a prompt token covers at least one byte: this bounds prompt tokens
            raise InvalidInput(f"the prompt must be <= {self.max_prompt_bytes} bytes, got {size}", field="messages")

    def check_batch(self, records: int) -> None:
        if records > self.max_batch_records:
            raise InvalidInput(f"an upload batch holds at most {self.max_batch_records} records, got {records}",
                               field="records")


@dataclass(frozen=True)
class DeviceLimits:
    """What one device may hold: its fleet-wide rates (None: no rate limit) and, on this replica, its
    concurrent escalations and watch streams."""

    rate: RateLimiter | None
    escalations: PerKeySlots
    watches: PerKeySlots

    @classmethod
    def unlimited(cls) -> DeviceLimits:
        """No rate and no practical cap (a servicer built without limits, in tests)."""
        return cls(None, PerKeySlots(1 << 30, "escalations"), PerKeySlots(1 << 30, "policy watches"))

    async def take(self, principal_id: str | None, kind: str) -> None:
        """One token of ``kind`` from the device's bucket (RateLimited when empty); no device: no limit."""
        if principal_id is not None and self.rate is not None:
            await self.rate.take(principal_id, kind)
