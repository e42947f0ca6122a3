"""Starts the cloud side for the demo (Redis-compatible server, tritonserver with the cloud model, the cloud
service) as child processes, or uses what the user points at; everything started is stopped on exit.

Identity is on, as in a deployment: a fleet CA is created for the run, the service checks bearer tokens,
and each device of ``StackConfig.devices`` is enrolled with ``cloud-service devices enroll``."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from confroute.errors import Unavailable
from confroute.signing.keys import PRIVATE_SUFFIX, PUBLIC_SUFFIX, generate_key_pair
from demo import redis
from demo.processes import child, free_port, tail, wait_for_port
from edge_agent.identity import read_secret

TRITON_MODEL = "bundle_llm"


@dataclasses.dataclass(frozen=True)
class StackConfig:
    cache: Path
    workdir: Path
    cloud_bundle: Path
    redis_url: str | None
    triton_url: str | None
    triton_model: str
    startup_timeout_s: float = 600.0
    devices: tuple[tuple[str, str], ...] = ()  # (device id, cohort) to enrol: each gets a bearer token
    text_ttl_s: int = 0  # > 0: the service holds judgeable texts for the judge (--retain-text) this long at most


@dataclasses.dataclass(frozen=True)
class Stack:
    redis_url: str
    triton_url: str
    cloud_target: str
    policy_key: Path  # the public key of the service's policy signing key: what devices trust
    signing_key: Path  # its private key: what `cloud-service policy set` and `recalibrate` sign with
    tokens: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)  # device id -> its token


def _say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


@contextlib.contextmanager
def cloud_stack(config: StackConfig) -> Iterator[Stack]:
    with contextlib.ExitStack() as stack:
        redis_url = config.redis_url or stack.enter_context(_redis(config))
        triton_url = config.triton_url or stack.enter_context(_triton(config))
        private_key, public_key = _signing_key_pair(config.workdir)
        secret = _fleet_ca(config.workdir)
        target = stack.enter_context(_service(config, redis_url, triton_url, private_key, secret))
        tokens = {device_id: _enrol(config.workdir, redis_url, secret, device_id, cohort)
                  for device_id, cohort in config.devices}
        yield Stack(redis_url, triton_url, target, public_key, private_key, tokens)
        _say("shutting the cloud side down")


def _signing_key_pair(workdir: Path) -> tuple[Path, Path]:
    """A fresh Ed25519 key pair for this run: the service signs its policies, the demo's device trusts them."""
    stem = workdir / "policy-signing"
    generate_key_pair(stem)
    return stem.with_name(stem.name + PRIVATE_SUFFIX), stem.with_name(stem.name + PUBLIC_SUFFIX)


def _fleet_ca(workdir: Path) -> Path:
    """A fleet CA for this run (``cloud-service ca init``); returns the token secret the service verifies with."""
    folder = workdir / "fleet-ca"
    _cloud_cli("ca", "init", "--ca-dir", str(folder))
    return folder / "identity.secret"


def _enrol(workdir: Path, redis_url: str, secret: Path, device_id: str, cohort: str) -> str:
    """``cloud-service devices enroll``: the device's record and its bearer token (written 0600, read back)."""
    token_file = workdir / "tokens" / device_id
    token_file.parent.mkdir(exist_ok=True)
    _cloud_cli("devices", "enroll", device_id, "--cohort", cohort, "--redis-url", redis_url,
               "--identity-secret", str(secret), "--token-file", str(token_file))
    _say(f"enrolled device {device_id} (cohort {cohort}); its token is in {token_file}")
    return read_secret(token_file, "token_file")


def _cloud_cli(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "cloud_service.cli", *args], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise Unavailable(f"cloud-service {args[0]} {args[1]} failed: {done.stderr.strip()}")


@contextlib.contextmanager
def _redis(config: StackConfig) -> Iterator[str]:
    binary = redis.server_binary(config.cache)
    port = free_port()
    folder = config.workdir / "redis"
    folder.mkdir()
    log = config.workdir / "redis.log"
    with child("redis", redis.server_command(binary, port, folder), log) as process:
        wait_for_port("the embedded Redis", process, port, log, 30.0)
        _say(f"embedded Redis-compatible server ({binary.name}) on 127.0.0.1:{port}")
        yield f"redis://127.0.0.1:{port}/0"


@contextlib.contextmanager
def _triton(config: StackConfig) -> Iterator[str]:
    ports = [free_port() for _ in range(3)]
    log = config.workdir / "triton.log"
    command = [sys.executable, "-m", "cloud_service.cli", "triton", "--bundle", str(config.cloud_bundle),
               "--grpc-port", str(ports[0]), "--http-port", str(ports[1]), "--metrics-port", str(ports[2])]
    _say(f"starting tritonserver with the cloud model {config.cloud_bundle.name} (loading takes a while)")
    with child("tritonserver", command, log, env=_triton_env()) as process:
        _wait_for_line(process, log, "grpc ", config.startup_timeout_s)
        _say(f"tritonserver ready on 127.0.0.1:{ports[0]}")
        yield f"127.0.0.1:{ports[0]}"


@contextlib.contextmanager
def _service(config: StackConfig, redis_url: str, triton_url: str, signing_key: Path, secret: Path) -> Iterator[str]:
    port = free_port()
    log = config.workdir / "cloud-service.log"
    command = [sys.executable, "-m", "cloud_service.cli", "serve", "--listen", f"127.0.0.1:{port}",
               "--triton-url", triton_url, "--triton-model", config.triton_model, "--redis-url", redis_url,
               "--metrics-listen", "", "--max-deadline-s", "120", "--policy-signing-key", str(signing_key),
               "--identity-secret", str(secret)]
    if config.text_ttl_s > 0:
        command += ["--retain-text", "--text-ttl-s", str(config.text_ttl_s)]
    with child("cloud-service", command, log) as process:
        wait_for_port("the cloud service", process, port, log, 60.0)
        _say(f"cloud service on 127.0.0.1:{port}")
        yield f"127.0.0.1:{port}"


def _triton_env() -> dict[str, str]:
    """The models' environment (numpy<2, see scripts/setup.sh): as configured, else the repo's .venv-triton."""
    if os.environ.get("CONFROUTE_TRITON_PYTHON"):
        return {}
    beside = Path(sys.prefix).parent / ".venv-triton" / "bin" / "python"
    return {"CONFROUTE_TRITON_PYTHON": str(beside)} if beside.exists() else {}


def _wait_for_line(process: subprocess.Popen[bytes], log: Path, prefix: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if any(line.startswith(prefix) for line in text.splitlines()):
            return
        if process.poll() is not None:
            raise Unavailable(f"tritonserver exited with status {process.returncode}:\n{tail(log)}")
        time.sleep(0.5)
    raise Unavailable(f"tritonserver was not ready within {timeout_s:.0f} s; see {log}")
