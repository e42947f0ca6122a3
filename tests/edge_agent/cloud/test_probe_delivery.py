"""A router probe delivered with its policy to a running agent (the cloud's real FleetService on loopback,
a real tiny bundle and onnxruntime): both applied between requests while answers keep flowing, or neither
(a tampered signature, another build), the previous pair kept; a rollback to a policy naming no probe puts
the bundle's own probe back; a restart lines the bundle's probe up with the saved policy."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from confroute.backoff import Backoff
from confroute.bundle.probe import write_probe
from confroute.bundle.store import load_bundle
from confroute.contract import ModelRef, Policy, RoutingMode, Thresholds
from confroute.contract.router_probe import RouterProbe
from confroute.engine import SamplingParams
from confroute.routing import default_policy
from confroute.signing import SigningKey, generate_key_pair, sign_policy, sign_probe
from edge_agent.cloud import CloudConfig, PolicyKeeper, PolicyWatcher
from edge_agent.cloud.policy import probe_signature_check, signature_check
from edge_agent.cloud.probe_install import ProbeInstaller, delivered_version
from edge_agent.core import AgentIdentity, EdgeAgent
from edge_agent.model import EdgeModel
from edge_agent.outbox import OutcomeQueue, QueueConfig
from tests.edge_agent.cloud.real_cloud import RealCloud
from tests.edge_agent.cloud.test_policy_watcher import eventually

pytestmark = pytest.mark.timeout(120)
COHORT = "beta"
PARAMS = SamplingParams(max_new_tokens=2)
START = datetime.now(timezone.utc) - timedelta(hours=1)


@dataclasses.dataclass
class Device:
    model: EdgeModel
    keeper: PolicyKeeper
    agent: EdgeAgent
    bundle: Path

    @property
    def build(self) -> ModelRef:
        return self.keeper.edge_model

    def score(self) -> float | None:
        """The TBG score of the model that answers now (None: the probe is untrained)."""
        return self.model.start([{"role": "user", "content": "alpha bravo?"}], PARAMS).result.tbg


@pytest.fixture
def key(tmp_path: Path) -> SigningKey:
    return generate_key_pair(tmp_path / "keys" / "fleet")


@contextmanager
def device(bundle: Path, state: Path, key_dir: Path) -> Iterator[Device]:
    state.mkdir(parents=True, exist_ok=True)
    model = EdgeModel(bundle)
    keys = (key_dir,)
    probes = ProbeInstaller(bundle, model.version, model.load, model.swap, lambda: model.engine.manifest,
                            state, verify=probe_signature_check(keys))
    keeper = PolicyKeeper(ModelRef(model.model_id, model.version), COHORT, state / "policy.json",
                          verify_signature=signature_check(keys), probes=probes)
    with OutcomeQueue(QueueConfig(state / "outbox.db")) as queue:
        agent = EdgeAgent(model, keeper, queue, AgentIdentity("device-1", COHORT), rng=random.Random(1))
        try:
            yield Device(model, keeper, agent, bundle)
        finally:
            agent.close()
            model.close()


def probe_of(build: ModelRef, bundle: Path, score: float, key: SigningKey | None) -> RouterProbe:
    """A probe that scores every query ``score`` (zero weights, the bias its logit)."""
    dim = load_bundle(bundle).probe.feature_dim
    probe = RouterProbe.of(build.version, COHORT, np.zeros(dim), math.log(score / (1 - score)), (0, 1),
                           {"label": "test"})
    return sign_probe(probe, key) if key is not None else probe


def policy_of(build: ModelRef, version: str, minutes: int, probe: RouterProbe | None, key: SigningKey) -> Policy:
    base = default_policy(build, COHORT)
    policy = dataclasses.replace(base, policy_version=version, mode=RoutingMode.PRE, issued_at=START +
                                 timedelta(minutes=minutes), thresholds=Thresholds(0.5, 0.5, 0.5, 0.8),
                                 probe_version=probe.version if probe else "", probe=probe)
    return sign_policy(policy, key)


@pytest.fixture
def running(tiny_bundle: Path, tmp_path: Path, key: SigningKey) -> Iterator[Device]:
    with device(tiny_bundle, tmp_path / "state", tmp_path / "keys") as made:
        yield made


def test_a_policy_and_its_probe_reach_a_running_agent_together_and_answers_keep_flowing(
        running: Device, real_cloud: RealCloud, key: SigningKey) -> None:
    assert running.score() is None  # the tiny bundle ships an untrained probe
    answers: list[tuple[str, float | None]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            try:
                answer = running.agent.answer([{"role": "user", "content": "charlie?"}], PARAMS)
                answers.append((answer.policy_version, answer.confidence))
            except BaseException as exc:
                errors.append(exc)
                return

    asker = threading.Thread(target=ask)
    asker.start()
    config = CloudConfig(target=real_cloud.target, reconnect=Backoff(base_s=0.02, cap_s=0.2))
    try:
        with PolicyWatcher(running.keeper, config, device_id="device-1"):
            probe = probe_of(running.build, running.bundle, 0.9, key)
            real_cloud.publish(policy_of(running.build, "v-probe", 1, probe, key))
            eventually(lambda: running.agent.policy.policy_version == "v-probe", "the new pair on the device")
            before = len(answers)
            eventually(lambda: len(answers) > before + 2, "answers after the swap")
    finally:
        stop.set()
        asker.join(30)

    assert not errors
    assert {version for version, _ in answers} >= {"builtin", "v-probe"}
    for version, score in answers:  # never the new policy with the old probe, or the other way round
        assert (score == pytest.approx(0.9, abs=1e-4)) is (version == "v-probe")
    manifest = load_bundle(running.bundle)
    assert delivered_version(manifest) == probe.version and manifest.build_version == running.build.version


@pytest.mark.parametrize("spoil", ["tampered", "unsigned", "other-build", "other-key"])
def test_a_refused_probe_refuses_its_policy_and_the_previous_pair_keeps_working(
        running: Device, key: SigningKey, tmp_path: Path, spoil: str, caplog: pytest.LogCaptureFixture) -> None:
    first = probe_of(running.build, running.bundle, 0.7, key)
    assert running.keeper.offer(policy_of(running.build, "v1", 1, first, key)).applied
    probe = probe_of(running.build, running.bundle, 0.2, key)
    if spoil == "tampered":
        spoiled = dataclasses.replace(probe, provenance={"label": "forged"})
    elif spoil == "unsigned":
        spoiled = probe.unsigned()
    elif spoil == "other-build":
        spoiled = sign_probe(dataclasses.replace(probe, edge_model_version="another-build"), key)
    else:
        spoiled = sign_probe(probe, generate_key_pair(tmp_path / "rogue"))
    wire = policy_of(running.build, "v2", 2, probe, key).to_pb()  # the policy's signature stays valid
    wire.probe.CopyFrom(spoiled.to_pb())
    probe_file = (running.bundle / "probe.bin").read_bytes()

    verdict = running.keeper.offer_pb(wire)

    assert not verdict.applied and "probe" in verdict.reason
    assert "policy v2 rejected" in caplog.text
    assert running.agent.policy.policy_version == "v1"
    assert running.score() == pytest.approx(0.7, abs=1e-4)
    assert (running.bundle / "probe.bin").read_bytes() == probe_file
    assert delivered_version(load_bundle(running.bundle)) == first.version


def test_a_probe_for_a_bundle_updated_on_disk_but_not_yet_served_is_refused(running: Device, key: SigningKey) -> None:
    first = probe_of(running.build, running.bundle, 0.7, key)
    second = probe_of(running.build, running.bundle, 0.2, key)
    assert running.keeper.offer(policy_of(running.build, "v1", 1, first, key)).applied
    # `edge-agent bundle update` swapped another build in; this agent serves its own until it restarts
    manifest = json.loads((running.bundle / "manifest.json").read_text())
    manifest["files"][manifest["tokenizer_file"]] = "0" * 64
    (running.bundle / "manifest.json").write_text(json.dumps(manifest))
    on_disk = load_bundle(running.bundle, verify=False)

    for version, minutes, probe in (("v2", 2, second), ("v3", 3, None)):
        verdict = running.keeper.offer(policy_of(running.build, version, minutes, probe, key))
        assert not verdict.applied and "restart the agent" in verdict.reason

    assert running.agent.policy.policy_version == "v1"
    assert running.score() == pytest.approx(0.7, abs=1e-4)
    assert load_bundle(running.bundle, verify=False).files == on_disk.files  # nothing written into it


def test_a_rollback_restores_the_previous_pair_and_the_bundles_own_probe(running: Device, key: SigningKey) -> None:
    shipped = (running.bundle / "probe.bin").read_bytes()
    first = probe_of(running.build, running.bundle, 0.7, key)
    second = probe_of(running.build, running.bundle, 0.3, key)
    assert running.keeper.offer(policy_of(running.build, "v1", 1, first, key)).applied
    assert running.keeper.offer(policy_of(running.build, "v2", 2, second, key)).applied
    assert running.score() == pytest.approx(0.3, abs=1e-4)

    # A rollback is a new issue of the old content (cloud_service.policies.operations).
    assert running.keeper.offer(policy_of(running.build, "v1+rollback.1", 3, first, key)).applied
    assert running.score() == pytest.approx(0.7, abs=1e-4)

    assert running.keeper.offer(policy_of(running.build, "v0+rollback.2", 4, None, key)).applied
    assert running.score() is None
    assert (running.bundle / "probe.bin").read_bytes() == shipped
    assert load_bundle(running.bundle).probe_version == "untrained"


def test_a_restart_lines_the_probe_up_with_the_saved_policy(tiny_bundle: Path, tmp_path: Path,
                                                           key: SigningKey) -> None:
    state, keys = tmp_path / "state", tmp_path / "keys"
    with device(tiny_bundle, state, keys) as first:
        probe = probe_of(first.build, tiny_bundle, 0.8, key)
        assert first.keeper.offer(policy_of(first.build, "v1", 1, probe, key)).applied
        build = first.build
    # Killed after writing the next probe, before saving its policy: the bundle holds a probe no policy names.
    stray = probe_of(build, tiny_bundle, 0.1, key)
    write_probe(tiny_bundle, "tbg", stray.weight, stray.bias, {"router_probe_version": stray.version})

    with device(tiny_bundle, state, keys) as restarted:
        assert restarted.agent.policy.policy_version == "v1"
        assert restarted.score() == pytest.approx(0.8, abs=1e-4)
        assert delivered_version(load_bundle(tiny_bundle)) == probe.version
