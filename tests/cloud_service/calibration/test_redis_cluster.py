"""The outcome log, its statistics, late labels, the recalibration worker and the policy store on a 3-node
Redis Cluster, every client built by ``connect("redis+cluster://...")`` as the service builds them.

Every script touches one partition's (or one policy key's) keys only (one hash tag), so the cluster client
runs them without CROSSSLOT errors, and the partitions spread over the nodes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import pytest
from redis.asyncio.cluster import RedisCluster as ClusterClient
from redis.crc import key_slot

from cloud_service.calibration import RecalibrationConfig, RecalibrationWorker
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.labels import LabelOutcome, LabelWriter, LateLabel
from cloud_service.outcomes.redis_log import RedisOutcomeLog
from cloud_service.outcomes.writer import OutcomeWriter
from cloud_service.policies import PolicyStoreConfig, RedisPolicyStore
from cloud_service.redis_client import connect
from confroute.contract.enums import Label, LabelSource
from confroute.contract.policy import Policy
from tests.cloud_service.redis_cluster import RedisCluster, RedisClusterMissing
from tests.factories import EDGE, routed

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
COHORTS = ("alpha", "beta", "gamma", "delta")


@pytest.fixture
def redis_cluster() -> Iterator[RedisCluster]:
    try:
        cluster = RedisCluster()
    except RedisClusterMissing as exc:
        pytest.skip(str(exc))
    with cluster:
        yield cluster


def cluster_url(cluster: RedisCluster) -> str:
    """The operator's form: every node as a startup node (one reachable would be enough)."""
    return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in cluster.ports)


@dataclass
class LoopResult:
    reasons: list[str]
    labels: list[LabelOutcome]
    published: dict[str, Policy | None]
    watched: Policy
    republished: Policy | None
    history: list[str]


async def loop_on_cluster(url: str) -> LoopResult:
    client = connect(url, connect_timeout_s=1.0, command_timeout_s=5.0)
    log = OutcomeLogConfig(url=url)
    store = RedisPolicyStore(PolicyStoreConfig(url=url, watch_block_s=0.2))
    try:
        assert isinstance(client, ClusterClient)
        writer = OutcomeWriter(client, log)
        records = [r for i, cohort in enumerate(COHORTS) for r in routed(1500, cohort=cohort, seed=i, prefix=cohort)]
        for i in range(0, len(records), 1000):
            await writer.write(records[i : i + 1000])
        [unlabelled] = routed(1, labelled=False, threshold=0.0, prefix="late", cohort="alpha")
        async with RedisOutcomeLog(log) as outcome_log:  # the service's log: its own client, from the URL
            stored = await outcome_log.store([unlabelled])
        assert stored.stored == (unlabelled.query_id,)
        labels = LabelWriter(client, log)
        late = LateLabel(unlabelled, Label.CORRECT, LabelSource.CLOUD_JUDGE)
        written = [await labels.write(late), await labels.write(late)]
        worker = RecalibrationWorker(client, log, store, RecalibrationConfig(target="rate"))
        results = await worker.run_once()
        published = {cohort: await store.current(EDGE.version, cohort) for cohort in COHORTS}
        watched, republished = await publish_while_watching(store, published["beta"])
        history = [entry.action for entry in await store.history(EDGE.version, "beta")]
        return LoopResult([r.reason for r in results], written, published, watched, republished, history)
    finally:
        await store.close()
        await client.aclose()


async def publish_while_watching(store: RedisPolicyStore, current: Policy | None) -> tuple[Policy, Policy | None]:
    """A watcher that knows the worker's policy sees the next one published through the store (XREAD BLOCK
    on the cluster node that holds the key), and the store reads it back."""
    assert current is not None
    updates = store.watch(EDGE.version, "beta", current.policy_version)
    assert isinstance(updates, AsyncGenerator)
    try:
        pending = asyncio.ensure_future(anext(updates))
        await asyncio.sleep(0.3)  # the follower blocks on XREAD before the publish
        assert not pending.done()
        await store.publish(replace(current, policy_version="manual-1", issued_at=datetime.now(timezone.utc)))
        watched = await asyncio.wait_for(pending, 5.0)
    finally:
        await updates.aclose()
    return watched, await store.current(EDGE.version, "beta")


def test_ingest_labels_recalibration_and_policies_run_on_a_redis_cluster(redis_cluster: RedisCluster) -> None:
    url = cluster_url(redis_cluster)
    result = asyncio.run(asyncio.wait_for(loop_on_cluster(url), 120))

    assert result.reasons == [""] * len(COHORTS)  # every partition published a policy
    assert all(p is not None and p.cohort == cohort for cohort, p in result.published.items())
    assert result.labels == [LabelOutcome.MOVED, LabelOutcome.ALREADY_LABELLED]
    assert result.watched.policy_version == "manual-1"
    assert result.republished is not None and result.republished.policy_version == "manual-1"
    assert len(result.history) == 2  # the worker's publish, then the manual one
    log, policies = OutcomeLogConfig(url=url), PolicyStoreConfig(url=url)
    partition_slots = {key_slot(log.partition(EDGE.version, cohort).stream.encode()) for cohort in COHORTS}
    policy_slots = {key_slot(policies.stream_key(EDGE.version, cohort).encode()) for cohort in COHORTS}
    assert len(partition_slots) == len(policy_slots) == len(COHORTS)
