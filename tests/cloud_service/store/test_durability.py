"""An acknowledgement is a promise: a Redis without persistence is refused, an acknowledged outcome
survives a SIGKILL of Redis, and the promise is read from the server even where CONFIG is not allowed."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import signal
import subprocess
import sys
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from cloud_service.config import ServiceConfig, add_arguments, config_from
from cloud_service.outcomes import OutcomeLogConfig, RedisOutcomeLog
from cloud_service.redis_client import connect
from cloud_service.store.durability import Persistence, decide, inspect
from confroute.errors import Unavailable
from confroute.paths import cache_dir
from tests.cloud_service.outcomes.samples import logged_ids, outcomes
from tests.cloud_service.redis_server import RedisServer, RedisServerMissing

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[3]
T = TypeVar("T")


def run(scenario: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(scenario, 30))


@pytest.fixture
def volatile_redis() -> Iterator[RedisServer]:
    """A redis-server without an append-only file: empty after a restart."""
    try:
        server = RedisServer(appendonly=False)
    except RedisServerMissing as exc:
        pytest.skip(str(exc))
    with server:
        yield server


async def persistence_of(url: str) -> Persistence:
    client = connect(url, connect_timeout_s=1.0, command_timeout_s=5.0)
    try:
        return await inspect(client)
    finally:
        await client.aclose()


def test_the_outcome_log_refuses_a_redis_without_an_append_only_file(volatile_redis: RedisServer) -> None:
    async def scenario() -> None:
        log = RedisOutcomeLog(OutcomeLogConfig(url=volatile_redis.url))
        try:
            await log.start()
        finally:
            await log.close()

    with pytest.raises(Unavailable, match="--allow-volatile-redis"):
        run(scenario())


def test_allowing_a_volatile_redis_warns_loudly(volatile_redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    config = OutcomeLogConfig(url=volatile_redis.url, allow_volatile=True)

    async def scenario() -> None:
        async with RedisOutcomeLog(config) as log:
            await log.store(outcomes(3))

    with caplog.at_level(logging.WARNING):
        run(scenario())

    assert logged_ids(config) == ["q-0", "q-1", "q-2"]
    assert any("VOLATILE REDIS" in message for message in caplog.messages)


def test_an_aof_redis_is_accepted_and_its_promise_read_from_config(redis_server: RedisServer) -> None:
    persistence = run(persistence_of(redis_server.url))

    assert (persistence.aof, persistence.fsync, persistence.via) == (True, "everysec", "CONFIG GET")
    assert "a Redis crash" in persistence.promise()
    if not persistence.waitaof:  # Redis < 7.2: the fsync policy bounds what a power cut loses
        assert "power cut can lose about the last 1-2 s" in persistence.promise()


def test_without_config_permission_the_aof_is_read_from_info(redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url) as admin:
        admin.execute_command("ACL", "SETUSER", "writer", "on", ">secret", "~*", "&*", "+@all", "-config")
        admin.execute_command("ACL", "SETUSER", "blind", "on", ">secret", "~*", "&*", "+@all", "-config", "-info")
    base = redis_server.url.replace("redis://", "redis://{user}:secret@")

    writer = run(persistence_of(base.format(user="writer")))
    blind = run(persistence_of(base.format(user="blind")))

    assert (writer.aof, writer.fsync, writer.via) == (True, None, "INFO persistence")
    assert "Redis's default assumed" in writer.promise()
    assert blind.aof is None
    with pytest.raises(Unavailable, match="cannot be read"):
        decide(blind, cluster=False, allow_volatile=False, wait_aof_ms=1000)


def test_waitaof_is_issued_only_where_the_server_has_it() -> None:
    with_waitaof = Persistence(aof=True, fsync="everysec", waitaof=True, via="CONFIG GET")
    without = Persistence(aof=True, fsync="everysec", waitaof=False, via="CONFIG GET")

    assert decide(with_waitaof, cluster=False, allow_volatile=False, wait_aof_ms=1500).wait_aof_ms == 1500
    assert decide(with_waitaof, cluster=True, allow_volatile=False, wait_aof_ms=1500).wait_aof_ms == 0
    assert decide(without, cluster=False, allow_volatile=False, wait_aof_ms=1500).wait_aof_ms == 0
    assert "power cut" in with_waitaof.promise()


def test_a_server_that_may_lose_acknowledged_writes_in_a_crash_is_warned_about(
        caplog: pytest.LogCaptureFixture) -> None:
    unsafe = Persistence(aof=True, fsync="everysec", waitaof=False, via="CONFIG GET")
    safe = [Persistence(aof=True, fsync="always", waitaof=False, via="CONFIG GET"),
            Persistence(aof=True, fsync="everysec", waitaof=True, via="CONFIG GET")]

    with caplog.at_level(logging.INFO, logger="cloud_service.store.durability"):
        for persistence in safe:
            decide(persistence, cluster=False, allow_volatile=False, wait_aof_ms=1000)
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        decide(unsafe, cluster=False, allow_volatile=False, wait_aof_ms=1000)

    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1 and "appendfsync always" in warned[0] and "WAITAOF" in warned[0]
    assert not unsafe.crash_safe and all(p.crash_safe for p in safe)


def valkey_binary() -> Path:
    """The demo's valkey-server (it has WAITAOF), when the demo has fetched it into the cache."""
    found = cache_dir(os.environ) / "bin" / f"valkey-server-{platform.machine()}"
    if not found.is_file():
        pytest.skip(f"no valkey-server at {found} (make demo fetches it)")
    return found


