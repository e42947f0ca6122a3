"""The recalibration worker against a real redis-server: statistics at ingest, consumer-group folds, policies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import numpy as np
import pytest
import redis

from cloud_service.calibration import RecalibrationConfig, RecalibrationWorker
from cloud_service.calibration.fold import FoldCounts, StreamFolder
from cloud_service.calibration.statistics_reader import read_statistics
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.writer import OutcomeWriter
from cloud_service.policies import PolicyStoreConfig, RedisPolicyStore
from cloud_service.redis_client import StreamEntry, connect
from confroute.contract.common import ModelRef
from confroute.contract.enums import RoutingMode
from confroute.contract.outcome import OutcomeRecord
from confroute.contract.policy import Policy, Thresholds
from tests.cloud_service.redis_server import RedisServer
from tests.factories import COHORT, EDGE, T0, routed

pytestmark = pytest.mark.timeout(120)
T = TypeVar("T")


def run(scenario: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(scenario)


@asynccontextmanager
async def worker(
    server: RedisServer, log: OutcomeLogConfig, **settings: Any
) -> AsyncIterator[tuple[RecalibrationWorker, RedisPolicyStore]]:
    client = connect(server.url, connect_timeout_s=1.0, command_timeout_s=10.0)
    store = RedisPolicyStore(PolicyStoreConfig(url=server.url))
    try:
        yield RecalibrationWorker(client, log, store, RecalibrationConfig(**settings)), store
    finally:
        await store.close()
        await client.aclose()


async def ingest(log: OutcomeLogConfig, records: Sequence[OutcomeRecord]) -> None:
    client = connect(log.url, connect_timeout_s=1.0, command_timeout_s=10.0)
    try:
        writer = OutcomeWriter(client, log)
        for i in range(0, len(records), 1000):
            await writer.write(records[i : i + 1000])
    finally:
        await client.aclose()


def first_policy(threshold: float) -> Policy:
    return Policy(
        policy_version="20260101T000000Z",
        edge_model=EDGE,
        cohort=COHORT,
        mode=RoutingMode.POST,
        thresholds=Thresholds(pre=threshold, post=threshold, hybrid_low=threshold, hybrid_high=threshold),
        issued_at=T0,
        shadow_rate=0.2,
    )


def escalation_rate(policy: Policy, n: int = 50_000) -> float:
    """The share of fresh traffic (uniform raw scores) that the policy's post threshold escalates."""
    raw = np.random.default_rng(99).uniform(0.001, 1.0, size=n)
    conf = policy.calibration(raw)
    return float(np.mean(conf < policy.thresholds.post))


def wrong_and_kept(policy: Policy, n: int = 50_000) -> float:
    rng = np.random.default_rng(98)
    raw = rng.uniform(0.001, 1.0, size=n)
    wrong = rng.uniform(size=n) >= raw
    conf = policy.calibration(raw)
    return float(np.mean(wrong & (conf >= policy.thresholds.post)))


def recalibrations(server: RedisServer, log: OutcomeLogConfig) -> list[dict[str, str]]:
    with redis.Redis.from_url(server.url, decode_responses=True) as client:
        return [fields for _, fields in client.xrange(log.partition(EDGE.version, COHORT).recalibrations)]


def test_one_shot_recalibration_moves_the_escalation_rate_to_its_target(redis_server: RedisServer) -> None:
    log = OutcomeLogConfig(url=redis_server.url)

    async def scenario() -> Policy | None:
        async with worker(redis_server, log, target="rate", target_rate=0.3, canary_share=0.0) as (recal, store):
            await store.publish(first_policy(0.05))
            await ingest(log, routed(6000, threshold=0.05))
            [result] = await recal.run_once()
            assert result.policy is not None, result.reason
            return await store.current(EDGE.version, COHORT)

    policy = run(scenario())

    assert policy is not None and policy.policy_version != "20260101T000000Z"
    assert escalation_rate(policy) == pytest.approx(0.3, abs=0.02)
    [entry] = recalibrations(redis_server, log)
    provenance = json.loads(entry["provenance"])
    assert entry["status"] == "published"
    assert provenance["before"]["escalation_rate"] == pytest.approx(0.05, abs=0.01)
    assert provenance["after"]["escalation_rate"] == pytest.approx(0.3, abs=0.01)
    assert provenance["records"] == 6000 and provenance["window"]["first"]


def test_the_hybrid_band_closes_when_the_pre_score_knows_what_the_post_score_knows(
    redis_server: RedisServer,
) -> None:
    # The factory's pre score (probe_tbg) equals its post score: a draft's check adds nothing, so the band
    # shrinks onto the post threshold (both ends near 0.3, where a rate target of 30% puts it).
    log = OutcomeLogConfig(url=redis_server.url)

    async def scenario() -> Policy | None:
        async with worker(redis_server, log, target="rate", target_rate=0.3, canary_share=0.0) as (recal, store):
            await store.publish(first_policy(0.05))
            await ingest(log, routed(6000, threshold=0.05))
            await recal.run_once()
            return await store.current(EDGE.version, COHORT)

    policy = run(scenario())

    assert policy is not None
    assert policy.thresholds.hybrid_low == pytest.approx(0.3, abs=0.05)
    assert policy.thresholds.hybrid_high == pytest.approx(0.3, abs=0.05)
    provenance = json.loads(recalibrations(redis_server, log)[0]["provenance"])
    assert provenance["hybrid_band"] == {"low": policy.thresholds.hybrid_low, "high": policy.thresholds.hybrid_high}


def test_a_quality_target_keeps_wrong_local_answers_under_alpha(redis_server: RedisServer) -> None:
    log = OutcomeLogConfig(url=redis_server.url)

    async def scenario() -> Policy | None:
        async with worker(redis_server, log, target="quality", alpha=0.1, delta=0.1) as (recal, store):
            await ingest(log, routed(8000, threshold=0.05))
            await recal.run_once()
            return await store.current(EDGE.version, COHORT)

    policy = run(scenario())

    assert policy is not None
    assert wrong_and_kept(policy) <= 0.1
    assert escalation_rate(policy) < 0.9  # not the trivial answer "escalate everything"


def test_too_few_labels_are_refused_with_a_reason_and_the_old_policy_stays(redis_server: RedisServer) -> None:
    log = OutcomeLogConfig(url=redis_server.url)

    async def scenario() -> Policy | None:
        async with worker(redis_server, log, min_labelled=500) as (recal, store):
            await store.publish(first_policy(0.05))
            await ingest(log, routed(600, threshold=0.05, shadow_rate=0.2))  # ~150 labels
            [result] = await recal.run_once()
            assert result.policy is None
            assert "fewer than the minimum 500" in result.reason
            return await store.current(EDGE.version, COHORT)

    policy = run(scenario())

    assert policy is not None and policy.policy_version == "20260101T000000Z"
    [entry] = recalibrations(redis_server, log)
    assert entry["status"] == "refused" and "labelled outcomes" in entry["reason"]


class CrashAfterRead(StreamFolder):
    """A worker that dies after reading its first batch, before folding it."""

    async def _fold_batch(self, stream: str, entries: Sequence[StreamEntry]) -> FoldCounts:
        raise RuntimeError("killed mid-batch")


def counted(server: RedisServer, log: OutcomeLogConfig) -> float:
    async def read() -> float:
        client = connect(server.url, connect_timeout_s=1.0, command_timeout_s=10.0)
        try:
            stats = await read_statistics(client, log.partition(EDGE.version, COHORT))
        finally:
            await client.aclose()
        return float(stats.histograms["post"].counts.sum())

    return run(read())


def test_a_worker_killed_mid_batch_loses_and_repeats_nothing(redis_server: RedisServer) -> None:
    log = OutcomeLogConfig(url=redis_server.url, statistics=False)  # the worker folds everything
    config = RecalibrationConfig(batch_size=100, claim_idle_s=0.0)
    stream = log.partition(EDGE.version, COHORT).stream

    async def scenario() -> tuple[FoldCounts, FoldCounts]:
        await ingest(log, routed(1000, labelled=False))
        client = connect(redis_server.url, connect_timeout_s=1.0, command_timeout_s=10.0)
        try:
            with pytest.raises(RuntimeError, match="killed"):
                await CrashAfterRead(client, log, config).fold_all(stream)
            again = await StreamFolder(client, log, config).fold_all(stream)
            once_more = await StreamFolder(client, log, config).fold_all(stream)
        finally:
            await client.aclose()
        return again, once_more

    again, once_more = run(scenario())

    assert (again.read, again.folded) == (1000, 1000)
    assert once_more.folded == 0
    assert counted(redis_server, log) == 1000


def test_another_worker_claims_a_dead_consumers_entries(redis_server: RedisServer) -> None:
    log = OutcomeLogConfig(url=redis_server.url, statistics=False)
    stream = log.partition(EDGE.version, COHORT).stream

    async def scenario() -> FoldCounts:
        await ingest(log, routed(300, labelled=False))
        client = connect(redis_server.url, connect_timeout_s=1.0, command_timeout_s=10.0)
        try:
            dead = RecalibrationConfig(batch_size=100, consumer="dead")
            with pytest.raises(RuntimeError):
                await CrashAfterRead(client, log, dead).fold_all(stream)
            heir = RecalibrationConfig(batch_size=100, consumer="heir", claim_idle_s=0.0)
            return await StreamFolder(client, log, heir).fold_all(stream)
        finally:
            await client.aclose()

    counts = run(scenario())

    assert counts.folded == 300
    assert counted(redis_server, log) == 300


