"""The whole calibration loop on loopback: two edge agents answer real queries (escalating through the real
cloud service to tritonserver), their outcomes land in a real Redis, gold labels are written back, the
recalibration worker publishes a signed policy, and the devices follow it over WatchPolicy.

* recalibration moves both devices from their escalation rate to the worker's target rate;
* a canary is promoted when its devices' labelled outcomes are as good as the control's, and rolled back
  (the canary device returns to the control's content under a newer version) when they are worse;
* forged, replayed and malformed policies in Redis never reach routing: the devices keep their last good one.

The edge model is the tiny random llama with its embeddings scaled up (x5): the stock tiny model's raw
scores all fall within ~10 of the statistics' 1,000 bins, too few to resolve a target rate; scaled, they
spread over ~0.5-0.85 (~100 bins). Its confidence means nothing, but the threshold mechanics are real.
Greedy decoding of fixed questions makes every run route the same way.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import shutil
import statistics
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cloud_service.calibration import RecalibrationConfig
from cloud_service.calibration.policy_maker import policy_version
from cloud_service.inference import TritonServerConfig, TritonServerProcess
from confroute.calibration.canary import in_canary
from confroute.contract import ModelRef, Policy, RoutingMode, Thresholds
from confroute.contract.outcome import OutcomeRecord
from confroute.modelkit.export import ExportOptions, export_bundle
from confroute.modelkit.tiny import tiny_source
from confroute.routing import raw_post_score
from confroute.signing import generate_key_pair, sign_policy
from confroute.v1 import fleet_pb2
from edge_agent.answer import AgentAnswer
from edge_agent.cloud.policy_file import load_policy
from edge_agent.model import EdgeModel
from tests.fleet_stack import Device, Fleet, RogueFleet, Servers, device_of
from tests.harness import triton_python_or_skip

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ECHO = Path(__file__).resolve().parents[1] / "cloud_service" / "model_repository" / "echo"
DEVICES = ("edge-a", "edge-b")
TARGET_RATE = 0.5
CANARY_SHARE = 0.5
# Per device and stream. The canary rule judges at 200 effective labelled outcomes per arm (its default).
STREAM = 60
CANARY_RUN = 210


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    python = triton_python_or_skip()
    root = tmp_path_factory.mktemp("fleet")
    (root / "models").mkdir()
    (root / "models" / "echo").symlink_to(ECHO, target_is_directory=True)
    bundle = _confident_tiny_bundle(root / "bundle")
    model = EdgeModel(bundle)
    edge_model = ModelRef(model.model_id, model.version)
    signer = generate_key_pair(root / "policy-signing")
    with TritonServerProcess(TritonServerConfig(root / "models", backend_python=python)) as triton:
        yield Servers(triton.endpoints.grpc_url, bundle, edge_model, signer, root / "policy-signing.key",
                      root / "policy-signing.pub")


def _confident_tiny_bundle(folder: Path) -> Path:
    source = tiny_source("llama")
    weights = dict(source.weights)
    weights["embed"] = weights["embed"] * 5.0  # tied: sharper next-token distributions, spread-out confidences
    export_bundle(dataclasses.replace(source, weights=weights), folder, ExportOptions(), lambda _m: None)
    return folder


@pytest.fixture
def fleet(servers: Servers, tmp_path: Path) -> Iterator[Fleet]:
    """A fresh Redis and cloud service with two devices of one cohort."""
    running = Fleet(servers, tmp_path, cohort="loop", device_ids=DEVICES)
    yield running
    running.close()


def first_policy(fleet: Fleet, post: float) -> Policy:
    """What an operator publishes first: post-generation routing on the raw score, no shadows."""
    return Policy(policy_version="v1", edge_model=fleet.servers.edge_model, cohort=fleet.cohort,
                  mode=RoutingMode.POST, thresholds=Thresholds(pre=post, post=post, hybrid_low=post, hybrid_high=post),
                  issued_at=datetime.now(timezone.utc), shadow_rate=0.0)


def escalation_rate(answers: list[AgentAnswer]) -> float:
    assert not any(answer.escalation_unavailable for answer in answers)
    return sum(answer.side == "cloud" for answer in answers) / len(answers)


def label_by_median(fleet: Fleet, records: list[OutcomeRecord]) -> None:
    """Gold labels: the edge answered right exactly on its more confident half of these queries."""
    median = statistics.median(raw_post_score(r.signals) for r in records)
    fleet.label(records, lambda record: raw_post_score(record.signals) >= median)


def recalibration(**overrides: object) -> RecalibrationConfig:
    values: dict[str, object] = {"target": "rate", "target_rate": TARGET_RATE, "min_labelled": 40,
                                 "min_effective_size": 20.0, "consumer": "fleet-loop"}
    return RecalibrationConfig(**(values | overrides))  # type: ignore[arg-type]


def test_recalibration_moves_both_devices_to_the_target_escalation_rate(fleet: Fleet) -> None:
    control = fleet.publish(first_policy(fleet, post=0.6))
    fleet.wait_until_running(control.policy_version)
    before = fleet.ask_all("first", STREAM)
    label_by_median(fleet, fleet.device_records(before))

    [result] = fleet.run(fleet.worker(recalibration(canary_share=1.0)).run_once())
    assert result.policy is not None, result.reason
    new = result.policy.policy_version
    fleet.wait_until_running(new)
    for device in fleet.devices:
        applied = device.policy
        assert applied.key_id == fleet.servers.signer.key_id and applied.signature
        assert applied.calibration.x, "the recalibrated policy carries its isotonic map"
        assert load_policy(device.state_dir / "policy.json") == applied, "saved as the last good policy"

    after = fleet.ask_all("second", STREAM)
    assert {answer.policy_version for answer in after} == {new}
    # 120 fresh queries: a binomial standard deviation of ~0.05 around the target, plus the calibration
    # sample's own ~0.05 (120 outcomes) and the 1/1000 bins; deterministic here (greedy decoding).
    tolerance = 3 * math.sqrt(2 * TARGET_RATE * (1 - TARGET_RATE) / (2 * STREAM))
    assert abs(escalation_rate(after) - TARGET_RATE) <= tolerance, (escalation_rate(before), escalation_rate(after))
    assert abs(escalation_rate(before) - TARGET_RATE) > tolerance, "the target must be a real move"


# -- canary --------------------------------------------------------------------------------------------


def canary_clock(canary: str, control: str) -> datetime:
    """A recalibration time whose policy version (the canary's salt) puts ``canary`` in the canary arm and
    ``control`` in the control arm at ``CANARY_SHARE``."""
    start = datetime.now(timezone.utc) + timedelta(seconds=1)
    for step in range(10_000):
        moment = start + timedelta(milliseconds=step)
        version = policy_version(moment)
        if in_canary(canary, CANARY_SHARE, version) and not in_canary(control, CANARY_SHARE, version):
            return moment
    raise AssertionError("no version splits the two devices")


def start_canary(fleet: Fleet) -> tuple[Policy, Policy, Device, Device]:
    """Publishes a control, logs and labels a stream under it, and lets the worker publish its recalibrated
    candidate as a canary on one of the two devices; returns control, canary, canary device, control device."""
    control = fleet.publish(first_policy(fleet, post=0.6))
    fleet.wait_until_running(control.policy_version)
    label_by_median(fleet, fleet.device_records(fleet.ask_all("warm-up", STREAM)))
    canary_device, control_device = fleet.devices
    moment = canary_clock(canary_device.device_id, control_device.device_id)
    worker = fleet.worker(recalibration(canary_share=CANARY_SHARE), clock=lambda: moment)
    [result] = fleet.run(worker.run_once())
    assert result.policy is not None and result.provenance["rollout"]["role"] == "canary", result.provenance
    canary = fleet.run(fleet.store.version(control.edge_model.version, fleet.cohort, result.policy.policy_version))
    assert canary is not None
    fleet.wait_until_running(canary.policy_version, [canary_device])
    assert control_device.runs(control.policy_version)
    return control, canary, canary_device, control_device


def judge(fleet: Fleet) -> dict[str, object]:
    """One worker pass that judges the running canary. It needs 5,000 labels to propose a further
    candidate, which these runs lack, so the fleet settles on the judged version."""
    [result] = fleet.run(fleet.worker(recalibration(min_labelled=5_000)).run_once())
    assert result.policy is None
    canary: dict[str, object] = result.provenance["canary"]
    return canary


def canary_run(fleet: Fleet, control: Policy, canary: Policy, canary_device: Device, control_device: Device
               ) -> tuple[list[AgentAnswer], list[AgentAnswer]]:
    """Each device answers ``CANARY_RUN`` questions under its arm's version; their outcomes are in Redis."""
    canary_answers = fleet.ask(canary_device, "canary-run", CANARY_RUN)
    control_answers = fleet.ask(control_device, "canary-run", CANARY_RUN)
    assert {a.policy_version for a in canary_answers} == {canary.policy_version}
    assert {a.policy_version for a in control_answers} == {control.policy_version}
    fleet.device_records(canary_answers + control_answers)
    return canary_answers, control_answers


def last_action(fleet: Fleet) -> tuple[str, str]:
    [entry] = fleet.run(fleet.store.history(fleet.servers.edge_model.version, fleet.cohort, count=1))
    return entry.action, entry.reason


def test_a_canary_at_least_as_good_as_its_control_is_promoted_to_every_device(fleet: Fleet) -> None:
    control, canary, canary_device, control_device = start_canary(fleet)
    canary_answers, control_answers = canary_run(fleet, control, canary, canary_device, control_device)
    fleet.label(fleet.device_records(canary_answers + control_answers), lambda _record: True)

    verdict = judge(fleet)

    assert verdict["verdict"] == "promote", verdict
    fleet.wait_until_running(canary.policy_version)
    action, reason = last_action(fleet)
    assert action == "promote" and reason.startswith("automatic")


def test_a_worse_canary_is_rolled_back_and_its_device_returns_to_the_control_content(fleet: Fleet) -> None:
    control, canary, canary_device, control_device = start_canary(fleet)
    canary_answers, control_answers = canary_run(fleet, control, canary, canary_device, control_device)
    worse = {a.query_id for a in canary_answers[::2]}  # the edge was wrong on half of the canary's answers
    fleet.label(fleet.device_records(canary_answers + control_answers), lambda record: record.query_id not in worse)

    verdict = judge(fleet)

    assert verdict["verdict"] == "rollback", verdict
    fleet.wait_until(lambda: _runs_content_of(canary_device, control, newer_than=canary), "the rollback")
    fleet.wait_until(lambda: _runs_content_of(control_device, control, newer_than=canary), "the rollback")
    assert canary_device.policy == control_device.policy
    action, reason = last_action(fleet)
    assert action == "rollback" and reason.startswith("automatic")


def _runs_content_of(device: Device, original: Policy, newer_than: Policy) -> bool:
    held = device.policy
    if held.policy_version in (original.policy_version, newer_than.policy_version):
        return False
    assert held.issued_at > newer_than.issued_at
    return _content(held) == _content(original)


def _content(policy: Policy) -> Policy:
    return dataclasses.replace(policy, policy_version="content", issued_at=datetime(1970, 1, 1, tzinfo=timezone.utc),
                               signature=b"", key_id="")


# -- policies the devices must refuse ---------------------------------------------------------------------


def _refused(caplog: pytest.LogCaptureFixture, version: str, times: int, because: str = "") -> bool:
    """Whether ``version`` was rejected ``times`` times for a reason saying ``because`` (the keeper logs
    each rejection with its reason)."""
    messages = [record.getMessage() for record in caplog.records]
    return sum(m.startswith(f"policy {version} rejected: ") and because in m for m in messages) == times


def test_forged_unsigned_and_replayed_policies_in_redis_are_refused_and_the_last_good_one_stays(
        fleet: Fleet, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.WARNING, logger="edge_agent.cloud.policy")
    good = fleet.publish(first_policy(fleet, post=0.6))
    fleet.wait_until_running(good.policy_version)

    # forged: a writer with Redis access but not the cloud's key signs a policy of its own; the cloud
    # verifies what it reads with its key and serves nothing it cannot verify (and the devices' own
    # signature check would stop it too: see the rogue FleetService test)
    attacker = fleet.other_store(generate_key_pair(tmp_path / "attacker"))
    forged = fleet.publish(dataclasses.replace(first_policy(fleet, post=1.0), policy_version="forged"), attacker)
    assert forged.signature and forged.key_id != fleet.servers.signer.key_id
    assert fleet.run(fleet.store.current(good.edge_model.version, fleet.cohort)) is None
    assert all(device.runs(good.policy_version) for device in fleet.devices)
    assert {device.ask("still routed by?").policy_version for device in fleet.devices} == {good.policy_version}

    # unsigned: the same writer without any key
    fleet.publish(dataclasses.replace(first_policy(fleet, post=1.0), policy_version="unsigned"),
                  fleet.other_store(None))
    assert fleet.run(fleet.store.current(good.edge_model.version, fleet.cohort)) is None
    assert all(device.runs(good.policy_version) for device in fleet.devices)

    # replayed: a genuinely signed but older version made current again, as it was issued back then
    newer = fleet.publish(dataclasses.replace(first_policy(fleet, post=0.55), policy_version="v2"))
    fleet.wait_until_running(newer.policy_version)
    fleet.run(_make_current(fleet, good.policy_version))
    fleet.wait_until(lambda: _refused(caplog, good.policy_version, len(fleet.devices), "stale"),
                     "both devices to refuse the replay")
    assert all(device.runs(newer.policy_version) for device in fleet.devices)
    assert {device.ask("and now?").policy_version for device in fleet.devices} == {newer.policy_version}


def test_malformed_and_misdirected_pushes_are_refused_by_a_device_that_keeps_its_saved_policy(
        fleet: Fleet, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    """The cloud never serves a policy it cannot decode, so these come from a rogue FleetService."""
    caplog.set_level(logging.WARNING, logger="edge_agent.cloud.policy")
    good = fleet.publish(first_policy(fleet, post=0.6))
    fleet.wait_until_running(good.policy_version)
    state = tmp_path / "rogue-device"
    state.mkdir()
    shutil.copy(fleet.devices[0].state_dir / "policy.json", state / "policy.json")
    pushes = {name: _tampered(good, name) for name in ("nan", "above-one", "unknown-mode")}
    elsewhere = sign_policy(dataclasses.replace(
        good, policy_version="other-build", edge_model=ModelRef(good.edge_model.id, "other-build"),
        issued_at=datetime.now(timezone.utc)), fleet.servers.signer)
    rogue = RogueFleet([*pushes.values(), elsewhere.to_pb()])
    try:
        with device_of(fleet.device_config("edge-c", state, rogue.target)) as device:
            for version, because in [*((name, "") for name in pushes), ("other-build", "edge model")]:
                fleet.wait_until(functools.partial(_refused, caplog, version, 1, because),
                                 f"the device to refuse {version}")
            assert device.runs(good.policy_version)
            assert device.ask("routed by?").policy_version == good.policy_version
    finally:
        rogue.close()


def _tampered(policy: Policy, how: str) -> fleet_pb2.Policy:
    """``policy`` as sent on the wire with one field made invalid (named ``how``, issued later)."""
    pb = policy.to_pb()
    pb.policy_version = how
    pb.issued_at.FromDatetime(datetime.now(timezone.utc))
    if how == "nan":
        pb.thresholds.post = math.nan
    elif how == "above-one":
        pb.thresholds.post = 1.5
    else:
        pb.mode = 99  # type: ignore[assignment]
    return pb


def test_a_malformed_policy_in_redis_is_never_served_and_the_next_good_one_still_arrives(fleet: Fleet) -> None:
    good = fleet.publish(first_policy(fleet, post=0.6))
    fleet.wait_until_running(good.policy_version)
    pb = good.to_pb()
    pb.policy_version = "malformed"
    pb.mode = 99  # type: ignore[assignment]
    fleet.run(_make_current(fleet, "malformed", pb.SerializeToString()))
    assert all(device.runs(good.policy_version) for device in fleet.devices)

    latest = fleet.publish(dataclasses.replace(first_policy(fleet, post=0.5), policy_version="v2"))

    fleet.wait_until_running(latest.policy_version)


async def _make_current(fleet: Fleet, version: str, body: bytes | None = None) -> None:
    """Writes a rollout state naming ``version`` as the control, storing ``body`` under it first if given:
    what a writer with Redis access but without the store's checks can do."""
    store, edge = fleet.store, fleet.servers.edge_model.version
    base = await store.rollout(edge, fleet.cohort)
    if body is not None:
        await fleet.client.hset(store.config.versions_key(edge, fleet.cohort), version, body)
    state = dataclasses.replace(base.state, control=version, canary="", share=0.0)
    await store.commit(edge, fleet.cohort, base, state, (), "publish", "test: written behind the store's back")
