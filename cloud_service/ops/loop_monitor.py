"""The service's periodic look at its fleet and its loop, off the request path.

Every ``interval_s`` one task: flushes the sightings the servicers noted into the device directory
(:mod:`.devices`), summarizes the devices (:mod:`.fleet_view`) against the versions each rollout serves,
reads each partition's last window of outcomes (:mod:`.loop_source`) and computes the live policy's
figures on it (:mod:`.loop_window`). The result is kept as a :class:`LoopSnapshot` for the status API and
set on the service's gauges (``confroute_devices_*``, ``confroute_loop_*``), with version labels bounded
(:func:`.fleet_view.bounded`) and at most ``max_partitions`` partitions; each pass's window figures also go
into a bounded ring of the last ``trend_points`` passes (:mod:`.loop_trend`), the dashboard's "over time".
A pass that fails (Redis away) keeps the last snapshot, says why in it, and gives the sightings back for the
next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cloud_service.config import ServiceConfig
from cloud_service.metrics import ServiceMetrics
from cloud_service.ops.devices import DeviceDirectory, RedisDeviceDirectory, Sightings
from cloud_service.ops.fleet_view import FleetSummary, PartitionId, bounded, summarize
from cloud_service.ops.loop_source import LoopSource, RedisLoopSource
from cloud_service.ops.loop_trend import LoopTrend
from cloud_service.ops.loop_window import Target, WindowReport, window_report
from cloud_service.ops.status import RolloutReader
from cloud_service.outcomes.redis_log import RedisOutcomeLog
from cloud_service.ports import PolicyStore
from cloud_service.redis_client import connect
from cloud_service.store.schema import Partition
from cloud_service.task_stop import stop_task
from confroute.errors import ConfrouteError, InvalidInput

logger = logging.getLogger(__name__)
Labels = TypeVar("Labels", bound=tuple[str, ...])


@dataclass(frozen=True)
class MonitorSettings:
    """How often, over how many outcomes, how many passes remembered, and how many series at most.

    ``cloud-service serve`` sets ``interval_s`` and ``window`` from its config (``--monitor-interval-s``,
    ``--monitor-window``); 120 points at 15 s is the last half hour."""

    interval_s: float = 15.0
    window: int = 2_000
    trend_points: int = 120
    max_partitions: int = 100
    max_version_series: int = 50

    def __post_init__(self) -> None:
        if not (math.isfinite(self.interval_s) and self.interval_s > 0):
            raise InvalidInput(f"the monitor's interval must be a positive number of seconds, got {self.interval_s}",
                               field="monitor_interval_s")
        for name in ("window", "trend_points", "max_partitions", "max_version_series"):
            if getattr(self, name) < 1:
                raise InvalidInput(f"the monitor's {name} must be >= 1, got {getattr(self, name)}",
                                   field=f"monitor_{name}")

    @classmethod
    def of(cls, config: ServiceConfig) -> MonitorSettings:
        """The settings ``serve``'s config gives (the bounds on series keep their defaults)."""
        return cls(interval_s=config.monitor_interval_s, window=config.monitor_window)


@dataclass(frozen=True)
class LoopSnapshot:
    """What the last pass saw (``refreshed_at`` None: no pass finished yet)."""

    refreshed_at: float | None = None
    fleet: FleetSummary = field(default_factory=FleetSummary)
    windows: tuple[WindowReport, ...] = ()
    history: tuple[Mapping[str, Any], ...] = ()  # recalibrations, newest first, with their partition
    error: str | None = None
    trend: tuple[Mapping[str, Any], ...] = ()  # LoopTrend.to_json() after this pass
    interval_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"refreshed_at": self.refreshed_at, "error": self.error, "devices": self.fleet.to_json(),
                "windows": [report.to_json() for report in self.windows], "history": list(self.history),
                "trend": list(self.trend), "interval_s": self.interval_s}


