"""The loop monitor's ring of recent passes (bounded per partition, partitions no pass reads forgotten, carried
by the snapshot to the status API) and its settings from the service's config."""

from __future__ import annotations

import argparse
import asyncio

import pytest

from cloud_service.config import ServiceConfig, add_arguments, config_from
from cloud_service.metrics import create_metrics
from cloud_service.ops.loop_monitor import LoopMonitor, MonitorSettings
from cloud_service.ops.loop_trend import LoopTrend
from cloud_service.ops.loop_window import Target, WindowReport
from confroute.errors import InvalidInput
from tests.cloud_service.memory_stores import MemoryPolicyStore
from tests.cloud_service.ops.service import MemoryLoopSource
from tests.cloud_service.server.conftest import MemoryOutcomeLog
from tests.factories import COHORT, EDGE, routed


def report(cohort: str, rate: float | None, target: float | None = 0.2) -> WindowReport:
    return WindowReport("v1", cohort, "p1", 100, 50, rate, Target(escalation_rate=target), ece=0.05, risk=None)


def test_each_partition_keeps_its_last_points_oldest_first() -> None:
    trend = LoopTrend(points=3)
    for at in range(5):
        trend.add(float(at), [report("a", at / 10), report("b", None, target=None)])
    (a, b) = trend.to_json()
    assert (a["cohort"], [p["at"] for p in a["points"]]) == ("a", [2.0, 3.0, 4.0])
    assert [p["escalation_rate"] for p in a["points"]] == [0.2, 0.3, 0.4]
    assert a["points"][-1] == {"at": 4.0, "escalation_rate": 0.4, "target_escalation_rate": 0.2, "ece": 0.05,
                               "risk": None}
    assert [p["escalation_rate"] for p in b["points"]] == [None, None, None]


def test_a_partition_no_pass_reads_any_more_is_forgotten() -> None:
    trend = LoopTrend(points=10)
    trend.add(1.0, [report("a", 0.1), report("b", 0.2)])
    trend.add(2.0, [report("b", 0.3)])
    trend.add(3.0, [report("a", 0.4), report("b", 0.5)])
    by_cohort = {entry["cohort"]: [p["at"] for p in entry["points"]] for entry in trend.to_json()}
    assert by_cohort == {"a": [3.0], "b": [1.0, 2.0, 3.0]}


def test_the_monitor_snapshot_carries_its_passes() -> None:
    log = MemoryOutcomeLog()
    log.stored.update((r.query_id, r) for r in routed(200, threshold=0.25, seed=3))
    clock = iter(float(t) for t in range(100, 200))
    monitor = LoopMonitor(create_metrics(), MemoryPolicyStore(), source=MemoryLoopSource(log, []),
                          settings=MonitorSettings(interval_s=5.0, window=50, trend_points=2),
                          clock=lambda: next(clock))

    async def passes() -> None:
        for _ in range(3):
            await monitor.refresh()

    asyncio.run(passes())
    document = monitor.snapshot.to_json()
    (entry,) = document["trend"]
    assert (entry["edge_model_version"], entry["cohort"]) == (EDGE.version, COHORT)
    assert len(entry["points"]) == 2 and entry["points"][-1]["at"] == document["refreshed_at"]
    assert entry["points"][-1]["escalation_rate"] == document["windows"][0]["escalation_rate"]
    assert document["interval_s"] == 5.0


@pytest.mark.parametrize("settings", [{"interval_s": 0.0}, {"interval_s": float("nan")}, {"window": 0},
                                      {"trend_points": 0}])
def test_bad_monitor_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(InvalidInput):
        MonitorSettings(**settings)  # type: ignore[arg-type]


def test_serve_sets_the_monitors_interval_and_window_by_flag_or_environment() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--monitor-interval-s", "5"])
    settings = MonitorSettings.of(config_from(args, {"CONFROUTE_CLOUD_MONITOR_WINDOW": "500"}))
    assert (settings.interval_s, settings.window) == (5.0, 500)
    assert MonitorSettings.of(ServiceConfig()) == MonitorSettings()


@pytest.mark.parametrize("field", [{"monitor_interval_s": 0.0}, {"monitor_interval_s": float("inf")},
                                   {"monitor_window": 0}, {"monitor_window": 100_001}])
def test_bad_monitor_fields_stop_the_service_config(field: dict[str, float]) -> None:
    with pytest.raises(InvalidInput) as raised:
        ServiceConfig(**field)  # type: ignore[arg-type]
    assert raised.value.field == next(iter(field))