def test_two_workers_share_a_stream_and_fold_each_entry_once(redis_server: RedisServer) -> None:
    log = OutcomeLogConfig(url=redis_server.url, statistics=False)
    stream = log.partition(EDGE.version, COHORT).stream

    async def scenario() -> list[FoldCounts]:
        await ingest(log, routed(2000, labelled=False))
        clients = [connect(redis_server.url, connect_timeout_s=1.0, command_timeout_s=10.0) for _ in range(2)]
        try:
            folders = [StreamFolder(client, log, RecalibrationConfig(batch_size=50, consumer=f"w{i}"))
                       for i, client in enumerate(clients)]
            return list(await asyncio.gather(*(folder.fold_all(stream) for folder in folders)))
        finally:
            for client in clients:
                await client.aclose()

    first, second = run(scenario())

    assert first.folded + second.folded == 2000
    assert first.folded > 0 and second.folded > 0
    assert counted(redis_server, log) == 2000


def test_entries_folded_at_ingest_are_acknowledged_but_not_counted_again(redis_server: RedisServer) -> None:
    log = OutcomeLogConfig(url=redis_server.url)

    async def scenario() -> FoldCounts:
        await ingest(log, routed(500))
        async with worker(redis_server, log) as (recal, _):
            return await recal.fold()

    counts = run(scenario())

    assert (counts.read, counts.acknowledged, counts.folded) == (500, 500, 0)
    assert counted(redis_server, log) == 500


def test_partitions_are_recalibrated_separately(redis_server: RedisServer) -> None:
    log = OutcomeLogConfig(url=redis_server.url)

    async def scenario() -> list[str]:
        await ingest(log, routed(3000, cohort="alpha", seed=1) + routed(300, cohort="beta", prefix="b", seed=2))
        async with worker(redis_server, log, min_labelled=200, target="rate") as (recal, _):
            return [result.reason for result in await recal.run_once()]

    reasons = run(scenario())

    assert reasons[0] == ""  # alpha: enough labels
    assert "fewer than the minimum 200" in reasons[1]  # beta: ~60 labels


def test_an_unknown_model_in_a_partition_is_taken_from_the_statistics(redis_server: RedisServer) -> None:
    log = OutcomeLogConfig(url=redis_server.url)

    async def scenario() -> Policy | None:
        await ingest(log, routed(3000))
        async with worker(redis_server, log, target="rate") as (recal, store):
            await recal.run_once()
            return await store.current(EDGE.version, COHORT)

    policy = run(scenario())

    assert policy is not None and policy.edge_model == ModelRef(EDGE.id, EDGE.version)
    assert 0.0 <= policy.thresholds.hybrid_low <= policy.thresholds.hybrid_high <= 1.0


def test_tiny_propensities_weigh_no_more_than_the_documented_floor() -> None:
    from cloud_service.outcomes.statistics import PROPENSITY_FLOOR, WEIGHT_SCALE, fold_spec
    from confroute.contract.enums import Label

    for propensity in (1e-300, 1e-12, 1e-7, PROPENSITY_FLOOR):
        spec = fold_spec({"probe_tbg": 0.5}, Label.CORRECT, propensity, "m")
        assert spec.weight == round(WEIGHT_SCALE / PROPENSITY_FLOOR)
        assert spec.weight_sq == round(WEIGHT_SCALE / PROPENSITY_FLOOR**2)


class _FailingFor:
    """The policy store, except that reading one cohort's policy fails like a bug would."""

    def __init__(self, store: RedisPolicyStore, cohort: str) -> None:
        self._store = store
        self._cohort = cohort

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def current(self, version: str, cohort: str, device_id: str = "") -> Policy | None:
        if cohort == self._cohort:
            raise ValueError("a corrupt partition")
        return await self._store.current(version, cohort, device_id)


def test_one_failing_partition_does_not_stop_the_pass_for_the_others(redis_server: RedisServer) -> None:
    from dataclasses import replace

    log = OutcomeLogConfig(url=redis_server.url)

    async def scenario() -> list[str]:
        poisoned = [replace(r, propensity=1e-300) for r in routed(300, cohort="aaa", prefix="p", seed=3)]
        await ingest(log, poisoned + routed(3000, cohort="alpha", seed=1))
        async with worker(redis_server, log, min_labelled=200, target="rate") as (recal, store):
            recal._store = _FailingFor(store, "aaa")  # type: ignore[assignment]
            return [result.reason for result in await recal.run_once()]

    assert run(scenario()) == [""]  # "aaa" failed and was logged; alpha was still recalibrated
