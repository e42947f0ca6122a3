"""The worker judges a running canary from the outcomes each arm routed: promote, roll back, or wait."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import numpy as np
import pytest
import redis

from cloud_service.calibration import RecalibrationConfig, RecalibrationWorker
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.writer import OutcomeWriter
from cloud_service.policies import PolicyStoreConfig, RedisPolicyStore
from cloud_service.policies.operations import publish_candidate
from cloud_service.redis_client import connect
from confroute.contract.enums import Label, LabelSource
from confroute.contract.outcome import OutcomeRecord
from tests.cloud_service.calibration.test_recalibration_worker import first_policy
from tests.cloud_service.redis_server import RedisServer
from tests.factories import COHORT, EDGE, routed

pytestmark = pytest.mark.timeout(120)


def arm(n: int, version: str, quality: float, seed: int) -> list[OutcomeRecord]:
    """``n`` escalated, gold-labelled records routed by policy ``version``; the edge right with ``quality``."""
    right = np.random.default_rng(seed).uniform(size=n) < quality
    return [replace(record, policy_version=version, label=Label.CORRECT if ok else Label.INCORRECT,
                    label_source=LabelSource.REFERENCE)
            for record, ok in zip(routed(n, threshold=1.0, prefix=version, seed=seed), right, strict=True)]


async def canary_pass(server: RedisServer, control_quality: float, canary_quality: float, n: int) -> str:
    """Publishes a control and a 50% canary, logs ``n`` outcomes per arm, runs the worker once; returns the
    verdict it recorded."""
    log = OutcomeLogConfig(url=server.url)
    client = connect(server.url, connect_timeout_s=1.0, command_timeout_s=10.0)
    store = RedisPolicyStore(PolicyStoreConfig(url=server.url))
    try:
        control = first_policy(0.2)
        await store.publish(control)
        published = await publish_candidate(store, replace(control, policy_version="20260102T000000Z",
                                                           thresholds=first_policy(0.3).thresholds), 0.5)
        assert published.role == "canary"
        writer = OutcomeWriter(client, log)
        await writer.write(arm(n, control.policy_version, control_quality, seed=1))
        await writer.write(arm(n, published.version, canary_quality, seed=2))
        config = RecalibrationConfig(target="rate", canary_share=0.5, min_labelled=50, min_effective_size=20)
        await RecalibrationWorker(client, log, store, config).run_once()
    finally:
        await store.close()
        await client.aclose()
    with redis.Redis.from_url(server.url, decode_responses=True) as reader:
        [(_, entry)] = reader.xrange(log.partition(EDGE.version, COHORT).recalibrations)
    provenance = json.loads(entry["provenance"])
    return str(provenance["canary"]["verdict"])


def test_a_canary_as_good_as_its_control_is_promoted(redis_server: RedisServer) -> None:
    assert asyncio.run(canary_pass(redis_server, 0.9, 0.92, n=2500)) == "promote"


def test_a_worse_canary_is_rolled_back(redis_server: RedisServer) -> None:
    assert asyncio.run(canary_pass(redis_server, 0.85, 0.6, n=400)) == "rollback"


def test_a_canary_with_too_few_labels_keeps_running_and_no_new_candidate_is_made(redis_server: RedisServer) -> None:
    assert asyncio.run(canary_pass(redis_server, 0.85, 0.85, n=50)) == "wait"