def test_on_a_server_with_waitaof_an_acknowledgement_waits_for_the_fsync() -> None:
    with RedisServer(binary=valkey_binary()) as server:
        config = OutcomeLogConfig(url=server.url, wait_aof_ms=1500)

        async def scenario() -> tuple[int, tuple[str, ...]]:
            async with RedisOutcomeLog(config) as log:
                ack = await log.ack_policy()
                result = await log.store(outcomes(50))
                return ack.wait_aof_ms, result.stored

        wait_aof_ms, stored = run(scenario())
        server.stop(signal.SIGKILL)
        server.start()

        assert wait_aof_ms == 1500
        assert sorted(logged_ids(config)) == sorted(stored)


def test_every_acknowledged_outcome_survives_a_sigkill_of_redis(crash_safe_redis: RedisServer) -> None:
    redis_server = crash_safe_redis
    config = OutcomeLogConfig(url=redis_server.url)

    async def scenario() -> list[str]:
        acknowledged: list[str] = []
        async with RedisOutcomeLog(config) as log:
            for batch in range(20):
                result = await log.store(outcomes(100, start=100 * batch))
                acknowledged += result.stored
        return acknowledged

    acknowledged = run(scenario())
    redis_server.stop(signal.SIGKILL)
    redis_server.start()

    assert len(acknowledged) == 2000
    assert sorted(logged_ids(config)) == sorted(acknowledged)


def test_cloud_service_serve_refuses_a_volatile_redis_and_names_the_flag(volatile_redis: RedisServer) -> None:
    flags = ["--listen", "127.0.0.1:0", "--redis-url", volatile_redis.url, "--triton-url", "127.0.0.1:1",
             "--metrics-listen", ""]

    done = subprocess.run([sys.executable, "-m", "cloud_service.cli", "serve", *flags], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, check=False)

    assert done.returncode == 1, done.stderr
    assert "--allow-volatile-redis" in done.stderr


def test_the_flag_and_its_variable_allow_a_volatile_redis() -> None:
    from_flag = config_from(parser_of_serve().parse_args(["--allow-volatile-redis"]), {})
    from_env = config_from(argparse.Namespace(), {"CONFROUTE_CLOUD_ALLOW_VOLATILE_REDIS": "1"})

    assert from_flag.allow_volatile_redis and from_env.allow_volatile_redis
    assert not ServiceConfig().allow_volatile_redis


def parser_of_serve() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser
