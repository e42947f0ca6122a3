"""A real ``redis-server`` for tests: a free loopback port, a temporary directory, no RDB snapshots.

The port stays the same across ``stop()`` and ``start()``, so a test can take Redis away from a client
and give it back where the client expects it. By default the server persists as the cloud service
requires (AOF, ``appendfsync everysec``; ``appendfsync=`` chooses another policy): the data survives a
restart, a SIGKILL included (what Redis wrote to its AOF is in the page cache), except, with ``everysec``,
the writes Redis postponed behind a slow fsync (up to ~2 s; ``docs/faults.md``). ``appendonly=False`` gives
a volatile server, empty after a restart, which the service refuses unless told ``allow_volatile``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

STARTUP_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


class RedisServerMissing(RuntimeError):
    """No ``redis-server`` binary (apt-get install redis-server, or set CONFROUTE_REDIS_SERVER)."""


def find_redis_server() -> Path:
    """``$CONFROUTE_REDIS_SERVER`` or ``redis-server`` on ``PATH``."""
    configured = os.environ.get("CONFROUTE_REDIS_SERVER") or shutil.which("redis-server")
    if not configured or not Path(configured).is_file():
        raise RedisServerMissing("redis-server not found: apt-get install redis-server, or set CONFROUTE_REDIS_SERVER")
    return Path(configured)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` child process; a context manager that starts it and removes its files."""

    def __init__(self, *, appendonly: bool = True, password: str | None = None, binary: Path | None = None,
                 appendfsync: str = "everysec") -> None:
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.password = password
        self.port = free_port()
        self._binary = binary or find_redis_server()
        self._dir = Path(tempfile.mkdtemp(prefix="confroute-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:<port>/0``."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def folder(self) -> Path:
        """Where the server keeps its files (the AOF under ``appendonlydir/``) and its log."""
        return self._dir

    def start(self) -> None:
        """Starts the server on its port and waits until it answers PING (after loading its AOF)."""
        if self.running:
            return
        log = (self._dir / "redis.log").open("ab")
        with log:
            self._process = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT, cwd=self._dir)
        self._wait_until_ready()

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stops the server: SIGTERM is a clean shutdown, SIGKILL a crash."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        """Stops and starts again on the same port."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's log, for failure messages."""
        path = self._dir / "redis.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _command(self) -> list[str]:
        command = [str(self._binary), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self._dir)]
        command += ["--save", "", "--appendonly", "yes" if self.appendonly else "no", "--daemonize", "no"]
        command += ["--appendfsync", self.appendfsync]
        command += ["--loglevel", "warning", "--protected-mode", "no"]
        if self.password:
            command += ["--requirepass", self.password]
        return command

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode}:\n{self.log_tail()}")
            if self._answers_ping():
                return
            time.sleep(0.01)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"redis-server did not answer within {STARTUP_TIMEOUT_S} s:\n{self.log_tail()}")

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                if self.password:
                    conn.sendall(f"AUTH {self.password}\r\n".encode())
                    conn.recv(64)
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False
