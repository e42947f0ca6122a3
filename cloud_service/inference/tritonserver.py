"""Run NVIDIA Triton's ``tritonserver`` as a child process on loopback ports.

The binary comes from the ``nvidia-pytriton`` wheel (0.7.0 bundles tritonserver 2.51.0 with only the
python backend). Outside NVIDIA's containers it needs three things, all set up here:

- a backend directory ``backends/python/`` holding the python backend and the backend *stub* built for
  the Python version of the environment the models run in (the wheel ships one stub per version);
- ``PATH`` starting with that environment's ``bin``: the stub embeds CPython and finds its
  ``sys.prefix`` from the first ``python3`` on ``PATH``;
- ``LD_LIBRARY_PATH`` with the interpreter's ``LIBDIR`` (the stub links ``libpython3.X.so``; on a host
  without a system libpython of that version nothing else provides it) and the wheel's
  ``nvidia_pytriton.libs`` (needed once the stub is not at its original place).

The stub is compiled against the numpy 1.x ABI: with numpy 2 in its environment every tensor reaches the
model empty or garbled. The models' environment (``backend_python``) must therefore hold numpy<2 -- a venv
with ``pip install nvidia-pytriton==0.7.0`` does. Clients (tritonclient) are fine with numpy 2, so the
process that starts the server may run in another environment.

Every failure to find, start or reach the server is raised as :class:`confroute.errors.Unavailable`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from confroute.errors import Unavailable

logger = logging.getLogger(__name__)

_PROBE_TIMEOUT_S = 30.0
_POLL_INTERVAL_S = 0.05
_LOG_TAIL_BYTES = 64_000
_LOG_SUMMARY_LINES = 20
# glog's error lines ("E1126 01:20:49.719543 ...") and the binary's last words ("error: creating server").
_ERROR_LINE = re.compile(r"^(E\d{4} |error: )")
_SHM_DIR = Path("/dev/shm")

# Run by the models' interpreter: finds the wheel without importing pytriton (whose own dependencies a
# --no-deps install lacks) and reads numpy's version without importing numpy.
_PROBE = """
import importlib.metadata, importlib.util, json, sys, sysconfig
spec = importlib.util.find_spec("pytriton")
try:
    numpy = importlib.metadata.version("numpy")
except importlib.metadata.PackageNotFoundError:
    numpy = None
print(json.dumps({
    "python_version": "%d.%d" % sys.version_info[:2],
    "libdir": sysconfig.get_config_var("LIBDIR") or "",
    "pytriton": list(spec.submodule_search_locations or []) if spec else [],
    "numpy": numpy,
}))
"""


@dataclass(frozen=True)
class BackendEnvironment:
    """The Python environment the python-backend models run in, and the nvidia-pytriton wheel inside it."""

    python: Path
    python_version: str
    libdir: Path | None
    package_dir: Path
    numpy_version: str | None

    @property
    def dist_dir(self) -> Path:
        return self.package_dir / "tritonserver"

    @property
    def tritonserver(self) -> Path:
        return self.dist_dir / "bin" / "tritonserver"

    @property
    def libs_dir(self) -> Path:
        return self.package_dir.parent / "nvidia_pytriton.libs"

    @property
    def python_backend_dir(self) -> Path:
        return self.dist_dir / "backends" / "python"

    @property
    def stub(self) -> Path:
        return self.dist_dir / "python_backend_stubs" / self.python_version / "triton_python_backend_stub"


@dataclass(frozen=True)
class TritonServerConfig:
    """How to run one ``tritonserver``. A port of 0 means "pick a free one"."""

    model_repository: Path
    backend_python: Path | None = None  # interpreter of the models' environment; None: this one
    host: str = "127.0.0.1"
    grpc_port: int = 0
    http_port: int = 0
    metrics_port: int = 0
    log_verbose: int = 0
    log_file: Path | None = None  # None: a temporary file, removed by stop()
    startup_timeout_s: float = 30.0
    stop_timeout_s: float = 10.0
    exit_timeout_s: int = 5  # tritonserver's own grace period for in-flight requests

    def __post_init__(self) -> None:
        for name in ("grpc_port", "http_port", "metrics_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ValueError(f"{name} must be in [0, 65535], got {port}")
        if self.startup_timeout_s <= 0 or self.stop_timeout_s <= 0 or self.exit_timeout_s < 0:
            raise ValueError("timeouts must be positive")


@dataclass(frozen=True)
class Endpoints:
    """Where a started server listens."""

    host: str
    grpc_port: int
    http_port: int
    metrics_port: int

    @property
    def grpc_url(self) -> str:
        """``host:port``, the form ``tritonclient.grpc`` expects."""
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"


def probe_backend_environment(python: Path | None = None) -> BackendEnvironment:
    """Describe the environment of ``python`` (default: this interpreter) and its nvidia-pytriton wheel."""
    interpreter = python or Path(sys.executable)
    try:
        done = subprocess.run(
            [str(interpreter), "-I", "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
            check=True,
        )
        facts = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise Unavailable(f"cannot inspect the Python environment of {interpreter}: {exc}") from exc
    if not facts["pytriton"]:
        raise Unavailable(
            f"nvidia-pytriton is not installed in the environment of {interpreter}; "
            "install it there with `pip install nvidia-pytriton==0.7.0`"
        )
    return BackendEnvironment(
        python=interpreter,
        python_version=facts["python_version"],
        libdir=Path(facts["libdir"]) if facts["libdir"] else None,
        package_dir=Path(facts["pytriton"][0]),
        numpy_version=facts["numpy"],
    )


def find_tritonserver(python: Path | None = None) -> Path:
    """The ``tritonserver`` binary of the nvidia-pytriton wheel in ``python``'s environment."""
    return _executable(probe_backend_environment(python).tritonserver)


