"""The edge agent on arm64, proven under emulation (``pytest -m aarch64``): a Debian bookworm arm64 root
(what 64-bit Raspberry Pi OS is built on) made by debootstrap and cached in ``<cache>/aarch64``, the Pi install
script run inside it under qemu-user from the built wheel, then the installed agent answering one question:
a local generation, then an escalation to a cloud service on the host over loopback.

Timings under emulation say nothing about a Pi; none is asserted or reported.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from cloud_service.cli import DEFAULT_REPOSITORY
from cloud_service.inference import TritonServerConfig, TritonServerProcess
from confroute.bundle.store import load_bundle
from confroute.contract import ModelRef, RoutingMode, Thresholds
from confroute.paths import cache_dir
from confroute.routing import default_policy
from edge_agent.cloud.policy_file import save_policy
from tests.cloud_service.redis_server import RedisServer, free_port
from tests.deploy.tools import DEPLOY, REPO, DeployTools, ensure_tools, run
from tests.harness import triton_python_or_skip

# The first run builds the root (debootstrap under emulation, ~15 min) and installs into it: past the default 900 s.
pytestmark = [pytest.mark.aarch64, pytest.mark.slow, pytest.mark.timeout(3600)]

HERE = Path(__file__).parent / "aarch64"
SHARE = "/mnt/confroute"  # where in_root.sh binds the host's share folder
QUESTION = "What is 12 times 7?"


@dataclasses.dataclass(frozen=True)
class Arm64Root:
    path: Path
    share: Path

    def run(self, *command: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        return run(["bash", HERE / "in_root.sh", self.path, self.share, *command], timeout=timeout)


@pytest.fixture(scope="module")
def arm64_root(deploy_tools: DeployTools, tmp_path_factory: pytest.TempPathFactory) -> Arm64Root:
    ensure_tools("--aarch64")
    root = cache_dir(os.environ) / "aarch64" / "bookworm-arm64"
    built = run(["bash", HERE / "build_root.sh", root], timeout=3600)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    return Arm64Root(root, tmp_path_factory.mktemp("share"))


@pytest.fixture(scope="module")
def installed(arm64_root: Arm64Root, built_wheel: Path, tiny_bundles: dict[str, Path]) -> str:
    """Runs deploy/pi/install.sh inside the root with the built wheel and a bundle; returns its output."""
    share = arm64_root.share
    shutil.copy(built_wheel, share / built_wheel.name)
    shutil.copytree(DEPLOY / "pi", share / "pi")
    shutil.copytree(tiny_bundles["llama"], share / "bundle")
    result = arm64_root.run("bash", f"{SHARE}/pi/install.sh", "--wheel", f"{SHARE}/{built_wheel.name}",
                            "--bundle", f"{SHARE}/bundle", "--no-start")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The cloud service on the host: real Redis, tritonserver's echo model, ``cloud-service serve``."""
    backend_python = triton_python_or_skip()
    triton_config = TritonServerConfig(model_repository=DEFAULT_REPOSITORY, backend_python=backend_python)
    port = free_port()
    with RedisServer() as redis_server, TritonServerProcess(triton_config) as triton:
        env = {**os.environ, "CONFROUTE_CLOUD_LISTEN": f"127.0.0.1:{port}", "CONFROUTE_CLOUD_METRICS_LISTEN": "",
               "CONFROUTE_CLOUD_TRITON_URL": triton.endpoints.grpc_url, "CONFROUTE_CLOUD_TRITON_MODEL": "echo",
               "CONFROUTE_CLOUD_REDIS_URL": redis_server.url}
        log = tmp_path_factory.mktemp("cloud") / "service.log"
        with log.open("w") as sink:
            service = subprocess.Popen([sys.executable, "-m", "cloud_service.cli", "serve"], env=env,
                                       stdout=sink, stderr=subprocess.STDOUT)
        try:
            _wait_serving(f"127.0.0.1:{port}", service, log)
            yield f"127.0.0.1:{port}"
        finally:
            service.terminate()
            service.wait(timeout=30)


def _wait_serving(target: str, service: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            assert service.poll() is None, log.read_text()[-3000:]
            try:
                if stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2).status == 1:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise AssertionError("the cloud service did not become SERVING: " + log.read_text()[-3000:])


