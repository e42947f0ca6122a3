"""The processes the cloud benchmark runs on loopback ports: redis-server, tritonserver, the service.

Each is a context manager that stops what it started, also when the benchmark is interrupted. The
service runs as ``python -m cloud_service.cli serve`` in a process of its own, so that its CPU time can
be read from its kernel counters (``/proc/<pid>/stat`` through psutil) and no client work is counted in.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import grpc
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from bench.cloudbench import bare_proxy
from cloud_service.inference import TritonServerConfig, TritonServerProcess

ROOT = Path(__file__).resolve().parents[2]
ECHO_MODEL = ROOT / "cloud_service" / "model_repository" / "echo"
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU time of ``pid`` (and, with ``children``, of its live descendants)."""
    process = psutil.Process(pid)
    processes = [process, *process.children(recursive=True)] if children else [process]
    total = 0.0
    for proc in processes:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _terminate(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@contextmanager
def py_spy(pid: int, output: Path | None, *, native: bool = False) -> Iterator[None]:
    """Samples ``pid`` with py-spy into ``output`` while the block runs: a flamegraph SVG, or collapsed
    stacks (one line per stack and its sample count) when ``output`` ends in ``.txt``; a no-op without
    ``output``. ``native`` also samples C frames (grpc's Cython core, protobuf, the event loop). py-spy
    takes CPU of its own: numbers measured meanwhile are perturbed."""
    if output is None:
        yield
        return
    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    argv = [binary, "record", "--pid", str(pid), "--rate", "200", "-o", str(output)]
    argv.append("--native" if native else "--nonblocking")  # native frames are read with the process paused
    if output.suffix == ".txt":
        argv += ["--format", "raw"]
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        yield
    finally:
        _terminate(process, signal.SIGINT)  # py-spy writes its output on SIGINT


class _Child:
    """A child process with a temporary directory and a log file; stopped and cleaned up on exit."""

    def __init__(self, prefix: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.log_path = self.dir / "process.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("not started")
        return self.process.pid

    def launch(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env
            )

    def check_alive(self, what: str) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{what} exited with {self.process.returncode}:\n{_tail(self.log_path)}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            _terminate(process)
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisProcess(_Child):
    """``redis-server`` on a free loopback port, persisting as the service requires: AOF with
    ``appendfsync everysec`` in its temporary folder (no RDB snapshots)."""

    def __init__(self) -> None:
        super().__init__("confroute-bench-redis-")
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> RedisProcess:
        binary = os.environ.get("CONFROUTE_REDIS_SERVER") or shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server not found: apt-get install redis-server, or set CONFROUTE_REDIS_SERVER")
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir), "--save", ""]
        argv += ["--appendonly", "yes", "--appendfsync", "everysec"]
        self.launch([*argv, "--daemonize", "no", "--protected-mode", "no"])
        try:
            self._wait_ping()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ping(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._answers_ping():
            self.check_alive("redis-server")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer PING:\n{_tail(self.log_path)}")
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False


@dataclass(frozen=True)
class ServiceSettings:
    """How the service under test is started."""

    triton_url: str
    redis_url: str
    log_level: str = "INFO"
    max_inflight: int = 64
    identity_secret: Path | None = None  # bearer tokens hashed under it are required (None: no authentication)
    rate_escalations_per_s: float = 0.0  # per device (0: no rate limit)
    rate_escalation_burst: int = 40


class _GrpcChild(_Child):
    """A child serving gRPC on a free loopback port; :meth:`start` returns once :meth:`_ready` says so."""

    what = "the process"

    def __init__(self, prefix: str) -> None:
        super().__init__(prefix)
        self.port = free_port()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.launch(argv, env)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _ready(self, channel: grpc.Channel) -> bool:
        raise NotImplementedError

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        with grpc.insecure_channel(self.address) as channel:
            while True:
                self.check_alive(self.what)
                try:
                    if self._ready(channel):
                        return
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.what} was not ready in time:\n{_tail(self.log_path)}")
                time.sleep(0.1)


class ServiceProcess(_GrpcChild):
    """``python -m cloud_service.cli serve`` on a free port, ready once its health check says SERVING."""

    what = "the cloud service"

    def __init__(self, settings: ServiceSettings) -> None:
        super().__init__("confroute-bench-service-")
        self.settings = settings

    def __enter__(self) -> ServiceProcess:
        s = self.settings
        argv = [sys.executable, "-m", "cloud_service.cli", "serve", "--listen", self.address]
        argv += ["--triton-url", s.triton_url, "--triton-model", "echo", "--redis-url", s.redis_url]
        argv += ["--metrics-listen", "", "--log-level", s.log_level, "--max-in-flight", str(s.max_inflight)]
        if s.identity_secret is not None:
            argv += ["--identity-secret", str(s.identity_secret), "--rate-escalations-per-s",
                     str(s.rate_escalations_per_s), "--rate-escalation-burst", str(s.rate_escalation_burst)]
        self.start(argv, {k: v for k, v in os.environ.items() if not k.startswith("CONFROUTE_CLOUD_")})
        return self

    def _ready(self, channel: grpc.Channel) -> bool:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


class BareProxyProcess(_GrpcChild):
    """:mod:`bench.cloudbench.bare_proxy` on a free port, ready once a call through it is answered."""

    what = "the bare proxy"

    def __init__(self, triton_url: str, prompt: str, parameters: str) -> None:
        super().__init__("confroute-bench-bare-")
        self._argv = [sys.executable, "-m", "bench.cloudbench.bare_proxy", self.address, triton_url, prompt, parameters]

    def __enter__(self) -> BareProxyProcess:
        self.start(self._argv)
        return self

    def _ready(self, channel: grpc.Channel) -> bool:
        channel.unary_unary(bare_proxy.METHOD)(b"", timeout=1.0)
        return True


class EchoTriton:
    """tritonserver serving only the echo model (from a repository of one link), on free ports."""

    def __init__(self, backend_python: Path | None) -> None:
        self._backend_python = backend_python
        self._stack = ExitStack()
        self.process: TritonServerProcess | None = None

    def __enter__(self) -> EchoTriton:
        folder = Path(tempfile.mkdtemp(prefix="confroute-bench-models-"))
        self._stack.callback(shutil.rmtree, folder, True)
        (folder / "echo").symlink_to(ECHO_MODEL, target_is_directory=True)
        self.process = TritonServerProcess(TritonServerConfig(folder, backend_python=self._backend_python))
        self._stack.callback(self.process.stop)
        try:
            self.process.start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stack.close()

    @property
    def grpc_url(self) -> str:
        assert self.process is not None
        return self.process.endpoints.grpc_url

    @property
    def pid(self) -> int:
        assert self.process is not None and self.process.pid is not None
        return self.process.pid