class TritonServerProcess:
    """One ``tritonserver`` child process; a context manager that starts it and stops it."""

    def __init__(self, config: TritonServerConfig) -> None:
        self._config = config
        self._process: subprocess.Popen[bytes] | None = None
        self._endpoints: Endpoints | None = None
        self._workdir: Path | None = None
        self._log_path: Path | None = None
        self._shm_prefix = ""

    @property
    def endpoints(self) -> Endpoints:
        if self._endpoints is None:
            raise RuntimeError("tritonserver is not running; call start() first")
        return self._endpoints

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Endpoints:
        """Launch the server and wait until ``/v2/health/ready`` answers 200 (all models loaded)."""
        if self._process is not None:
            raise RuntimeError("tritonserver is already started")
        repository = _existing_repository(self._config.model_repository)
        environment = probe_backend_environment(self._config.backend_python)
        _check_numpy(environment)
        started = time.monotonic()
        try:
            process = self._launch(repository, environment)
            _wait_ready(process, self.endpoints, self._config.startup_timeout_s, self._log_summary)
        except BaseException:
            self.stop()
            raise
        logger.info(
            "tritonserver pid %s ready in %.2f s on grpc %s",
            process.pid,
            time.monotonic() - started,
            self.endpoints.grpc_url,
        )
        return self.endpoints

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to the whole process group after ``stop_timeout_s``; idempotent."""
        process, self._process, self._endpoints = self._process, None, None
        if process is not None:
            _terminate(process, self._config.stop_timeout_s)
        if self._shm_prefix:
            _remove_shared_memory(self._shm_prefix)
            self._shm_prefix = ""
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> TritonServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _launch(self, repository: Path, environment: BackendEnvironment) -> subprocess.Popen[bytes]:
        self._workdir = workdir = Path(tempfile.mkdtemp(prefix="confroute-tritonserver-"))
        self._log_path = self._config.log_file or workdir / "tritonserver.log"
        # The python backend names its /dev/shm regions after this prefix; stop() sweeps what a killed
        # server leaves behind.
        self._shm_prefix = f"confroute-triton-{os.getpid()}-{secrets.token_hex(4)}-"
        self._endpoints = _pick_endpoints(self._config)
        argv = _command(
            binary=_executable(environment.tritonserver),
            config=self._config,
            repository=repository,
            backends=_build_backend_dir(workdir, environment),
            endpoints=self._endpoints,
            shm_prefix=self._shm_prefix,
        )
        try:
            with self._log_path.open("wb") as log:
                self._process = subprocess.Popen(
                    argv,
                    env=_child_env(environment),
                    cwd=workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, so stop() reaches the stubs too
                )
        except OSError as exc:
            raise Unavailable(f"cannot launch {argv[0]}: {exc}") from exc
        return self._process

    def _log_summary(self) -> str:
        if self._log_path is None:
            return ""
        with self._log_path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - _LOG_TAIL_BYTES))
            return _summarise_log(log.read().decode("utf-8", errors="replace"))


def _existing_repository(path: Path) -> Path:
    repository = path.resolve()
    if not repository.is_dir():
        raise Unavailable(f"model repository {path} does not exist or is not a directory")
    return repository


def _check_numpy(environment: BackendEnvironment) -> None:
    version = environment.numpy_version
    if version is None or int(version.split(".")[0]) >= 2:
        found = "no numpy" if version is None else f"numpy {version}"
        raise Unavailable(
            f"the environment of {environment.python} has {found}; the python backend stub of "
            "nvidia-pytriton 0.7.0 needs numpy<2 (numpy 2 silently corrupts tensors). Point "
            "backend_python at an interpreter of a venv made with `pip install nvidia-pytriton==0.7.0`"
        )


def _executable(binary: Path) -> Path:
    if not os.access(binary, os.X_OK):
        raise Unavailable(f"no executable tritonserver at {binary}; reinstall nvidia-pytriton==0.7.0")
    return binary


def _build_backend_dir(workdir: Path, environment: BackendEnvironment) -> Path:
    """``backends/python/`` with the backend library, its Python utilities and the matching stub."""
    if not environment.stub.is_file():
        raise Unavailable(
            f"nvidia-pytriton at {environment.package_dir} has no python backend stub for "
            f"Python {environment.python_version}"
        )
    backends = workdir / "backends"
    python_dir = backends / "python"
    python_dir.mkdir(parents=True)
    sources = (
        environment.python_backend_dir / "libtriton_python.so",
        environment.python_backend_dir / "triton_python_backend_utils.py",
        environment.stub,
    )
    for source in sources:
        (python_dir / source.name).symlink_to(source)
    return backends


def _pick_endpoints(config: TritonServerConfig) -> Endpoints:
    """Resolve ports of 0 to free ones, all distinct (held open together while they are picked)."""
    ports = [config.grpc_port, config.http_port, config.metrics_port]
    with ExitStack() as stack:
        for index, port in enumerate(ports):
            if port == 0:
                sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                sock.bind((config.host, 0))
                ports[index] = sock.getsockname()[1]
    return Endpoints(config.host, grpc_port=ports[0], http_port=ports[1], metrics_port=ports[2])


def _command(
    *,
    binary: Path,
    config: TritonServerConfig,
    repository: Path,
    backends: Path,
    endpoints: Endpoints,
    shm_prefix: str,
) -> list[str]:
    host = endpoints.host
    return [
        str(binary),
        f"--model-repository={repository}",
        f"--backend-directory={backends}",
        f"--backend-config=python,shm-region-prefix-name={shm_prefix}",
        f"--grpc-address={host}",
        f"--grpc-port={endpoints.grpc_port}",
        f"--http-address={host}",
        f"--http-port={endpoints.http_port}",
        f"--metrics-address={host}",
        f"--metrics-port={endpoints.metrics_port}",
        "--allow-grpc=true",
        "--allow-http=true",
        "--allow-metrics=true",
        "--allow-gpu-metrics=false",
        "--strict-readiness=true",
        "--exit-on-error=true",
        f"--exit-timeout-secs={config.exit_timeout_s}",
        f"--log-verbose={config.log_verbose}",
    ]


def _child_env(environment: BackendEnvironment) -> dict[str, str]:
    env = dict(os.environ)
    # The stub must see exactly backend_python's environment, not this process's.
    env.pop("PYTHONHOME", None)
    env.pop("PYTHONPATH", None)
    env["PATH"] = _join_paths(str(environment.python.parent), env.get("PATH", ""))
    libdir = str(environment.libdir) if environment.libdir else ""
    env["LD_LIBRARY_PATH"] = _join_paths(libdir, str(environment.libs_dir), env.get("LD_LIBRARY_PATH", ""))
    return env


def _join_paths(*parts: str) -> str:
    # An empty entry would mean "the current directory" to the loader and the shell.
    return os.pathsep.join(part for part in parts if part)


def _wait_ready(
    process: subprocess.Popen[bytes], endpoints: Endpoints, timeout_s: float, tail: Callable[[], str]
) -> None:
    url = f"{endpoints.http_url}/v2/health/ready"
    deadline = time.monotonic() + timeout_s
    while True:
        code = process.poll()
        if code is not None:
            raise Unavailable(f"tritonserver exited with code {code} before it was ready:\n{tail()}")
        if _answers_ok(url):
            return
        if time.monotonic() > deadline:
            raise Unavailable(f"tritonserver was not ready after {timeout_s:g} s:\n{tail()}")
        time.sleep(_POLL_INTERVAL_S)


def _answers_ok(url: str) -> bool:
    # Loopback only: an http_proxy in the environment must not capture the health checks.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=1.0) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def _terminate(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning(
                "tritonserver pid %s ignored SIGTERM for %.1f s; killing it", process.pid, timeout_s
            )
    # Stubs of a crashed or killed server would otherwise outlive it.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _summarise_log(text: str) -> str:
    """The error lines of the server log (else its last lines), without the status tables."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith(("|", "+"))]
    errors = [line for line in lines if _ERROR_LINE.match(line)]
    return "\n".join((errors or lines)[-_LOG_SUMMARY_LINES:])


def _remove_shared_memory(prefix: str) -> None:
    for region in _SHM_DIR.glob(f"{prefix}*"):
        region.unlink(missing_ok=True)
