"""The real stack for the fault suite, each part a process the suite can kill: redis-server (AOF,
``appendfsync everysec``), tritonserver (the echo model), ``cloud-service serve`` on a fixed loopback
port, and simulated devices (``tests.faults.device``) with their own outboxes.

What the suite asserts is read from the devices' files and from Redis itself: every answered query's
latency, every acknowledged query id, and every outcome entry in the stream.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import redis

from cloud_service.outcomes.config import OutcomeLogConfig
from confroute.contract import ModelRef
from tests.cloud_service.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
ECHO = ROOT / "cloud_service" / "model_repository" / "echo"
FAULTY = Path(__file__).resolve().parent / "model_repository" / "faulty"
FAULTY_CONTROL = "faulty-control.json"
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


def add_faulty_model(repository: Path) -> Path:
    """Adds the ``faulty`` model (the echo model's answers, slowed or failing on demand) to a Triton model
    repository; returns its control file (see ``model_repository/faulty/1/model.py``)."""
    control = repository / FAULTY_CONTROL
    folder = repository / "faulty"
    folder.mkdir()
    (folder / "1").symlink_to(FAULTY / "1", target_is_directory=True)
    config = (ECHO / "config.pbtxt").read_text().replace('name: "echo"', 'name: "faulty"')
    parameters = {"control": control, "echo_model": ECHO / "1" / "model.py"}
    config += "".join(f'parameters {{ key: "{key}" value {{ string_value: "{value}" }} }}\n'
                      for key, value in parameters.items())
    (folder / "config.pbtxt").write_text(config)
    return control


class TritonFaults:
    """Slows or fails the ``faulty`` model's answers, and heals it, while tritonserver runs."""

    def __init__(self, control: Path) -> None:
        self._control = control

    def slow(self, delay_s: float) -> None:
        self._write({"delay_s": delay_s})

    def fail(self, message: str) -> None:
        self._write({"error": message})

    def heal(self) -> None:
        self._write({})

    def _write(self, fault: dict[str, object]) -> None:
        tmp = self._control.with_suffix(".tmp")
        tmp.write_text(json.dumps(fault))
        os.replace(tmp, self._control)


class Service:
    """``cloud-service serve`` as a child process on a port that stays the same across restarts, with its
    Prometheus metrics on another."""

    def __init__(self, folder: Path, redis_url: str, triton_url: str, model: str = "echo") -> None:
        self.port = free_port()
        self.metrics_port = free_port()
        self.log = folder / "service.log"
        self._argv = [sys.executable, "-m", "cloud_service.cli", "serve", "--listen", f"127.0.0.1:{self.port}",
                      "--redis-url", redis_url, "--triton-url", triton_url, "--triton-model", model,
                      "--prompt-format", "plain", "--metrics-listen", f"127.0.0.1:{self.metrics_port}",
                      "--grace-s", "0.5", "--readiness-interval-s", "0.2"]
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(self._argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self._process, self.log)

    def metrics(self) -> dict[str, float]:
        """The service's own metrics now (``confroute_*``): ``name{labels}`` (as exposed) -> value."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as response:
            text = response.read().decode()
        return {match[1]: float(match[2]) for match in _SAMPLE.finditer(text) if match[1].startswith("confroute_")}

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        process, self._process = self._process, None
        if process is None:
            return 0
        process.send_signal(sig)
        return wait_or_kill(process, "the service")


_SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$", re.MULTILINE)


def metric(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    return sum(value for key, value in samples.items()
               if key.split("{")[0] == name and all(label in key for label in wanted))


def shown(samples: dict[str, float]) -> str:
    """The samples, one a line (histogram buckets left out), for an assertion's message."""
    return "\n".join(f"{key} {value}" for key, value in samples.items() if "_bucket" not in key)


@dataclass
class Device:
    """One ``tests.faults.device`` child process and its state folder."""

    device_id: str
    folder: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> int:
        (self.folder / "stop").touch()
        return wait_or_kill(self.process, self.device_id)

    def wait_for_traffic(self, after: int = 0) -> None:
        """Returns once the device has answered a query, beyond the first ``after`` (a restarted device's
        earlier ones); its start takes seconds on a loaded machine."""
        path = self.folder / "answers.jsonl"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (path.exists() and len(path.read_text().splitlines()) > after):
            assert self.process.poll() is None, f"{self.device_id} exited: {(self.folder / 'device.log').read_text()}"
            assert time.monotonic() < deadline, f"{self.device_id} answered nothing in {START_TIMEOUT_S} s"
            time.sleep(0.05)

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


def start_device(bundle: Path, folder: Path, target: str, device_id: str,
                 env: dict[str, str] | None = None) -> Device:
    """A device process; ``env``: what its environment adds (``Options.to_env()``, the skewed clock's)."""
    folder.mkdir(parents=True, exist_ok=True)
    log = (folder / "device.log").open("ab")
    with log:
        argv = [sys.executable, "-m", "tests.faults.device", str(bundle), str(folder), target, device_id, COHORT]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
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
