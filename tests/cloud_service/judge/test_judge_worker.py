"""The judge worker against a real tritonserver and redis-server: shadow and escalated queries labelled once,
failures unlabelled."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import replace

import pytest
import redis

from cloud_service.backends.triton import TritonBackend, TritonBackendConfig
from cloud_service.calibration.statistics_reader import PartitionStatistics, read_statistics
from cloud_service.inference import TritonServerProcess
from cloud_service.judge import Judge, JudgeConfig, JudgeWorker
from cloud_service.ops.stream_lag import group_lag, to_judge_stream
from cloud_service.outcomes import RedisOutcomeLog
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.redis_client import connect
from confroute.contract.enums import AnsweredBy, Decision, Label, RoutingMode
from confroute.contract.outcome import OutcomeRecord
from tests.cloud_service.redis_server import RedisServer
from tests.cloud_service.text_scan import text_bytes
from tests.factories import EDGE, routed

pytestmark = pytest.mark.timeout(120)
QUESTION = "user: What is 2 + 2?"


def shadowed(query_id: str) -> tuple[OutcomeRecord, OutcomeRecord]:
    """The device's and the service's record of one shadow query; the service's carries the texts (the
    question, the edge answer it shadowed as the draft, the cloud's answer)."""
    [base] = routed(1, threshold=0.0, labelled=False)
    device = replace(base, query_id=query_id, shadow=True, decision=Decision.LOCAL, answered_by=AnsweredBy.EDGE,
                     propensity=0.2)
    return device, replace(device, prompt_text=QUESTION, edge_draft_text="2 + 2 = 4", answer_text="4",
                           cloud_model=EDGE)


def escalated(query_id: str, draft: str | None = "2 + 2 = 4") -> tuple[OutcomeRecord, OutcomeRecord]:
    """The device's and the service's record of one post-mode escalation: the service's carries the texts,
    the edge draft among them (``None``: escalated before decoding)."""
    [base] = routed(1, threshold=0.0, labelled=False)
    device = replace(base, query_id=query_id, mode=RoutingMode.POST, shadow=False, propensity=1.0,
                     decision=Decision.ESCALATED, answered_by=AnsweredBy.CLOUD, cloud_model=EDGE)
    return device, replace(device, prompt_text=QUESTION, answer_text="4", edge_draft_text=draft)


async def log_pairs(server: RedisServer, pairs: list[tuple[OutcomeRecord, OutcomeRecord]],
                    text_ttl_s: int = 3600) -> None:
    """Both records of each query as the service logs them: the device's uploaded, the service's recorded."""
    log = OutcomeLogConfig(url=server.url, retain_text=True, text_ttl_s=text_ttl_s)
    async with RedisOutcomeLog(log) as outcome_log:
        await outcome_log.store([device for device, _ in pairs])
        for _, service in pairs:
            outcome_log.record(service)


async def judge_pass(server: RedisServer, triton_url: str, model: str,
                     pair: tuple[OutcomeRecord, OutcomeRecord] | None = None,
                     after: list[OutcomeRecord] | None = None, log_first: bool = True) -> Counter[str]:
    log = OutcomeLogConfig(url=server.url, retain_text=True)
    if log_first:
        await log_pairs(server, [pair or shadowed("q-1")])
    client = connect(server.url, connect_timeout_s=1.0, command_timeout_s=10.0)
    backend = await TritonBackend.create(TritonBackendConfig(url=triton_url, model=model))

    async def seen(record: OutcomeRecord) -> None:
        if after is not None:
            after.append(record)

    try:
        worker = JudgeWorker(client, log, Judge(backend, JudgeConfig()), JudgeConfig(), after=[seen])
        outcomes = await worker.run_once()
        outcomes.update(await worker.run_once())  # nothing left: each query is judged once
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


def test_a_judged_shadow_query_is_labelled_once_and_its_texts_are_gone_at_once(
    judge_triton: TritonServerProcess, redis_server: RedisServer
) -> None:
    seen: list[OutcomeRecord] = []
    outcomes = asyncio.run(judge_pass(redis_server, judge_triton.endpoints.grpc_url, "verdict", after=seen))

    assert outcomes["labelled"] == 1
    stats, labels = stats_and_labels(redis_server)
    assert [(entry["qid"], entry["label"], entry["source"]) for entry in labels] == [("q-1", "c", "cloud_judge")]
    assert stats["N:c"] == 1.0 and stats["N:u"] == 0.0
    assert stats["W:c"] == pytest.approx(5.0) and stats["W:u"] == 0.0  # 1 / propensity 0.2, moved exactly
    assert [(r.query_id, r.prompt_text) for r in seen] == [("q-1", QUESTION)]  # the feature hook had the texts
    assert text_bytes(redis_server, (QUESTION, "2 + 2 = 4")) == 0  # judged: deleted, no wait for the TTL


def test_texts_the_judge_never_reaches_are_gone_after_their_ttl(
    judge_triton: TritonServerProcess, redis_server: RedisServer
) -> None:
    asyncio.run(log_pairs(redis_server, [shadowed("q-1"), escalated("q-2")], text_ttl_s=1))
    assert text_bytes(redis_server, (QUESTION,)) == 2 * len(QUESTION)  # held, each once

    deadline = time.monotonic() + 10.0
    while text_bytes(redis_server, (QUESTION, "2 + 2 = 4")) and time.monotonic() < deadline:
        time.sleep(0.2)

    assert text_bytes(redis_server, (QUESTION, "2 + 2 = 4")) == 0
    outcomes = asyncio.run(judge_pass(redis_server, judge_triton.endpoints.grpc_url, "verdict", log_first=False))
    assert outcomes["text_expired"] == 2 and outcomes["labelled"] == 0


def test_an_escalated_query_with_an_edge_draft_is_labelled_once(
    judge_triton: TritonServerProcess, redis_server: RedisServer
) -> None:
    pair = escalated("q-1")
    outcomes = asyncio.run(judge_pass(redis_server, judge_triton.endpoints.grpc_url, "verdict", pair))

    assert outcomes["labelled"] == 1
    stats, labels = stats_and_labels(redis_server)
    assert [(entry["qid"], entry["label"], entry["source"]) for entry in labels] == [("q-1", "c", "cloud_judge")]
    assert stats["N:c"] == 1.0 and stats["N:u"] == 0.0  # the device record's weight moved, once


def test_an_escalation_decided_before_decoding_is_not_judged(
    judge_triton: TritonServerProcess, redis_server: RedisServer
) -> None:
    pair = escalated("q-1", draft=None)
    outcomes = asyncio.run(judge_pass(redis_server, judge_triton.endpoints.grpc_url, "verdict", pair))

    assert sum(outcomes.values()) == 0 and outcomes["labelled"] == 0  # no texts held: nothing queued
    assert stats_and_labels(redis_server)[1] == []
    assert text_bytes(redis_server, (QUESTION, "2 + 2 = 4")) == 0


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


async def judge_then_recalibrate(server: RedisServer, triton_url: str) -> tuple[Counter[str], str, int]:
    """Gold labels on escalations, judge labels on shadow queries, then one recalibration that needs more
    labels than the gold ones alone."""
    from cloud_service.calibration import RecalibrationConfig, RecalibrationWorker
    from cloud_service.policies import PolicyStoreConfig, RedisPolicyStore

    log = OutcomeLogConfig(url=server.url, retain_text=True)
    client = connect(server.url, connect_timeout_s=1.0, command_timeout_s=10.0)
    backend = await TritonBackend.create(TritonBackendConfig(url=triton_url, model="verdict"))
    store = RedisPolicyStore(PolicyStoreConfig(url=server.url))
    try:
        escalations = routed(400, threshold=0.5, shadow_rate=0.0)  # escalated below 0.5, with gold labels
        gold = sum(record.label is not Label.UNKNOWN for record in escalations)
        async with RedisOutcomeLog(log) as outcome_log:
            await outcome_log.store(escalations)
        await log_pairs(server, [shadowed(f"s-{i}") for i in range(60)])
        config = JudgeConfig(max_in_flight=8, calls_per_second=1000.0)
        outcomes = await JudgeWorker(client, log, Judge(backend, config), config).run_once()
        recalibration = RecalibrationConfig(target="rate", target_rate=0.3, min_labelled=gold + 30,
                                            min_effective_size=50)
        [result] = await RecalibrationWorker(client, log, store, recalibration).run_once()
        return outcomes, result.reason, gold
    finally:
        await store.close()
        await backend.close()
        await client.aclose()


def test_judge_labels_feed_the_next_recalibration(judge_triton: TritonServerProcess, redis_server: RedisServer) -> None:
    outcomes, refusal, gold = asyncio.run(judge_then_recalibrate(redis_server, judge_triton.endpoints.grpc_url))

    assert outcomes["labelled"] == 60
    assert refusal == ""  # published: the gold labels alone were 30 short of the minimum
    stats, labels = stats_and_labels(redis_server)
    assert len(labels) == 60
    assert stats["N:c"] + stats["N:w"] == gold + 60


def test_a_held_query_is_queued_once_even_when_the_first_write_meets_noscript(redis_server: RedisServer) -> None:
    asyncio.run(log_pairs(redis_server, [shadowed("q-1")]))  # a fresh server: the first EVALSHA answers NOSCRIPT

    keys = OutcomeLogConfig(url=redis_server.url).partition(EDGE.version, "beta")
    with redis.Redis.from_url(redis_server.url) as client:
        assert client.xlen(keys.to_judge) == 1
        assert client.ttl(keys.held("q-1")) > 0


def test_the_judge_s_lag_counts_the_texts_held_pending_judgement(redis_server: RedisServer) -> None:
    asyncio.run(log_pairs(redis_server, [shadowed("q-1"), shadowed("q-2")]))

    async def judge_lag() -> tuple[float, float]:
        client = connect(redis_server.url, connect_timeout_s=1.0, command_timeout_s=10.0)
        try:
            log = OutcomeLogConfig(url=redis_server.url)
            held = await group_lag(client, log, "judge", to_judge_stream)
            outcomes = await group_lag(client, log, "judge")
        finally:
            await client.aclose()
        return held.lag, outcomes.lag

    held, outcomes = asyncio.run(judge_lag())
    assert held == 2.0  # two texts held: what the judge worker exports as confroute_outcome_stream_lag{group="judge"}
    assert outcomes > held  # the outcome streams (four records) are not what the judge reads
