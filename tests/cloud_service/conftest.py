"""Fixtures shared by the cloud service's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cloud_service.redis_server import RedisServer, RedisServerMissing


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh, empty redis-server on a free loopback port (AOF, fsync every second), stopped after the test."""
    try:
        server = RedisServer()
    except RedisServerMissing as exc:
        pytest.skip(str(exc))
    with server:
        yield server


@pytest.fixture
def crash_safe_redis() -> Iterator[RedisServer]:
    """A redis-server whose acknowledged writes survive its SIGKILL on any version: ``appendfsync always``
    (with ``everysec`` and no ``WAITAOF``, Redis < 7.2 may postpone an acknowledged write past a crash)."""
    try:
        server = RedisServer(appendfsync="always")
    except RedisServerMissing as exc:
        pytest.skip(str(exc))
    with server:
        yield server
