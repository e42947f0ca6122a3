"""A real 3-node Redis Cluster on loopback ports for tests: ``redis-server --cluster-enabled yes`` nodes
joined by ``redis-cli --cluster create`` (no replicas), in a temporary directory."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.cloud_service.redis_server import find_redis_server, free_port

STARTUP_TIMEOUT_S = 20.0
BUS_OFFSET = 10_000  # each node also listens on its port + 10000 (the cluster bus)


class RedisClusterMissing(RuntimeError):
    """No ``redis-server`` or ``redis-cli`` binary."""


def _cluster_port() -> int:
    """A free port whose bus port (port + 10000) is free too."""
    while True:
        port = free_port()
        if port + BUS_OFFSET > 65535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + BUS_OFFSET))
            except OSError:
                continue
        return port


class RedisCluster:
    """Three primaries covering all 16384 slots; a context manager that starts and removes them."""

    def __init__(self, nodes: int = 3) -> None:
        try:
            self._server = find_redis_server()
        except RuntimeError as exc:
            raise RedisClusterMissing(str(exc)) from exc
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RedisClusterMissing("redis-cli not found: apt-get install redis-tools")
        self._cli = cli
        self.ports = [_cluster_port() for _ in range(nodes)]
        self._dir = Path(tempfile.mkdtemp(prefix="confroute-redis-cluster-"))
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """A seed node's URL; the cluster client discovers the others."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def __enter__(self) -> RedisCluster:
        try:
            for port in self.ports:
                self._processes.append(self._start_node(port))
            self._create()
            self._wait_ok()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _start_node(self, port: int) -> subprocess.Popen[bytes]:
        folder = self._dir / str(port)
        folder.mkdir()
        command = [str(self._server), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                   "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--save", "",
                   "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "no",
                   "--loglevel", "warning"]
        log = (folder / "redis.log").open("ab")
        with log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
        self._wait_port(port, process)
        return process

    def _wait_port(self, port: int, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server on {port} exited with {process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"redis-server on {port} did not answer within {STARTUP_TIMEOUT_S} s")

    def _create(self) -> None:
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run([self._cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=STARTUP_TIMEOUT_S)

    def _wait_ok(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            states = [subprocess.run([self._cli, "-p", str(port), "cluster", "info"], capture_output=True,
                                     text=True, timeout=5).stdout for port in self.ports]
            if all("cluster_state:ok" in state for state in states):
                return
            time.sleep(0.1)
        raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")

    def _stop(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes = []
