"""The whole loop on loopback: an edge agent escalating through the real cloud service, tritonserver
(serving a tiny bundle) and an embedded Redis-compatible server, with its outcomes uploaded into Redis."""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from confroute.contract import ModelRef, RoutingMode, Thresholds
from confroute.engine import SamplingParams
from confroute.modelkit.export import ExportOptions, export_bundle
from confroute.modelkit.tiny import tiny_source
from confroute.paths import cache_dir
from confroute.routing import default_policy
from demo import learning
from demo.stack import TRITON_MODEL, Stack, StackConfig, cloud_stack
from edge_agent.app import running_agent
from edge_agent.cloud import CloudConfig, EscalationClient, PolicyKeeper
from edge_agent.cloud.channel import call_metadata
from edge_agent.config import AgentConfig
from edge_agent.core import AgentIdentity, EdgeAgent
from edge_agent.model import EdgeModel
from edge_agent.outbox import GrpcOutcomeSink, OutcomeQueue, QueueConfig, Uploader

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not os.environ.get("CONFROUTE_TRITON_PYTHON"), reason="set CONFROUTE_TRITON_PYTHON (make test does)")]
QUESTION = [{"role": "user", "content": "what is two plus two"}]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path]]:
    root = tmp_path_factory.mktemp("stack")
    cloud_bundle = root / "cloud-bundle"
    export_bundle(tiny_source("qwen2", seed=1), cloud_bundle, ExportOptions(), lambda _m: None)
    work = root / "work"
    work.mkdir()
    with cloud_stack(StackConfig(cache_dir(os.environ), work, cloud_bundle, None, None, TRITON_MODEL,
                                 startup_timeout_s=120.0, devices=(("it-device", "it"),),
                                 text_ttl_s=60)) as running:
        yield running, root
    shutil.rmtree(root, ignore_errors=True)


def _policy(model: EdgeModel, post: float) -> object:
    base = default_policy(ModelRef(model.model_id, model.version), "it")
    return dataclasses.replace(base, policy_version=f"it-{post}", mode=RoutingMode.POST, shadow_rate=0.0,
                               thresholds=Thresholds(pre=0.5, post=post, hybrid_low=0.2, hybrid_high=0.8),
                               issued_at=datetime.now(timezone.utc))


def _stream_length(url: str, model: EdgeModel) -> int:
    """Entries in the outcome stream of this device's (edge model build, cohort), keyed as the log keys it."""
    import redis

    from cloud_service.outcomes.config import OutcomeLogConfig

    stream = OutcomeLogConfig(url=url).partition(model.version, "it").stream
    client = redis.Redis.from_url(url)
    try:
        return int(client.xlen(stream))
    finally:
        client.close()


def test_escalations_go_through_triton_and_every_outcome_lands_in_redis(
        stack: tuple[Stack, Path], tiny_bundle: Path, tmp_path: Path) -> None:
    running, _ = stack
    model = EdgeModel(tiny_bundle)
    keeper = PolicyKeeper(ModelRef(model.model_id, model.version), "it")
    config = CloudConfig(target=running.cloud_target, deadline_s=60.0, token=running.tokens["it-device"])
    before = _stream_length(running.redis_url, model)
    with OutcomeQueue(QueueConfig(tmp_path / "outbox.db")) as queue, EscalationClient(config) as client:
        agent = EdgeAgent(model, keeper, queue, AgentIdentity("it-device", "it"), escalator=client,
                          rng=random.Random(1))
        params = SamplingParams(max_new_tokens=4)
        sides = []
        for post in (1.0, 0.0, 1.0):
            assert keeper.offer(_policy(model, post)).applied  # type: ignore[arg-type]
            sides.append(agent.answer(QUESTION, params).side)
        agent.close()
        assert sides == ["cloud", "edge", "cloud"]
        import grpc

        with grpc.insecure_channel(running.cloud_target) as channel:
            report = Uploader(queue, GrpcOutcomeSink(channel, metadata=call_metadata(config))).run_once()
        assert queue.stats().queued == 0, report
    # the device's three outcomes, plus the service's own record of each of the two escalations (written
    # in the background: its log flushes a few tens of milliseconds after answering)
    deadline = time.monotonic() + 10.0
    while _stream_length(running.redis_url, model) - before < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _stream_length(running.redis_url, model) - before == 5


def test_one_learning_round_publishes_a_policy_that_reaches_the_agent(
        stack: tuple[Stack, Path], tiny_bundle: Path, tmp_path: Path) -> None:
    """The demo's round on the real stack: the operator's starting policy, feedback labels through the agent,
    the judge, retrain and recalibrate commands, and the new policy pushed to the agent by its watch."""
    running, _ = stack
    config = AgentConfig(
        bundle=tiny_bundle, device="cpu", threads=1, device_id="it-device", cohort="it", state_dir=tmp_path / "edge",
        cloud=CloudConfig(target=running.cloud_target, deadline_s=60.0, token=running.tokens["it-device"]),
        privacy_patterns=(), never_escalate=False, http_host="127.0.0.1", http_port=0, log_format="text",
        policy_keys=(running.policy_key,))
    with running_agent(config) as agent:
        round_config = learning.RoundConfig(running.redis_url, running.triton_url, TRITON_MODEL, running.signing_key,
                                            tiny_bundle, agent.policy.edge_model, "it")
        # the tiny model's answers keep every query local (post threshold 0): ratings of the edge's answers are
        # the labels (a rating of the cloud's answer is none)
        keep_local = dataclasses.replace(agent.policy, mode=RoutingMode.POST,
                                         thresholds=Thresholds(pre=0.0, post=0.0, hybrid_low=0.0, hybrid_high=0.0))
        start = learning.publish_start_policy(round_config, keep_local)
        assert learning.wait_for_policy(agent, lambda p: p.policy_version == start)
        # half the answers match their reference ("" is in every answer), half cannot
        questions = [{"question": f"what is {i} plus {i}", "gold": "" if i % 2 else "no such answer"} for i in range(8)]
        answers = [agent.answer([{"role": "user", "content": q["question"]}], SamplingParams(max_new_tokens=4))
                   for q in questions]

        assert learning.learning_round(round_config, agent, questions, answers)
        assert agent.policy.policy_version > start and agent.policy.calibration.x  # recalibrated: a fitted map