class LoopMonitor:
    """The periodic pass (see the module docstring); :meth:`start` it, :meth:`close` it."""

    def __init__(self, metrics: ServiceMetrics, policy_store: PolicyStore, *, sightings: Sightings | None = None,
                 directory: DeviceDirectory | None = None, source: LoopSource | None = None,
                 settings: MonitorSettings | None = None, clock: Callable[[], float] = time.time) -> None:
        self._metrics = metrics
        self._store = policy_store
        self._sightings = sightings
        self._directory = directory
        self._source = source
        self._settings = settings or MonitorSettings()
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._trend = LoopTrend(self._settings.trend_points)
        self.snapshot = LoopSnapshot(interval_s=self._settings.interval_s)

    @property
    def sightings(self) -> Sightings | None:
        """Where the servicers note devices (None: this monitor keeps no device directory)."""
        return self._sightings if self._directory is not None else None

    def start(self) -> None:
        """Runs :meth:`refresh` every ``interval_s`` until :meth:`close`."""
        self._task = asyncio.create_task(self._run(), name="loop-monitor")

    async def close(self) -> None:
        """Stops the task, then flushes the sightings noted since its last pass (best effort)."""
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        with contextlib.suppress(ConfrouteError):
            await self._flush()

    async def refresh(self) -> LoopSnapshot:
        """One pass; raises what the stores raise (the snapshot and gauges stay as they were)."""
        await self._flush()
        records = await self._directory.records() if self._directory is not None else []
        windows, history = await self._windows()
        partitions = {(r.edge_model_version, r.cohort) for r in records} | {(w.edge_model_version, w.cohort)
                                                                            for w in windows}
        served, shares = await self._served(sorted(partitions))
        fleet = await asyncio.to_thread(summarize, records, self._clock(), served)
        now = self._clock()
        self._trend.add(now, windows)
        self.snapshot = LoopSnapshot(now, fleet, windows, history, trend=tuple(self._trend.to_json()),
                                     interval_s=self._settings.interval_s)
        self._publish(self.snapshot)
        _replace(self._metrics.canary_share, shares)
        return self.snapshot

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except ConfrouteError as exc:
                logger.warning("the loop monitor's pass failed (%s); the next one in %.0f s", exc,
                               self._settings.interval_s)
                self._failed(str(exc))
            except Exception:  # a bug here must not end the monitor, nor reach the service's callers
                logger.exception("the loop monitor's pass failed")
                self._failed("internal error (see the service's log)")
            await asyncio.sleep(self._settings.interval_s)

    def _failed(self, why: str) -> None:
        last = self.snapshot
        self.snapshot = dataclasses.replace(last, error=why)

    async def _flush(self) -> None:
        if self._sightings is None or self._directory is None:
            return
        pending = self._sightings.drain()
        try:
            await self._directory.save(pending)
        except ConfrouteError:
            self._sightings.restore(pending)
            raise

    async def _windows(self) -> tuple[tuple[WindowReport, ...], tuple[Mapping[str, Any], ...]]:
        if self._source is None:
            return (), ()
        reports: list[WindowReport] = []
        history: list[Mapping[str, Any]] = []
        for partition in (await self._source.partitions())[: self._settings.max_partitions]:
            reports.append(await self._window(partition, history))
        history.sort(key=lambda entry: str(entry.get("at", "")), reverse=True)
        return tuple(reports), tuple(history)

    async def _window(self, partition: Partition, history: list[Mapping[str, Any]]) -> WindowReport:
        assert self._source is not None
        version, cohort = partition.edge_model_version, partition.cohort
        window = await self._source.window(partition, self._settings.window)
        policy = await self._store.current(version, cohort)
        history += [{"edge_model_version": version, "cohort": cohort, **entry} for entry in window.recalibrations]
        target = Target.of(window.recalibrations[0].get("provenance", {})) if window.recalibrations else Target()
        return await asyncio.to_thread(window_report, version, cohort, window.records, policy, window.late_labels,
                                       target)

    async def _served(self, partitions: Iterable[PartitionId]
                      ) -> tuple[dict[PartitionId, frozenset[str]], dict[PartitionId, float]]:
        """The policy versions each partition's rollout hands out now, and its canary's share (where the
        store keeps rollouts and one was published)."""
        served: dict[PartitionId, frozenset[str]] = {}
        shares: dict[PartitionId, float] = {}
        for version, cohort in list(partitions)[: self._settings.max_partitions]:
            if isinstance(self._store, RolloutReader):
                state = (await self._store.rollout(version, cohort)).state
                versions = frozenset(v for v in (state.control, state.canary) if v)
                if state.control:
                    shares[version, cohort] = state.share if state.canary else 0.0
            else:
                policy = await self._store.current(version, cohort)
                versions = frozenset({policy.policy_version} if policy else ())
            if versions:
                served[version, cohort] = versions
        return served, shares

    def _publish(self, snapshot: LoopSnapshot) -> None:
        metrics, limit = self._metrics, self._settings.max_version_series
        fleet = snapshot.fleet
        for age, count in fleet.by_age.items():
            metrics.devices_by_age.labels(age).set(count)
        _replace(metrics.devices_by_policy, bounded(fleet.by_policy, limit))
        _replace(metrics.devices_by_probe, bounded(fleet.by_probe, limit))
        _replace(metrics.devices_behind, bounded(fleet.behind, limit))
        gauges = {"outcomes": metrics.window_outcomes, "labelled": metrics.window_labelled,
                  "escalation_rate": metrics.window_escalation_rate, "ece": metrics.window_ece,
                  "auroc": metrics.window_auroc, "risk": metrics.window_risk,
                  "target_escalation_rate": metrics.window_target_rate, "risk_bound": metrics.window_risk_bound}
        for gauge in gauges.values():
            gauge.clear()
        for report in snapshot.windows:
            figures = report.to_json()
            for name, gauge in gauges.items():
                value = figures[name]
                if isinstance(value, (int, float)):
                    gauge.labels(report.edge_model_version, report.cohort).set(value)
        if snapshot.refreshed_at is not None:
            metrics.loop_refreshed.set(snapshot.refreshed_at)


def _replace(gauge: Any, counts: Mapping[Labels, float]) -> None:
    """The gauge's series become exactly ``counts`` (a version no device runs any more disappears)."""
    gauge.clear()
    for labels, count in counts.items():
        gauge.labels(*labels).set(count)



@asynccontextmanager
async def open_loop_monitor(outcome_log: object, policy_store: PolicyStore, metrics: ServiceMetrics,
                            settings: MonitorSettings | None = None) -> AsyncIterator[LoopMonitor]:
    """The service's monitor, started, on the Redis its outcome log writes to (its own client); closed and
    flushed on the way out. An outcome log that is not in Redis (tests) gives a monitor with nothing to read
    and no sightings to keep."""
    if not isinstance(outcome_log, RedisOutcomeLog):
        yield LoopMonitor(metrics, policy_store, settings=settings)
        return
    log = outcome_log.config
    client = connect(log.url, connect_timeout_s=log.connect_timeout_s, command_timeout_s=log.command_timeout_s)
    try:
        monitor = LoopMonitor(metrics, policy_store, sightings=Sightings(), directory=RedisDeviceDirectory(client),
                              source=RedisLoopSource(client, log), settings=settings)
        monitor.start()
        try:
            yield monitor
        finally:
            await monitor.close()
    finally:
        await client.aclose()
