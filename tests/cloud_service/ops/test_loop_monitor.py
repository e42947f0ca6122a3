"""The service's monitor on a real Redis: the outcome log's last window, late labels, the recalibrations'
provenance and the devices' sightings become the status's numbers and the gauges."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from cloud_service.metrics import create_metrics
from cloud_service.ops.devices import RedisDeviceDirectory, Sightings
from cloud_service.ops.loop_monitor import LoopMonitor, LoopSnapshot, MonitorSettings, open_loop_monitor
from cloud_service.ops.loop_source import RedisLoopSource
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.labels import LabelWriter, LateLabel
from cloud_service.outcomes.redis_log import RedisOutcomeLog
from cloud_service.outcomes.writer import OutcomeWriter
from cloud_service.redis_client import connect
from confroute.contract.enums import Label, LabelSource
from confroute.errors import Unavailable
from tests.cloud_service.ops.service import RolloutStore, live_policy
from tests.cloud_service.redis_server import RedisServer
from tests.factories import COHORT, EDGE, routed

pytestmark = pytest.mark.timeout(60)
NOW = 2_000_000_000.0


def sample(metrics: Any, name: str, **labels: str) -> float | None:
    value: float | None = metrics.registry.get_sample_value(name, labels)
    return value


async def observe(url: str, metrics: Any) -> LoopSnapshot:
    client = connect(url, connect_timeout_s=1.0, command_timeout_s=10.0)
    log = OutcomeLogConfig(url=url)
    try:
        records = routed(600, threshold=0.25, shadow_rate=0.3, seed=2, devices=3)
        unlabelled = routed(5, labelled=False, prefix="late", seed=9)
        await OutcomeWriter(client, log).write([*records, *unlabelled])
        await LabelWriter(client, log).write(LateLabel(unlabelled[0], Label.CORRECT, LabelSource.CLOUD_JUDGE))
        provenance = {"target": {"kind": "rate", "rate": 0.2}, "version": "p-live"}
        await client.xadd(log.partition(EDGE.version, COHORT).recalibrations,
                          {"at": "2026-12-07T10:00:00+00:00", "status": "published", "version": "p-live",
                           "reason": "", "provenance": json.dumps(provenance)})
        store = RolloutStore()
        await store.publish(live_policy())
        sightings = Sightings(clock=lambda: NOW - 10)
        sightings.note("device-1", COHORT, EDGE.version, "watch", policy_version="p-live")
        sightings.note("device-2", COHORT, EDGE.version, "upload", policy_version="p-old")
        monitor = LoopMonitor(metrics, store, sightings=sightings, directory=RedisDeviceDirectory(client),
                              source=RedisLoopSource(client, log), settings=MonitorSettings(window=500),
                              clock=lambda: NOW)
        return await monitor.refresh()
    finally:
        await client.aclose()


def test_a_pass_reads_the_window_the_labels_the_target_and_the_devices(redis_server: RedisServer) -> None:
    metrics = create_metrics()
    snapshot = asyncio.run(observe(redis_server.url, metrics))

    (window,) = snapshot.windows
    assert window.outcomes == 500  # the newest 500 of 605
    assert window.policy_version == "p-live" and window.target.escalation_rate == 0.2
    assert window.labelled > 100 and window.ece is not None and window.auroc is not None
    assert snapshot.history[0]["version"] == "p-live" and snapshot.history[0]["cohort"] == COHORT
    partition = {"edge_model_version": EDGE.version, "cohort": COHORT}
    assert sample(metrics, "confroute_loop_window_outcomes", **partition) == 500
    assert sample(metrics, "confroute_loop_window_ece", **partition) == pytest.approx(window.ece, abs=1e-4)
    assert sample(metrics, "confroute_loop_window_target_escalation_rate", **partition) == 0.2

    fleet = snapshot.fleet
    assert fleet.devices == 2 and fleet.online == 2
    assert fleet.behind == {(EDGE.version, COHORT): 1}  # p-old is neither the control nor the canary
    assert sample(metrics, "confroute_devices_by_policy_version", policy_version="p-old", **partition) == 1
    assert sample(metrics, "confroute_devices_behind_policy", **partition) == 1
    assert sample(metrics, "confroute_devices_by_last_seen", age="<5m") == 2
    assert sample(metrics, "confroute_canary_share", **partition) == 0.1  # RolloutStore's canary p-next
    assert json.dumps(snapshot.to_json(), allow_nan=False)


def test_a_late_label_counts_in_the_window(redis_server: RedisServer) -> None:
    async def scenario() -> int:
        client = connect(redis_server.url, connect_timeout_s=1.0, command_timeout_s=10.0)
        log = OutcomeLogConfig(url=redis_server.url)
        try:
            records = routed(3, labelled=False, seed=4)
            await OutcomeWriter(client, log).write(records)
            await LabelWriter(client, log).write(LateLabel(records[1], Label.INCORRECT, LabelSource.CLOUD_JUDGE))
            window = await RedisLoopSource(client, log).window(
                (await RedisLoopSource(client, log).partitions())[0], 10)
            assert window.late_labels == {records[1].query_id: Label.INCORRECT}
            return len(window.records)
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == 3


def test_the_service_s_monitor_runs_on_its_outcome_log_s_redis_and_flushes_on_close(redis_server: RedisServer) -> None:
    async def scenario() -> list[str]:
        metrics = create_metrics()
        log = RedisOutcomeLog(OutcomeLogConfig(url=redis_server.url))
        async with log, open_loop_monitor(log, RolloutStore(), metrics, MonitorSettings(interval_s=60)) as monitor:
            assert monitor.sightings is not None
            monitor.sightings.note("device-5", COHORT, EDGE.version, "watch")
        client = connect(redis_server.url, connect_timeout_s=1.0, command_timeout_s=5.0)
        try:
            return [record.device_id for record in await RedisDeviceDirectory(client).records()]
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == ["device-5"]


def test_without_redis_the_monitor_keeps_no_sightings() -> None:
    async def scenario() -> Sightings | None:
        async with open_loop_monitor(object(), RolloutStore(), create_metrics()) as monitor:
            return monitor.sightings

    assert asyncio.run(scenario()) is None


class DownDirectory:
    """A device directory whose Redis is away."""

    async def save(self, sightings: Any) -> None:
        raise Unavailable("redis is away")

    async def records(self) -> list[Any]:
        raise Unavailable("redis is away")


def test_a_failed_pass_keeps_the_sightings_and_says_why_and_the_monitor_goes_on() -> None:
    async def scenario() -> tuple[LoopSnapshot, Sightings]:
        sightings = Sightings()
        sightings.note("device-1", COHORT, EDGE.version, "watch", policy_version="p-1")
        monitor = LoopMonitor(create_metrics(), RolloutStore(), sightings=sightings, directory=DownDirectory(),
                              settings=MonitorSettings(interval_s=0.05))
        monitor.start()
        await asyncio.sleep(0.3)
        snapshot = monitor.snapshot
        await monitor.close()  # its last flush fails too, and gives the sightings back
        return snapshot, sightings

    snapshot, sightings = asyncio.run(scenario())
    assert snapshot.error == "redis is away" and snapshot.refreshed_at is None
    assert [record.policy_version for record in sightings.drain()] == ["p-1"]
