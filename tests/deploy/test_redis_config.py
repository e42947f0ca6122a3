"""The Redis the manifests run: the shipped redis.conf and the ACL line docs/deployment.md gives, on a real
redis-server, serve the service's outcome log and policy store as the ``confroute`` user, and nothing else."""

from __future__ import annotations

import asyncio
import hashlib
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from cloud_service.config import ServiceConfig
from cloud_service.stores import open_redis_stores
from confroute.contract import ModelRef
from confroute.routing import default_policy
from tests.cloud_service.outcomes.samples import outcome
from tests.cloud_service.redis_server import find_redis_server, free_port
from tests.deploy.tools import K8S, REPO

pytestmark = pytest.mark.deploy

PASSWORD = "s3cret-for-this-test-only"
_ACL_LINE = re.compile(r"printf '(user default off\\nuser confroute on #%s [^']*)\\n'")


def documented_acl() -> str:
    """The users.acl docs/deployment.md tells operators to write, with this test's password."""
    match = _ACL_LINE.search((REPO / "docs" / "deployment.md").read_text())
    assert match, "docs/deployment.md no longer shows the ACL line"
    return match.group(1).replace("\\n", "\n") % hashlib.sha256(PASSWORD.encode()).hexdigest() + "\n"


@pytest.fixture
def manifest_redis(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    (tmp_path / "data").mkdir()
    (tmp_path / "users.acl").write_text(documented_acl())
    shipped = (K8S / "base" / "redis.conf").read_text()
    conf = (shipped.replace("bind 0.0.0.0", "bind 127.0.0.1").replace("port 6379", f"port {port}")
            .replace("dir /data", f"dir {tmp_path / 'data'}")
            .replace("/etc/redis/acl/users.acl", str(tmp_path / "users.acl")))
    (tmp_path / "redis.conf").write_text(conf)
    with (tmp_path / "redis.log").open("w") as log:
        server = subprocess.Popen([str(find_redis_server()), str(tmp_path / "redis.conf")], stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "redis.log").read_text()
            try:
                redis.Redis(port=port, username="confroute", password=PASSWORD).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_service_stores_outcomes_and_policies_as_the_acl_user(manifest_redis: int) -> None:
    url = f"redis://confroute:{PASSWORD}@127.0.0.1:{manifest_redis}/0"
    policy = default_policy(ModelRef("smollm2-135m-instruct", "b1"), "default")

    async def scenario() -> tuple[object, object]:
        async with open_redis_stores(ServiceConfig(redis_url=url)) as (outcomes, policies):
            stored = await outcomes.store([outcome("q-acl")])
            await policies.publish(policy)
            return stored, await policies.current("b1", "default")

    stored, current = asyncio.run(scenario())

    assert getattr(stored, "stored", None) == ("q-acl",)
    assert getattr(current, "edge_model", None) == policy.edge_model


def test_the_default_user_is_off_and_admin_commands_are_refused(manifest_redis: int) -> None:
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=manifest_redis).ping()
    client = redis.Redis(port=manifest_redis, username="confroute", password=PASSWORD)

    with pytest.raises(redis.exceptions.NoPermissionError):
        client.config_get("appendonly")
    assert client.set("confroute:probe", 1)
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.set("elsewhere", 1)


def test_the_shipped_config_writes_an_append_only_file(manifest_redis: int, tmp_path: Path) -> None:
    client = redis.Redis(port=manifest_redis, username="confroute", password=PASSWORD)
    client.set("confroute:aof", "written")

    deadline = time.monotonic() + 5  # appendfsync everysec
    aof = tmp_path / "data" / "appendonlydir"
    while time.monotonic() < deadline and b"confroute:aof" not in b"".join(
            p.read_bytes() for p in aof.glob("*.incr.aof")):
        time.sleep(0.1)

    assert b"confroute:aof" in b"".join(p.read_bytes() for p in aof.glob("*.incr.aof"))
