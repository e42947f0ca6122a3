"""The outcome log, its statistics, late labels and the recalibration worker on a 3-node Redis Cluster.

Every script touches one partition's keys only (one hash tag), so a cluster client runs them without
CROSSSLOT errors, and the partitions spread over the nodes. The policy store runs on a single node
here: its own client is not cluster-aware (its keys carry the same hash tags).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from redis.asyncio.cluster import RedisCluster as ClusterClient
from redis.crc import key_slot

from cloud_service.calibration import RecalibrationConfig, RecalibrationWorker
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.labels import LabelOutcome, LabelWriter, LateLabel
from cloud_service.outcomes.writer import OutcomeWriter
from cloud_service.policies import PolicyStoreConfig, RedisPolicyStore
from confroute.contract.enums import Label, LabelSource
from tests.cloud_service.calibration.traffic import EDGE, routed
from tests.cloud_service.redis_cluster import RedisCluster, RedisClusterMissing
from tests.cloud_service.redis_server import RedisServer

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


async def loop_on_cluster(cluster: RedisCluster, policy_url: str) -> tuple[list[str], list[LabelOutcome]]:
    client = ClusterClient.from_url(cluster.url)
    log = OutcomeLogConfig(url=cluster.url)
    store = RedisPolicyStore(PolicyStoreConfig(url=policy_url))
    try:
        writer = OutcomeWriter(client, log)  # type: ignore[arg-type]  # the cluster client speaks the same API
        records = [r for i, cohort in enumerate(COHORTS) for r in routed(1500, cohort=cohort, seed=i, prefix=cohort)]
        for i in range(0, len(records), 1000):
            await writer.write(records[i : i + 1000])
        [unlabelled] = routed(1, labelled=False, threshold=0.0, prefix="late", cohort="alpha")
        await writer.write([unlabelled])
        labels = LabelWriter(client, log)  # type: ignore[arg-type]
        late = LateLabel(unlabelled, Label.CORRECT, LabelSource.CLOUD_JUDGE)
        written = [await labels.write(late), await labels.write(late)]
        worker = RecalibrationWorker(client, log, store, RecalibrationConfig(target="rate"))  # type: ignore[arg-type]
        results = await worker.run_once()
        return [result.reason for result in results], written
    finally:
        await store.close()
        await client.aclose()


def test_ingest_labels_and_recalibration_run_on_a_redis_cluster(
    redis_cluster: RedisCluster, redis_server: RedisServer
) -> None:
    reasons, written = asyncio.run(loop_on_cluster(redis_cluster, redis_server.url))

    assert reasons == [""] * len(COHORTS)  # every partition published a policy
    assert written == [LabelOutcome.MOVED, LabelOutcome.ALREADY_LABELLED]
    log = OutcomeLogConfig(url=redis_cluster.url)
    slots = {key_slot(log.partition(EDGE.version, cohort).stream.encode()) for cohort in COHORTS}
    assert len(slots) == len(COHORTS)
