"""The judge worker against a real tritonserver and redis-server: labels written once, failures unlabelled."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace

import pytest
import redis

from cloud_service.backends.triton import TritonBackend, TritonBackendConfig
from cloud_service.calibration.statistics_reader import PartitionStatistics, read_statistics
from cloud_service.inference import TritonServerProcess
from cloud_service.judge import Judge, JudgeConfig, JudgeWorker
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.redis_client import connect
from cloud_service.outcomes.writer import OutcomeWriter
from confroute.contract.enums import AnsweredBy, Decision
from confroute.contract.outcome import OutcomeRecord
from tests.cloud_service.calibration.traffic import EDGE, routed
from tests.cloud_service.redis_server import RedisServer

pytestmark = pytest.mark.timeout(120)


def shadowed(query_id: str) -> tuple[OutcomeRecord, OutcomeRecord]:
    """The device's and the service's record of one shadow query, texts retained."""
    [base] = routed(1, threshold=0.0, labelled=False)
    device = replace(base, query_id=query_id, shadow=True, decision=Decision.LOCAL, answered_by=AnsweredBy.EDGE,
                     propensity=0.2, prompt_text="user: What is 2 + 2?", answer_text="2 + 2 = 4")
    return device, replace(device, answer_text="4", cloud_model=EDGE)


async def judge_pass(server: RedisServer, triton_url: str, model: str) -> Counter[str]:
    log = OutcomeLogConfig(url=server.url, retain_text=True)
    client = connect(server.url, connect_timeout_s=1.0, command_timeout_s=10.0)
    backend = await TritonBackend.create(TritonBackendConfig(url=triton_url, model=model))
    try:
        device, service = shadowed("q-1")
        writer = OutcomeWriter(client, log)
        await writer.write([device])
        await writer.write([service], origin="service")
        worker = JudgeWorker(client, log, Judge(backend, JudgeConfig()), JudgeConfig())
        outcomes = await worker.run_once()
        outcomes.update(await worker.run_once())  # nothing left: each entry is judged once
        return outcomes
    finally:
        await backend.close()
        await client.aclose()


def stats_and_labels(server: RedisServer) -> tuple[dict[str, float], list[dict[str, str]]]:
    """Records (N) and weights (W) per label of the post-score statistics, and the labels stream."""
    keys = OutcomeLogConfig(url=server.url).partition(EDGE.version, "beta")

    async def read() -> PartitionStatistics:
        client = connect(server.url, connect_timeout_s=1.0, command_timeout_s=5.0)
        try:
            return await read_statistics(client, keys)
        finally:
            await client.aclose()

    table = asyncio.run(read()).totals["post"]
    stats = {f"{row}:{label}": float(table[i, j]) for i, row in enumerate(("N", "W"))
             for j, label in enumerate(("c", "w", "u"))}
    with redis.Redis.from_url(server.url, decode_responses=True) as client:
        return stats, [fields for _, fields in client.xrange(keys.labels)]


def test_a_judged_shadow_query_is_labelled_once(judge_triton: TritonServerProcess, redis_server: RedisServer) -> None:
    outcomes = asyncio.run(judge_pass(redis_server, judge_triton.endpoints.grpc_url, "verdict"))

    assert outcomes["labelled"] == 1
    stats, labels = stats_and_labels(redis_server)
    assert [(entry["qid"], entry["label"], entry["source"]) for entry in labels] == [("q-1", "c", "cloud_judge")]
    assert stats["N:c"] == 1.0 and stats["N:u"] == 0.0
    assert stats["W:c"] == pytest.approx(5.0) and stats["W:u"] == 0.0  # 1 / propensity 0.2, moved exactly


def test_an_unparseable_verdict_leaves_the_query_unlabelled(
    judge_triton: TritonServerProcess, redis_server: RedisServer
) -> None:
    # The echo model repeats the prompt, whose instructions show several example verdicts: ambiguous.
    outcomes = asyncio.run(judge_pass(redis_server, judge_triton.endpoints.grpc_url, "echo"))

    assert outcomes["unlabelled"] == 1 and outcomes["labelled"] == 0
    stats, labels = stats_and_labels(redis_server)
    assert labels == []
    assert stats["N:u"] == 1.0 and stats["N:c"] == 0.0


def test_an_unreachable_judge_leaves_the_query_unlabelled(redis_server: RedisServer) -> None:
    from tests.cloud_service.redis_server import free_port

    outcomes = asyncio.run(judge_pass(redis_server, f"127.0.0.1:{free_port()}", "verdict"))

    assert outcomes["unlabelled"] == 1
    assert stats_and_labels(redis_server)[1] == []
