"""Back-pressure: fewer escalations while the cloud model is overloaded, restored when load falls.

When Triton's queue time per request, its pending requests or the service's escalations in flight rise
past their high marks, :func:`next_shift` raises the bar for escalating by one ``step``: every threshold
of the control policy is lowered by the total ``shift`` (a query must be less likely right than before to
escalate), never beyond ``max_shift``. Only when *every* signal is below its low mark does the shift come
down again, one step per interval; between the marks it holds (hysteresis, so the fleet is not flapped
between two policies). Each change is published as a new signed version whose history entry says why
(:func:`cloud_service.policies.operations.shift_thresholds`), and exported as metrics.

The decision is pure; :class:`BackpressureController` is the small loop around it: sample the load,
decide, publish to each followed (edge model version, cohort), repeat every ``interval_s``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from cloud_service.policies import operations
from cloud_service.policies.operations import RolloutStore
from confroute.errors import ConfrouteError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Load:
    """The load over the last interval: mean queue time per request, pending requests, escalations in flight.
    NaN: not known (that signal is ignored)."""

    queue_ms: float
    pending: float
    inflight: float


@dataclass(frozen=True)
class BackpressureSettings:
    """High marks start raising the bar, low marks (all of them) lower it again; one ``step`` per interval."""

    queue_high_ms: float = 50.0
    queue_low_ms: float = 10.0
    pending_high: float = 32.0
    pending_low: float = 4.0
    inflight_high: float = 48.0
    inflight_low: float = 16.0
    step: float = 0.05
    max_shift: float = 0.2
    interval_s: float = 5.0

    def __post_init__(self) -> None:
        for low, high in (("queue_low_ms", "queue_high_ms"), ("pending_low", "pending_high"),
                          ("inflight_low", "inflight_high")):
            if not 0 <= getattr(self, low) < getattr(self, high):
                raise ValueError(f"need 0 <= {low} < {high}")
        if not 0 < self.step <= self.max_shift <= 1:
            raise ValueError("need 0 < step <= max_shift <= 1")
        if not self.interval_s > 0:
            raise ValueError("interval_s must be > 0")


@dataclass(frozen=True)
class Adjustment:
    """The shift to run with and why."""

    shift: float
    reason: str


def next_shift(current: float, load: Load, settings: BackpressureSettings) -> Adjustment:
    """One step up when any signal is above its high mark, one step down when all are below their low marks."""
    signals = (
        ("queue", load.queue_ms, settings.queue_low_ms, settings.queue_high_ms, "ms"),
        ("pending", load.pending, settings.pending_low, settings.pending_high, ""),
        ("in flight", load.inflight, settings.inflight_low, settings.inflight_high, ""),
    )
    known = [(name, value, low, high, unit) for name, value, low, high, unit in signals if not math.isnan(value)]
    over = [f"{name} {value:.4g}{unit} > {high:g}{unit}" for name, value, _, high, unit in known if value > high]
    if over:
        shift = min(settings.max_shift, round(current + settings.step, 9))
        why = "overload: " + ", ".join(over) + ("" if shift > current else f" (shift at its maximum {shift:g})")
        return Adjustment(shift, why)
    if known and current > 0 and all(value < low for _, value, low, _, _ in known):
        shift = max(0.0, round(current - settings.step, 9))
        return Adjustment(shift, "load fell: " + ", ".join(f"{n} {v:.4g}{u}" for n, v, _, _, u in known))
    return Adjustment(current, "within the band" if known else "load unknown: holding")


LoadSource = Callable[[], Awaitable[Load | None]]
OnAdjust = Callable[[str, str, float, str], None]  # edge model version, cohort, shift, reason


class BackpressureController:
    """Samples the load every ``interval_s`` and publishes shifted thresholds for each key it follows."""

    def __init__(
        self,
        store: RolloutStore,
        keys: Sequence[tuple[str, str]],
        source: LoadSource,
        settings: BackpressureSettings,
        on_adjust: OnAdjust | None = None,
    ) -> None:
        self._store = store
        self._keys = tuple(keys)
        self._source = source
        self._settings = settings
        self._on_adjust = on_adjust
        self.shift = 0.0

    async def step(self) -> Adjustment | None:
        """One sample and decision; the adjustment when the shift changed, else None."""
        load = await self._source()
        if load is None:
            return None
        adjustment = next_shift(self.shift, load, self._settings)
        if adjustment.shift == self.shift:
            return None
        for version, cohort in self._keys:
            try:
                await operations.shift_thresholds(self._store, version, cohort, adjustment.shift, adjustment.reason)
            except ConfrouteError as exc:  # one key's trouble must not stop the others; retried next interval
                logger.warning("back-pressure could not adjust %s/%s: %s", version, cohort, exc)
                return None
            if self._on_adjust is not None:
                self._on_adjust(version, cohort, adjustment.shift, adjustment.reason)
        logger.info("back-pressure shift %.3g -> %.3g: %s", self.shift, adjustment.shift, adjustment.reason)
        self.shift = adjustment.shift
        return adjustment

    async def run(self, stop: asyncio.Event) -> None:
        """Steps until ``stop`` is set."""
        while not stop.is_set():
            await self.step()
            try:
                await asyncio.wait_for(stop.wait(), self._settings.interval_s)
            except asyncio.TimeoutError:
                continue
