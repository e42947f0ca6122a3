"""The retrain worker against a real redis-server and a real (tiny) edge bundle: features extracted from held
texts by the device's own build, labels from the log, a probe published only when it beats the live one on
held-out queries, and refusals (too few labels) logged with their reason and provenance."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import subprocess
import sys
from collections.abc import Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
import redis

from cloud_service.calibration.policy_maker import Recalibration
from cloud_service.calibration.worker import with_probe_of
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.labels import LabelWriter, LateLabel
from cloud_service.outcomes.writer import OutcomeWriter
from cloud_service.policies import PolicyStoreConfig, RedisPolicyStore
from cloud_service.redis_client import connect
from cloud_service.retrain.artifact import RouterProbe
from cloud_service.retrain.config import RetrainConfig
from cloud_service.retrain.features import FeatureExtractor, FeatureStore, messages_of
from cloud_service.retrain.fit import transferred_threshold
from cloud_service.retrain.worker import RetrainResult, RetrainWorker
from confroute.bundle.store import load_bundle
from confroute.contract import ModelRef, Policy
from confroute.contract.enums import AnsweredBy, Decision, Label, LabelSource
from confroute.contract.outcome import OutcomeRecord
from confroute.engine import Engine
from confroute.routing import default_policy
from confroute.signing import PolicyVerifier, ProbeVerifier, SigningKey, TrustedKeys, generate_key_pair
from tests.cloud_service.redis_server import RedisServer
from tests.factories import routed

pytestmark = pytest.mark.timeout(300)
T = TypeVar("T")
COHORT = "beta"
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo")


def run(scenario: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(scenario)


def held_records(edge: ModelRef, n: int, seed: int = 0) -> list[OutcomeRecord]:
    """The service's records of ``n`` shadowed queries, texts in hand."""
    rng = random.Random(seed)
    [base] = routed(1, threshold=0.0, labelled=False)
    return [replace(base, query_id=f"q-{seed}-{i}", edge_model=edge, cohort=COHORT, shadow=True,
                    decision=Decision.LOCAL, answered_by=AnsweredBy.EDGE, propensity=1.0,
                    prompt_text="user: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))),
                    edge_draft_text="an answer", answer_text="the answer")
            for i in range(n)]


async def log_and_label(server: RedisServer, bundle: Path, records: list[OutcomeRecord],
                        cut: float | None = None) -> float:
    """Logs the records, extracts their features with the bundle, and labels them: edge right where the sum of
    the features is above ``cut`` (a rule a probe can learn; None: the batch's median), which it returns."""
    log = OutcomeLogConfig(url=server.url)
    client = connect(server.url, connect_timeout_s=1.0, command_timeout_s=10.0)
    engine = Engine(bundle)
    try:
        await OutcomeWriter(client, log).write([replace(r, prompt_text=None) for r in records])
        extractor = FeatureExtractor(engine, FeatureStore(client, log, max_features=1000))
        for record in records:
            await extractor(record)
        features = np.stack([extractor.tbg_features(messages_of(r.prompt_text or "")) for r in records])
        projected = features.sum(axis=1)
        cut = float(np.median(projected)) if cut is None else cut
        right = (projected > cut).astype(np.int8)
        labels = LabelWriter(client, log)
        for record, ok in zip(records, right, strict=True):
            label = Label.CORRECT if ok else Label.INCORRECT
            await labels.write(LateLabel(replace(record, prompt_text=None, edge_draft_text=None, answer_text=None),
                                         label, LabelSource.REFERENCE))
        return cut
    finally:
        engine.close()
        await client.aclose()


async def retrain(server: RedisServer, bundle: Path, config: RetrainConfig) -> list[RetrainResult]:
    client = connect(server.url, connect_timeout_s=1.0, command_timeout_s=10.0)
    try:
        return await RetrainWorker(client, OutcomeLogConfig(url=server.url), bundle, config).run_once()
    finally:
        await client.aclose()


def edge_of(bundle: Path) -> ModelRef:
    engine = Engine(bundle)
    try:
        return ModelRef(engine.manifest.model_id, engine.manifest.build_version)
    finally:
        engine.close()


def test_messages_read_back_from_the_held_prompt() -> None:
    assert messages_of("system: be brief\nuser: two lines\nof question") == [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "two lines\nof question"}]


def test_a_probe_that_beats_the_untrained_one_is_published_with_its_provenance(
        redis_server: RedisServer, tiny_bundle: Path) -> None:
    edge = edge_of(tiny_bundle)
    records = held_records(edge, 120)
    run(log_and_label(redis_server, tiny_bundle, records))

    [result] = run(retrain(redis_server, tiny_bundle, RetrainConfig(min_examples=60)))

    assert result.reason == "" and result.published is not None
    assert result.refit.live_auroc == pytest.approx(0.5)  # the bundle's untrained probe: one score for all
    assert result.refit.new_auroc is not None and result.refit.new_auroc > 0.8
    keys = OutcomeLogConfig(url=redis_server.url).partition(edge.version, COHORT)
    with redis.Redis.from_url(redis_server.url) as client:
        published = RouterProbe.from_json(client.get(keys.router_probe))
        [(_, provenance)] = client.xrange(keys.retrains)
    assert published.version == result.published.version
    assert published.provenance["examples"] == 120 and published.provenance["replaces"].startswith("probe-")
    assert provenance[b"published"].decode() == published.version and provenance[b"reason"] == b""
    assert run(retrain(redis_server, tiny_bundle, RetrainConfig(min_examples=60))) == []  # no new labels: no pass


