"""Fixtures of the identity tests: a fleet on a real Redis, and authenticated services on a loop thread."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.cloud_service.identity.stack import Fleet, SecureService, make_fleet, start_secure
from tests.cloud_service.redis_server import RedisServer
from tests.harness import LoopThread


@pytest.fixture
def fleet(tmp_path: Path, redis_server: RedisServer) -> Fleet:
    return make_fleet(tmp_path, redis_server.url)


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    thread = LoopThread("identity-loop")
    yield thread
    thread.close()


SecureFactory = Callable[..., SecureService]


@pytest.fixture
def secure_service(fleet: Fleet, loop: LoopThread) -> Iterator[SecureFactory]:
    """Starts authenticated services (``mtls=True``: client certificates; else bearer tokens)."""
    stack = AsyncExitStack()

    def start(*, mtls: bool, **overrides: Any) -> SecureService:
        service = loop.run(start_secure(fleet, stack, mtls=mtls, **overrides))
        service.loop = loop
        return service

    yield start
    loop.run(stack.aclose())
