"""The cloud service's interfaces to the outside: the model backend, the outcome log, the policy store.

Each has a real implementation (Triton, Redis) and the servicers depend only on these protocols.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from confroute.contract.answer import EscalationResponse, StreamEvent
from confroute.contract.escalation import EscalationRequest
from confroute.contract.outcome import OutcomeRecord
from confroute.contract.policy import Policy


class InferenceBackend(Protocol):
    """Generates the cloud answer (Triton in production and tests)."""

    async def generate(self, request: EscalationRequest, timeout_s: float) -> EscalationResponse: ...

    def stream(self, request: EscalationRequest, timeout_s: float) -> AsyncIterator[StreamEvent]:
        """Token deltas as they come, then one final EscalationResponse."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class StoreResult:
    """What a durable write did: ids newly stored and ids that were already in the log."""

    stored: tuple[str, ...]
    duplicates: tuple[str, ...]


class OutcomeLog(Protocol):
    """The outcome log (a Redis Stream). Idempotent by ``query_id`` per origin: the service's own record
    of an escalation (``record``) and the device's record of the same query (``store``) are two entries."""

    def record(self, record: OutcomeRecord) -> None:
        """Enqueues for a batched write off the request path; never blocks, never raises on outages
        (buffers, bounded; drops are counted)."""
        ...

    async def store(self, records: Sequence[OutcomeRecord]) -> StoreResult:
        """Writes durably before returning (used for uploads that a device deletes only after the ack);
        raises ``confroute.errors.Unavailable`` when the log cannot be reached."""
        ...

    async def close(self) -> None:
        """Flushes what is buffered (bounded wait) and releases connections."""
        ...


class PolicyStore(Protocol):
    """Versioned policies per (edge model version, cohort); with a canary running, each device has its own
    assigned version (``device_id`` empty: the control's)."""

    async def current(self, edge_model_version: str, cohort: str, device_id: str = "") -> Policy | None: ...

    async def publish(self, policy: Policy) -> None: ...

    def watch(
        self, edge_model_version: str, cohort: str, known_version: str, device_id: str = ""
    ) -> AsyncIterator[Policy]:
        """Yields the device's policy if it is not ``known_version``, then every later change of it."""
        ...
