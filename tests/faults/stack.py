"""The real stack for the fault suite, each part a process the suite can kill: redis-server (AOF,
``appendfsync everysec``), tritonserver (the echo model), ``cloud-service serve`` on a fixed loopback
port, and simulated devices (``tests.faults.device``) with their own outboxes.

What the suite asserts is read from the devices' files and from Redis itself: every answered query's
latency, every acknowledged query id, and every outcome entry in the stream.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import redis

from cloud_service.outcomes.config import OutcomeLogConfig
from confroute.contract import ModelRef
from tests.cloud_service.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
ECHO = ROOT / "cloud_service" / "model_repository" / "echo"
COHORT = "faults"
START_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 60.0


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout_s} s:\n{log.read_text(errors='replace')[-3000:]}")


def wait_or_kill(process: subprocess.Popen[bytes], what: str) -> int:
    """The exit status; a process still running after ``EXIT_TIMEOUT_S`` hung: it is killed, and that fails."""
    try:
        return process.wait(EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"{what} hung: still running {EXIT_TIMEOUT_S} s after being asked to stop") from None


class Service:
    """``cloud-service serve`` as a child process on a port that stays the same across restarts."""

    def __init__(self, folder: Path, redis_url: str, triton_url: str) -> None:
        self.port = free_port()
        self.log = folder / "service.log"
        self._argv = [sys.executable, "-m", "cloud_service.cli", "serve", "--listen", f"127.0.0.1:{self.port}",
                      "--redis-url", redis_url, "--triton-url", triton_url, "--triton-model", "echo",
                      "--prompt-format", "plain", "--metrics-listen", "", "--grace-s", "0.5",
                      "--readiness-interval-s", "0.2"]
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(self._argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self._process, self.log)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        process, self._process = self._process, None
        if process is None:
            return 0
        process.send_signal(sig)
        return wait_or_kill(process, "the service")


@dataclass
class Device:
    """One ``tests.faults.device`` child process and its state folder."""

    device_id: str
    folder: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> int:
        (self.folder / "stop").touch()
        return wait_or_kill(self.process, self.device_id)

    def answers(self) -> list[dict[str, object]]:
        lines = (self.folder / "answers.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]

    def acked(self) -> dict[str, float]:
        """query id -> when the cloud first acknowledged it (wall time)."""
        first: dict[str, float] = {}
        for line in (self.folder / "acked.txt").read_text().splitlines():
            at, query_id = line.split()
            first.setdefault(query_id, float(at))
        return first

    def edge_model(self) -> ModelRef:
        """The device's edge model, once it has started (``model.json``)."""
        path = self.folder / "model.json"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not path.exists():
            assert self.process.poll() is None and time.monotonic() < deadline, f"{self.device_id} did not start"
            time.sleep(0.05)
        model = json.loads(path.read_text())
        return ModelRef(model["id"], model["version"])

    def summary(self) -> dict[str, object]:
        loaded: dict[str, object] = json.loads((self.folder / "summary.json").read_text())
        return loaded


def start_device(bundle: Path, folder: Path, target: str, device_id: str) -> Device:
    folder.mkdir(parents=True)
    log = (folder / "device.log").open("ab")
    with log:
        argv = [sys.executable, "-m", "tests.faults.device", str(bundle), str(folder), target, device_id, COHORT]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    return Device(device_id, folder, process)


def device_entries(redis_server: RedisServer, edge_model_version: str) -> Counter[str]:
    """How many times each query id appears in the outcome stream as a device's record."""
    stream = OutcomeLogConfig(url=redis_server.url).partition(edge_model_version, COHORT).stream
    counts: Counter[str] = Counter()
    with redis.Redis.from_url(redis_server.url) as client:
        for _, fields in client.xrange(stream):
            if fields.get(b"origin") == b"device":
                counts[fields[b"qid"].decode()] += 1
    return counts
