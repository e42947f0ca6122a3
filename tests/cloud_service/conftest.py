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
