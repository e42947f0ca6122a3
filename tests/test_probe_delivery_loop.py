"""Probe and threshold travel together, end to end (real Redis, the real service signing every policy,
tritonserver's echo model as the cloud model, an edge agent assembled by ``edge_agent.app`` that trusts
only the service's key).

* the retrain worker refits the router probe from the fleet's labels, signs it and publishes the policy
  that names it; the running agent applies probe and policy together between two requests while answers
  keep flowing, each answer routed by one pair (never the new policy with the old probe);
* a rollback re-issues the previous policy, naming no probe: the bundle's own probe is back;
* a policy whose probe is tampered with (its signature no longer verifies) is refused, the pair kept.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cloud_service.policies.operations import rollback
from cloud_service.retrain.config import RetrainConfig
from cloud_service.retrain.worker import RetrainWorker
from confroute.bundle.store import load_bundle
from confroute.contract import ModelRef
from confroute.modelkit.export import ExportOptions, export_bundle
from confroute.modelkit.tiny import tiny_source
from confroute.signing import generate_key_pair
from edge_agent.cloud.probe_install import delivered_version
from edge_agent.model import EdgeModel
from tests.cloud_service.retrain.test_retrain import COHORT, held_records, log_and_label
from tests.fleet_stack import Device, Fleet, Servers
from tests.harness import triton_python_or_skip

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ECHO = Path(__file__).resolve().parents[1] / "cloud_service" / "model_repository" / "echo"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    from cloud_service.inference import TritonServerConfig, TritonServerProcess

    python = triton_python_or_skip()
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "echo").symlink_to(ECHO, target_is_directory=True)
    bundle = tmp_path / "bundle"
    export_bundle(tiny_source("llama"), bundle, ExportOptions(), lambda _m: None)
    model = EdgeModel(bundle)
    edge_model = ModelRef(model.model_id, model.version)
    model.close()
    signer = generate_key_pair(tmp_path / "policy-signing")
    with TritonServerProcess(TritonServerConfig(tmp_path / "models", backend_python=python)) as triton:
        yield Servers(triton.endpoints.grpc_url, bundle, edge_model, signer, tmp_path / "policy-signing.key",
                      tmp_path / "policy-signing.pub")


@pytest.fixture
def fleet(servers: Servers, tmp_path: Path) -> Iterator[Fleet]:
    running = Fleet(servers, tmp_path / "fleet", cohort=COHORT, device_ids=("edge-a",))
    yield running
    running.close()


class Asker:
    """Asks the device one question after another in a thread; each answer's policy version and score."""

    def __init__(self, device: Device) -> None:
        self.answers: list[tuple[str, float | None]] = []
        self.errors: list[BaseException] = []
        self._device = device
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="asker")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                answer = self._device.ask("alpha bravo 3?")
            except BaseException as exc:
                self.errors.append(exc)
                return
            self.answers.append((answer.policy_version, answer.confidence))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


def test_a_retrained_probe_reaches_the_running_agent_with_its_policy_and_rolls_back(
        fleet: Fleet, tmp_path: Path) -> None:
    device = fleet.devices[0]
    build = fleet.servers.edge_model
    cloud_bundle = tmp_path / "cloud-bundle"  # the cloud's own copy of the device's build
    shutil.copytree(fleet.servers.bundle, cloud_bundle)
    base = dataclasses.replace(device.policy, policy_version="v0", issued_at=datetime.now(timezone.utc))
    fleet.publish(base)
    fleet.wait_until_running("v0")
    fleet.run(log_and_label(fleet.redis, cloud_bundle, held_records(build, 120)), timeout_s=120.0)
    asker = Asker(device)
    try:
        worker = RetrainWorker(fleet.client, fleet.log_config, cloud_bundle,
                               RetrainConfig(min_examples=60, canary_share=0.0), signer=fleet.servers.signer,
                               policies=fleet.store)
        [result] = fleet.run(worker.run_once(), timeout_s=120.0)
        probe = result.published
        assert probe is not None
        fleet.wait_until(lambda: device.policy.probe_version == probe.version, "the probe's policy on the device")
        introduced = device.policy.policy_version
        served = len(asker.answers)
        fleet.wait_until(lambda: len(asker.answers) > served + 2, "answers with the new pair")

        fleet.run(rollback(fleet.store, build.version, COHORT))  # back to the policy before the probe
        fleet.wait_until(lambda: device.policy.policy_version.startswith("v0+rollback"), "the rollback")
        assert delivered_version(load_bundle(fleet.servers.bundle)) == ""  # the bundle's own probe is back
        rolled_back = device.policy.policy_version
        served = len(asker.answers)
        fleet.wait_until(lambda: len(asker.answers) > served + 2, "answers after the rollback")

        # A probe altered after signing: the (validly signed) policy carrying it is refused, the pair kept.
        forged = dataclasses.replace(probe, bias=probe.bias + 1.0)
        fleet.publish(dataclasses.replace(device.policy, policy_version="v-forged", probe_version=forged.version,
                                          probe=forged, issued_at=datetime.now(timezone.utc)))
        served = len(asker.answers)
        fleet.wait_until(lambda: len(asker.answers) > served + 2, "answers after the forged pair")
        assert device.policy.policy_version == rolled_back
    finally:
        asker.stop()

    assert not asker.errors
    versions = [version for version, _ in asker.answers]
    assert {"v0", introduced, rolled_back} <= set(versions) and "v-forged" not in versions
    scored = {version: {score for v, score in asker.answers if v == version} for version in set(versions)}
    assert not scored[introduced] & scored[rolled_back]  # the probe's scores only with its policy
    assert load_bundle(fleet.servers.bundle).probe_version == "untrained"
