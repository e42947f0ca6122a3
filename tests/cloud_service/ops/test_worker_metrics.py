"""The workers' ``/metrics``: passes, the consumer group's lag, what recalibration estimated, process_*."""

from __future__ import annotations

import asyncio
import math
from collections import Counter

import pytest

from cloud_service.ops.stream_lag import group_lag
from cloud_service.ops.worker_metrics import WorkerMetrics
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.writer import OutcomeWriter
from cloud_service.redis_client import connect
from tests.cloud_service.ops.workers import scrape, wait_for_sample, worker_process
from tests.cloud_service.redis_server import RedisServer
from tests.factories import COHORT, EDGE, routed

pytestmark = pytest.mark.timeout(90)


async def ingest(url: str, n: int) -> None:
    client = connect(url, connect_timeout_s=1.0, command_timeout_s=10.0)
    try:
        await OutcomeWriter(client, OutcomeLogConfig(url=url)).write(routed(n, cohort=COHORT, seed=1, prefix="m"))
    finally:
        await client.aclose()


async def lag_of(url: str, group: str) -> tuple[float, int]:
    client = connect(url, connect_timeout_s=1.0, command_timeout_s=10.0)
    try:
        lag = await group_lag(client, OutcomeLogConfig(url=url), group)
    finally:
        await client.aclose()
    return lag.lag, lag.pending


def test_a_group_that_never_read_lags_by_the_whole_log(redis_server: RedisServer) -> None:
    asyncio.run(ingest(redis_server.url, 40))

    assert asyncio.run(lag_of(redis_server.url, "nobody")) == (40.0, 0)


def test_the_recalibration_worker_exports_its_passes_lag_and_estimates(redis_server: RedisServer) -> None:
    asyncio.run(ingest(redis_server.url, 3000))
    arguments = ["recalibrate", "--interval", "0.2", "--redis-url", redis_server.url, "--target", "rate",
                 "--target-rate", "0.25"]

    with worker_process(arguments) as port:
        wait_for_sample(port, "confroute_worker_passes_total", {"worker": "recalibrate", "result": "ok"},
                        lambda passes: passes >= 1)
        lag = wait_for_sample(port, "confroute_outcome_stream_lag", {"group": "recalibrate"}, lambda v: v == 0)
        samples = scrape(port)

    partition = (("cohort", COHORT), ("edge_model_version", EDGE.version))
    assert lag == 0.0
    assert samples[("confroute_recalibrations_total", (*partition, ("result", "published")))] >= 1
    new_rate = samples[("confroute_policy_estimated_escalation_rate", (partition[0], partition[1], ("policy", "new")))]
    assert new_rate == pytest.approx(0.25, abs=0.01)
    assert samples[("confroute_policy_target_escalation_rate", partition)] == 0.25
    new_ece = samples[("confroute_policy_estimated_ece", (partition[0], partition[1], ("policy", "new")))]
    assert 0.0 <= new_ece < 0.1  # isotonic on these very outcomes: well calibrated
    assert samples[("process_cpu_seconds_total", ())] > 0


def test_worker_metrics_record_passes_judge_calls_and_canary_verdicts() -> None:
    metrics = WorkerMetrics("judge")
    metrics.observe_pass("ok", 0.5, finished_at=1700000000.0)
    metrics.observe_pass("unavailable", 0.1, finished_at=1700000001.0)
    metrics.observe_judge_call("correct")
    metrics.observe_judge_call("failed")
    metrics.observe_judge_pass(Counter({"labelled": 2, "not_eligible": 3}))
    metrics.observe_recalibration("v1", "beta", False, {"canary": {"verdict": "rollback", "reason": "worse"},
                                                        "target": {"kind": "quality", "alpha": 0.1}})

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert value("confroute_worker_last_success_timestamp_seconds", worker="judge") == 1700000000.0
    assert value("confroute_worker_passes_total", worker="judge", result="unavailable") == 1.0
    assert value("confroute_judge_calls_total", result="failed") == 1.0
    assert value("confroute_judge_queries_total", outcome="not_eligible") == 3.0
    assert value("confroute_canary_verdicts_total", edge_model_version="v1", cohort="beta", verdict="rollback") == 1.0
    assert value("confroute_policy_risk_bound", edge_model_version="v1", cohort="beta") == 0.1
    assert not math.isnan(value("confroute_recalibrations_total", edge_model_version="v1", cohort="beta",
                                result="refused") or math.nan)