def test_too_few_labels_are_refused_with_a_logged_reason(redis_server: RedisServer, tiny_bundle: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    edge = edge_of(tiny_bundle)
    run(log_and_label(redis_server, tiny_bundle, held_records(edge, 12)))

    with caplog.at_level(logging.WARNING, logger="cloud_service.retrain.worker"):
        [result] = run(retrain(redis_server, tiny_bundle, RetrainConfig(min_examples=60)))

    assert result.published is None and "fewer than min_examples=60" in result.reason
    assert "refused: 12 labelled queries" in caplog.text
    keys = OutcomeLogConfig(url=redis_server.url).partition(edge.version, COHORT)
    with redis.Redis.from_url(redis_server.url) as client:
        assert client.get(keys.router_probe) is None
        [(_, provenance)] = client.xrange(keys.retrains)
    assert provenance[b"published"] == b"" and b"min_examples" in provenance[b"reason"]


def test_a_probe_no_better_than_the_live_one_is_not_published(redis_server: RedisServer, tiny_bundle: Path) -> None:
    edge = edge_of(tiny_bundle)
    cut = run(log_and_label(redis_server, tiny_bundle, held_records(edge, 120)))
    [first] = run(retrain(redis_server, tiny_bundle, RetrainConfig(min_examples=60)))
    assert first.published is not None
    run(log_and_label(redis_server, tiny_bundle, held_records(edge, 10, seed=1), cut))  # new labels, same rule

    [second] = run(retrain(redis_server, tiny_bundle, RetrainConfig(min_examples=60, margin=0.2)))

    assert second.published is None and "not above the live probe's" in second.reason
    assert second.refit.live_auroc is not None and second.refit.live_auroc > 0.8  # the live one is the published


def test_the_command_publishes_once_and_prints_one_json_line_per_partition(
        redis_server: RedisServer, tiny_bundle: Path) -> None:
    edge = edge_of(tiny_bundle)
    run(log_and_label(redis_server, tiny_bundle, held_records(edge, 80)))

    done = subprocess.run([sys.executable, "-m", "cloud_service.cli", "retrain", "--once", "--edge-bundle",
                           str(tiny_bundle), "--redis-url", redis_server.url, "--min-examples", "60"],
                          capture_output=True, text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stderr
    [line] = [json.loads(text) for text in done.stdout.splitlines()]
    assert (line["status"], line["cohort"], line["examples"]) == ("published", COHORT, 80)
    assert line["probe"].startswith("probe-")


async def retrain_and_publish(server: RedisServer, bundle: Path, signer: SigningKey,
                              config: RetrainConfig) -> tuple[list[RetrainResult], Policy | None]:
    client = connect(server.url, connect_timeout_s=1.0, command_timeout_s=10.0)
    store = RedisPolicyStore(PolicyStoreConfig(url=server.url), signer=signer)
    try:
        worker = RetrainWorker(client, OutcomeLogConfig(url=server.url), bundle, config, signer=signer,
                               policies=store)
        results = await worker.run_once()
        return results, await store.current(edge_of(bundle).version, COHORT)
    finally:
        await store.close()
        await client.aclose()


def test_a_published_probe_is_signed_and_the_next_policy_names_and_carries_it(
        redis_server: RedisServer, tiny_bundle: Path, tmp_path: Path) -> None:
    signer = generate_key_pair(tmp_path / "fleet")
    trusted = TrustedKeys.of([signer.private_key.public_key()])
    run(log_and_label(redis_server, tiny_bundle, held_records(edge_of(tiny_bundle), 120)))

    [result], policy = run(retrain_and_publish(redis_server, tiny_bundle, signer,
                                               RetrainConfig(min_examples=60, canary_share=0.0)))

    assert result.published is not None and policy is not None
    ProbeVerifier(trusted)(result.published)
    PolicyVerifier(trusted)(policy)
    assert policy.probe_version == result.published.version and policy.probe == result.published
    assert policy.edge_model.version == load_bundle(tiny_bundle).build_version  # the build, not the probe
    # The live probe was the bundle's untrained one (every held-out query alike): the threshold stays.
    assert policy.thresholds == default_policy(policy.edge_model, COHORT).thresholds

    # The next recalibration keeps the probe and the pre threshold published with it.
    recalibrated = Recalibration(replace(policy, policy_version="next", probe_version="", probe=None,
                                         thresholds=replace(policy.thresholds, pre=0.1, post=0.4)))
    kept = with_probe_of(policy, recalibrated).policy
    assert kept is not None and kept.probe == policy.probe and kept.thresholds.pre == policy.thresholds.pre
    assert kept.thresholds.post == 0.4


def test_a_new_probes_threshold_keeps_the_live_operating_point_on_the_held_out_queries() -> None:
    live = np.linspace(0.0, 1.0, 101)  # the current threshold 0.3 escalates 30% of them
    new = np.linspace(0.5, 0.9, 101) ** 2  # another distribution of scores
    threshold = transferred_threshold(live, new, 0.3)
    assert np.mean(new < threshold) == pytest.approx(0.3, abs=0.01)
    assert transferred_threshold(np.full(50, 0.5), new, 0.5) == 0.5  # an untrained live probe: no point to carry
    assert transferred_threshold(live, new, 0.0) == 0.0  # escalating nothing stays escalating nothing