def escalate_everything(bundle: Path, state: Path) -> None:
    """The device's first policy (provisioning writes it, or the cloud sends it): post mode with a threshold
    no answer reaches, so the question is generated locally and then escalated."""
    manifest = load_bundle(bundle, verify=False)
    policy = dataclasses.replace(default_policy(ModelRef(manifest.model_id, manifest.build_version), "default"),
                                 policy_version="aarch64-proof", mode=RoutingMode.POST,
                                 thresholds=Thresholds(pre=1.0, post=1.0, hybrid_low=1.0, hybrid_high=1.0),
                                 issued_at=datetime.now(timezone.utc), shadow_rate=0.0)
    save_policy(state / "policy.json", policy)


def test_the_pi_install_script_installs_the_wheel_on_arm64(arm64_root: Arm64Root, installed: str) -> None:
    from confroute import __version__

    probe = arm64_root.run("/opt/confroute/venv/bin/python", "-c",
                           "import platform, onnxruntime; print(platform.machine(), onnxruntime.__version__)")

    assert installed.strip().splitlines()[-1] == f"edge-agent {__version__}"
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert probe.stdout.split()[0] == "aarch64"
    assert (arm64_root.path / "etc/systemd/system/confroute-edge.service").read_text() == \
        (DEPLOY / "pi" / "confroute-edge.service").read_text()
    assert (arm64_root.path / "opt/confroute/bundle/manifest.json").exists()


def test_the_installed_agent_generates_then_escalates_to_the_host_cloud(
    arm64_root: Arm64Root, installed: str, cloud: str
) -> None:
    state = arm64_root.share / "state"
    escalate_everything(arm64_root.path / "opt/confroute/bundle", state)

    result = arm64_root.run("/opt/confroute/venv/bin/edge-agent", "ask", QUESTION, "--bundle", "/opt/confroute/bundle",
                            "--cloud", cloud, "--max-tokens", "8", "--state-dir", f"{SHARE}/state",
                            "--cloud-deadline", "60", timeout=900)

    assert result.returncode == 0, result.stderr[-3000:]
    *answer, last = result.stdout.strip().splitlines()
    meta = json.loads(last)
    assert (meta["side"], meta["policy_version"], meta["escalation_unavailable"]) == ("cloud", "aarch64-proof", False)
    assert QUESTION in "\n".join(answer)  # the echo model answers with the prompt it was sent
    assert (state / "outbox.db").exists()


@pytest.mark.real_model
def test_the_real_8bit_bundle_generates_then_escalates_on_arm64(
    arm64_root: Arm64Root, installed: str, cloud: str, smollm2_int8_bundle: Path
) -> None:
    # What a Pi installs (the 8-bit SmolLM2-135M bundle); the longest step of the tier under emulation.
    bundle = arm64_root.share / "real"
    if not bundle.exists():
        shutil.copytree(smollm2_int8_bundle, bundle)
    state = arm64_root.share / "state-real"
    escalate_everything(bundle, state)

    result = arm64_root.run("/opt/confroute/venv/bin/edge-agent", "ask", QUESTION, "--bundle", f"{SHARE}/real",
                            "--cloud", cloud, "--max-tokens", "4", "--state-dir", f"{SHARE}/state-real",
                            "--cloud-deadline", "60", timeout=1500)

    assert result.returncode == 0, result.stderr[-3000:]
    meta = json.loads(result.stdout.strip().splitlines()[-1])
    # The policy made for this bundle's model build was applied, the local answer was scored, the cloud answered.
    assert (meta["side"], meta["model"], meta["policy_version"]) == ("cloud", "echo", "aarch64-proof")
    assert 0.0 < meta["confidence"] < 1.0


def test_the_repository_tree_is_not_what_the_device_runs(arm64_root: Arm64Root, installed: str) -> None:
    result = arm64_root.run("/opt/confroute/venv/bin/python", "-c",
                            "import edge_agent, sys; print(edge_agent.__file__)")

    assert result.stdout.strip().startswith("/opt/confroute/venv/lib/")
    assert str(REPO) not in result.stdout
