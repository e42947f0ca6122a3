"""Labels without kept text, end to end (real Redis, the real service with identity on, tritonserver's echo
model as the cloud model and a fixed-verdict judge model, two edge agents assembled by ``edge_agent.app``).

User feedback: a device's API takes a rating of an answer it gave, and the label reaches the cloud's
outcome log as the query's ``user_feedback`` label, once.

* ``POST /v1/feedback`` with the id of the ``X-Confroute-Query-Id`` header -> the label is in the
  partition's ``labels`` stream with source ``user_feedback``, and the query's ``labelled`` marker is set;
* another device's query id is unknown to this device (404); a second rating is refused (409);
* the cloud refuses a late label for another device's query and one from a source a device may not assert.

Judging at escalation time: with ``--retain-text``, shadowed queries' texts are held by the service, the
judge labels them, and then no byte of their text is left in Redis.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis

from cloud_service.backends.triton import TritonBackend, TritonBackendConfig
from cloud_service.inference import TritonServerConfig, TritonServerProcess
from cloud_service.judge import Judge, JudgeConfig, JudgeWorker
from cloud_service.outcomes.config import OutcomeLogConfig
from confroute.contract import ModelRef, OutcomeBatch, Policy, RoutingMode, Thresholds
from confroute.contract.enums import AnsweredBy, Label, LabelSource
from confroute.contract.outcome import OutcomeRecord
from confroute.modelkit.export import ExportOptions, export_bundle
from confroute.modelkit.tiny import tiny_source
from confroute.signing import generate_key_pair
from edge_agent.api import ApiConfig, ApiServer, serve_api
from edge_agent.cloud import CloudConfig
from edge_agent.cloud.channel import call_metadata
from edge_agent.model import EdgeModel
from edge_agent.outbox import GrpcOutcomeSink
from edge_agent.outbox.feedback import labelled
from tests.cloud_service.text_scan import text_bytes
from tests.fleet_stack import Device, Fleet, Servers, questions
from tests.harness import triton_python_or_skip

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ECHO = Path(__file__).resolve().parents[1] / "cloud_service" / "model_repository" / "echo"
VERDICT = Path(__file__).resolve().parent / "cloud_service" / "judge" / "model_repository" / "verdict"
DEVICES = ("edge-a", "edge-b")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    python = triton_python_or_skip()
    root = tmp_path_factory.mktemp("feedback")
    (root / "models").mkdir()
    (root / "models" / "echo").symlink_to(ECHO, target_is_directory=True)
    (root / "models" / "verdict").symlink_to(VERDICT, target_is_directory=True)
    bundle = root / "bundle"
    export_bundle(tiny_source("llama"), bundle, ExportOptions(), lambda _m: None)
    model = EdgeModel(bundle)
    edge_model = ModelRef(model.model_id, model.version)
    signer = generate_key_pair(root / "policy-signing")
    with TritonServerProcess(TritonServerConfig(root / "models", backend_python=python)) as triton:
        yield Servers(triton.endpoints.grpc_url, bundle, edge_model, signer, root / "policy-signing.key",
                      root / "policy-signing.pub")


@pytest.fixture
def fleet(servers: Servers, tmp_path: Path) -> Iterator[Fleet]:
    """Two devices that answer every query themselves: a rating labels the edge's answer only when the edge
    gave it (a rating of the cloud's answer stays on the device)."""
    running = Fleet(servers, tmp_path, cohort="feedback", device_ids=DEVICES)
    try:
        running.wait_until_running(running.publish(local_everything(running)).policy_version)
        yield running
    finally:
        running.close()


@pytest.fixture
def apis(fleet: Fleet) -> Iterator[dict[str, ApiServer]]:
    servers = {device.device_id: serve_api(device.agent, ApiConfig(request_timeout_s=5.0))
               for device in fleet.devices}
    yield servers
    for server in servers.values():
        server.shutdown()


def ask(api: ApiServer, question: str) -> str:
    """The query id of an answer given over HTTP (its ``X-Confroute-Query-Id`` header)."""
    model = api.app.answerer.model_ids[0]
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": question}], "max_tokens": 3})
    request = urllib.request.Request(f"{api.url}/chat/completions", data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30.0) as response:
        return str(response.headers["X-Confroute-Query-Id"])


def rate(api: ApiServer, query_id: str, rating: str) -> tuple[int, dict[str, Any]]:
    body = json.dumps({"id": query_id, "rating": rating}).encode()
    request = urllib.request.Request(f"{api.url}/feedback", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10.0) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def logged_labels(fleet: Fleet) -> dict[str, tuple[str, str]]:
    """query id -> (label code, source) of the partition's labels stream."""
    keys = fleet.log_config.partition(fleet.servers.edge_model.version, fleet.cohort)
    with redis.Redis.from_url(fleet.redis.url) as client:
        entries = client.xrange(keys.labels)
    return {f[b"qid"].decode(): (f[b"label"].decode(), f[b"source"].decode()) for _, f in entries}


def upload_labels(fleet: Fleet, device: Device, records: list[OutcomeRecord]) -> Any:
    """Uploads late labels directly, with ``device``'s credential, and returns the ack."""
    cloud = CloudConfig(target=fleet.target, deadline_s=10.0, token=fleet.tokens[device.device_id])
    with grpc.insecure_channel(fleet.target) as channel:
        sink = GrpcOutcomeSink(channel, deadline_s=10.0, metadata=call_metadata(cloud), labels=True)
        return sink.upload(OutcomeBatch("direct", tuple(records)))


def test_a_rating_over_the_api_reaches_the_cloud_as_the_querys_user_feedback_label(
        fleet: Fleet, apis: dict[str, ApiServer]) -> None:
    a, b = (apis[device_id] for device_id in DEVICES)
    good, bad = ask(a, "alpha bravo 1?"), ask(a, "charlie 2?")

    assert rate(a, good, "good")[0] == 200
    assert rate(a, bad, "bad")[0] == 200
    fleet.wait_until(lambda: {good, bad} <= set(logged_labels(fleet)), "both labels in Redis")

    assert logged_labels(fleet) == {good: ("c", "user_feedback"), bad: ("w", "user_feedback")}
    keys = fleet.log_config.partition(fleet.servers.edge_model.version, fleet.cohort)
    with redis.Redis.from_url(fleet.redis.url) as client:
        assert client.get(keys.labelled(good)) == b"c"
    assert rate(a, good, "bad")[0] == 409
    assert rate(b, good, "good")[0] == 404  # not device b's query


def test_the_cloud_refuses_labels_for_other_devices_queries_and_from_sources_a_device_may_not_assert(
        fleet: Fleet) -> None:
    a, b = fleet.devices
    answer = a.ask("delta echo 3?")
    [record] = fleet.device_records([answer])
    mine = labelled(record, Label.CORRECT)

    ack = upload_labels(fleet, b, [mine])
    assert [(r.query_id, r.field) for r in ack.rejected] == [(record.query_id, "device_id")]
    judged = OutcomeRecord(**{**mine.__dict__, "label_source": LabelSource.CLOUD_JUDGE})
    ack = upload_labels(fleet, a, [judged])
    assert [(r.query_id, r.field) for r in ack.rejected] == [(record.query_id, "label_source")]
    of_the_cloud = OutcomeRecord(**{**mine.__dict__, "answered_by": AnsweredBy.CLOUD})
    ack = upload_labels(fleet, a, [of_the_cloud])
    assert [(r.query_id, r.field) for r in ack.rejected] == [(record.query_id, "answered_by")]
    assert logged_labels(fleet) == {}

    first, again = upload_labels(fleet, a, [mine]), upload_labels(fleet, a, [mine])
    assert (first.stored, again.stored, again.duplicate_query_ids) == (1, 0, (record.query_id,))
    assert logged_labels(fleet) == {record.query_id: ("c", "user_feedback")}


def local_everything(fleet: Fleet) -> Policy:
    """Post-mode routing that keeps every query local, shadowing none."""
    return dataclasses.replace(shadow_everything(fleet), policy_version="local-all", shadow_rate=0.0)


def shadow_everything(fleet: Fleet) -> Policy:
    """Post-mode routing that keeps every query local and shadows each one (the texts reach the cloud)."""
    return Policy(policy_version="shadow-all", edge_model=fleet.servers.edge_model, cohort=fleet.cohort,
                  mode=RoutingMode.POST, thresholds=Thresholds(pre=0.0, post=0.0, hybrid_low=0.0, hybrid_high=0.0),
                  issued_at=datetime.now(timezone.utc), shadow_rate=1.0)


async def judge_once(fleet: Fleet) -> Counter[str]:
    backend = await TritonBackend.create(TritonBackendConfig(url=fleet.servers.triton_url, model="verdict"))
    try:
        log = OutcomeLogConfig(url=fleet.redis.url, retain_text=True)
        config = JudgeConfig(calls_per_second=100.0)
        return await JudgeWorker(fleet.client, log, Judge(backend, config), config).run_once()
    finally:
        await backend.close()


def test_shadowed_queries_are_judged_from_held_texts_and_no_text_is_left(servers: Servers, tmp_path: Path) -> None:
    fleet = Fleet(servers, tmp_path, cohort="judged", device_ids=DEVICES[:1], retain_text=True)
    try:
        fleet.wait_until_running(fleet.publish(shadow_everything(fleet)).policy_version)
        asked = questions("judged", 3)
        answers = [fleet.devices[0].ask(question) for question in asked]
        assert all(answer.shadow and answer.side == "edge" for answer in answers)
        keys = fleet.log_config.partition(fleet.servers.edge_model.version, fleet.cohort)
        with redis.Redis.from_url(fleet.redis.url) as client:
            fleet.wait_until(lambda: client.xlen(keys.to_judge) == 3, "three queries queued for the judge")
        assert text_bytes(fleet.redis, asked) >= sum(len(q.encode()) for q in asked)  # held (the echo repeats them)

        outcomes = fleet.run(judge_once(fleet), timeout_s=120.0)

        assert outcomes["labelled"] == 3
        assert {qid: source for qid, (_, source) in logged_labels(fleet).items()} == {
            answer.query_id: "cloud_judge" for answer in answers}
        # The tiny model's answers ("777") are too short to tell from ids and numbers: the questions are searched.
        assert text_bytes(fleet.redis, asked) == 0
    finally:
        fleet.close()
