"""The ``cloud-service`` command line: serving until a signal, the bundled tritonserver, policies."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from cloud_service.cli import main
from cloud_service.config import ServiceConfig
from cloud_service.server.policy_admin import policy_from_args
from cloud_service.server.runner import serve
from confroute.contract import RoutingMode
from confroute.errors import InvalidPolicy

if TYPE_CHECKING:
    from tests.cloud_service.server.conftest import StoresFactory

ROOT = Path(__file__).resolve().parents[3]
POLICY_FLAGS = ("--edge-model-id", "smollm2", "--edge-model-version", "b1", "--cohort", "beta", "--mode", "pre")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def policy_args(*argv: str) -> Any:
    import argparse

    from cloud_service.server.policy_admin import add_policy_arguments

    parser = argparse.ArgumentParser()
    add_policy_arguments(parser)
    return parser.parse_args(argv)


async def health_status(port: int, wait_for_ready: bool = True) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        request = health_pb2.HealthCheckRequest(service="")
        response = await health_pb2_grpc.HealthStub(channel).Check(request, timeout=2, wait_for_ready=wait_for_ready)
        return int(response.status)


def test_serve_answers_until_sigterm_then_shuts_down_gracefully(stores_factory: StoresFactory) -> None:
    port = free_port()
    config = ServiceConfig(listen=f"127.0.0.1:{port}", triton_url=f"127.0.0.1:{free_port()}", metrics_listen="")

    async def scenario() -> float:
        serving = asyncio.create_task(serve(config, stores_factory))
        # Nothing listens at triton_url: the service is up but says NOT_SERVING.
        assert await health_status(port) == health_pb2.HealthCheckResponse.NOT_SERVING
        os.kill(os.getpid(), signal.SIGTERM)
        started = time.monotonic()
        await asyncio.wait_for(serving, timeout=10)
        elapsed = time.monotonic() - started
        with pytest.raises(grpc.RpcError):
            await health_status(port, wait_for_ready=False)
        return elapsed

    assert asyncio.run(scenario()) < config.grace_s + 1.0


def test_a_policy_from_flags_is_validated_and_stamped() -> None:
    policy = policy_from_args(policy_args(*POLICY_FLAGS, "--pre", "0.4"))

    assert (policy.edge_model.version, policy.cohort, policy.mode) == ("b1", "beta", RoutingMode.PRE)
    assert policy.thresholds.pre == 0.4
    assert policy.policy_version and policy.issued_at.tzinfo is not None


def test_a_policy_from_a_json_file_is_read_in_the_protobuf_json_form(tmp_path: Path) -> None:
    file = tmp_path / "policy.json"
    file.write_text(
        json.dumps(
            {
                "policyVersion": "v7",
                "edgeModel": {"id": "smollm2", "version": "b1"},
                "cohort": "beta",
                "mode": "ROUTING_MODE_POST",
                "thresholds": {"pre": 0.5, "post": 0.7, "hybridLow": 0.3, "hybridHigh": 0.8},
                "issuedAt": "2025-01-01T00:00:00Z",
            }
        )
    )

    policy = policy_from_args(policy_args("--file", str(file)))

    assert (policy.policy_version, policy.mode, policy.thresholds.post) == ("v7", RoutingMode.POST, 0.7)


def test_an_unreadable_policy_file_is_invalid_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "policy.json").write_text("{not json")

    with pytest.raises(InvalidPolicy) as caught:
        policy_from_args(policy_args("--file", str(tmp_path / "policy.json")))

    assert caught.value.field == "file"


def test_policy_set_refuses_a_bad_threshold_before_touching_the_store(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["policy", "set", *POLICY_FLAGS, "--pre", "1.5"])

    assert code == 2
    assert "thresholds.pre" in capsys.readouterr().err


def test_the_triton_command_prints_its_urls_and_stops_on_sigterm(backend_python: Path) -> None:
    command = [sys.executable, "-m", "cloud_service.cli", "triton", "--backend-python", str(backend_python)]
    ports = ["--grpc-port", "0", "--http-port", "0", "--metrics-port", "0"]
    process = subprocess.Popen([*command, *ports], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("grpc    127.0.0.1:")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_policy_set_then_get_round_trips_through_redis(redis_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    redis = ["--redis-url", redis_server.url]

    assert main(["policy", "get", *redis, "--edge-model-version", "b1", "--cohort", "beta"]) == 1
    assert main(["policy", "set", *redis, *POLICY_FLAGS, "--policy-version", "v3", "--post", "0.7"]) == 0
    capsys.readouterr()
    assert main(["policy", "get", *redis, "--edge-model-version", "b1", "--cohort", "beta"]) == 0

    shown = json.loads(capsys.readouterr().out)
    assert (shown["policyVersion"], shown["mode"], shown["thresholds"]["post"]) == ("v3", "ROUTING_MODE_PRE", 0.7)


def test_serve_runs_on_redis_and_triton_and_exits_cleanly_on_sigterm(redis_server: Any, triton: Any) -> None:
    port = free_port()
    flags = ["--listen", f"127.0.0.1:{port}", "--redis-url", redis_server.url, "--metrics-listen", ""]
    flags += ["--triton-url", triton.endpoints.grpc_url, "--prompt-format", "plain", "--log-format", "json"]
    command = [sys.executable, "-m", "cloud_service.cli", "serve", *flags]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        assert asyncio.run(_serving(port)) == health_pb2.HealthCheckResponse.SERVING
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, log
    messages = [json.loads(line)["message"] for line in log.splitlines()]
    assert any(m.startswith("cloud service listening") for m in messages)
    assert any(m.startswith("shutting down") for m in messages)


async def _serving(port: int) -> int:
    deadline = time.monotonic() + 20
    while True:
        try:
            status = await health_status(port)
        except grpc.RpcError:
            status = -1
        if status == health_pb2.HealthCheckResponse.SERVING or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.1)
