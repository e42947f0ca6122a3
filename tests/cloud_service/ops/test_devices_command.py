"""``cloud-service devices list|show``: enrolment beside the last sighting, filters, ``--json``."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from cloud_service.cli import main
from cloud_service.identity.record import DEVICE_SCOPES, Principal
from cloud_service.identity.registry import IdentityRegistry
from cloud_service.ops.devices import DeviceRecord, RedisDeviceDirectory
from cloud_service.ops.devices_command import ago, duration
from cloud_service.redis_client import connect
from tests.cloud_service.redis_server import RedisServer

pytestmark = pytest.mark.timeout(60)


def seed(url: str) -> None:
    async def run() -> None:
        client = connect(url, connect_timeout_s=1.0, command_timeout_s=5.0)
        now = time.time()
        try:
            await IdentityRegistry(client).create(Principal("dev-a", "device", "beta", 0, 0, DEVICE_SCOPES))
            await IdentityRegistry(client).create(Principal("dev-quiet", "device", "beta", 0, 0, DEVICE_SCOPES))
            await RedisDeviceDirectory(client).save([
                DeviceRecord("dev-a", "beta", "b1", "p-2", "pr-1", now - 30, "watch"),
                DeviceRecord("dev-b", "gamma", "b1", "p-1", "", now - 7200, "upload"),
            ])
        finally:
            await client.aclose()

    asyncio.run(run())


def test_list_shows_enrolled_and_seen_devices_with_versions(redis_server: RedisServer,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    seed(redis_server.url)
    url = ["--redis-url", redis_server.url]

    assert main(["devices", "list", *url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("dev-a  device  cohort=beta  active") and "policy=p-2  probe=pr-1" in lines[0]
    assert lines[1].startswith("dev-quiet  device") and lines[1].endswith("last_seen=never")
    assert lines[2].startswith("dev-b  device  cohort=gamma  not-enrolled  last_seen=2h")

    assert main(["devices", "list", *url, "--stale", "1h", "--json"]) == 0
    assert [row["id"] for row in json.loads(capsys.readouterr().out)] == ["dev-b"]
    assert main(["devices", "list", *url, "--cohort", "beta", "--online"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["dev-a"]


def test_show_gives_one_device_or_says_it_is_unknown(redis_server: RedisServer,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    seed(redis_server.url)

    assert main(["devices", "show", "dev-a", "--redis-url", redis_server.url, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["enrolled"] and shown["policy_version"] == "p-2" and shown["last_call"] == "watch"
    assert 25 < shown["last_seen_ago_s"] < 120
    assert main(["devices", "show", "dev-zz", "--redis-url", redis_server.url]) == 1
    assert "no device 'dev-zz'" in capsys.readouterr().out


def test_durations_and_ages_read_as_people_write_them() -> None:
    assert [duration(text) for text in ("90", "90s", "30m", "6h", "2d")] == [90, 90, 1800, 21600, 172800]
    assert [ago(s) for s in (5, 61, 7200, 200_000)] == ["5s", "1m", "2h", "2d"]
