"""Devices as the service sees them: sightings noted on calls, merged into a Redis hash, read back."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from cloud_service.identity.context import Caller, set_caller
from cloud_service.identity.record import Principal
from cloud_service.ops.devices import DeviceRecord, RedisDeviceDirectory, Sightings
from cloud_service.redis_client import connect
from confroute.contract.metadata import PROBE_VERSION_KEY
from tests.cloud_service.redis_server import RedisServer

pytestmark = pytest.mark.timeout(60)


def test_a_sighting_without_a_version_keeps_the_one_known() -> None:
    sightings = Sightings(clock=iter([10.0, 20.0]).__next__)
    sightings.note("device-1", "beta", "b1", "upload", policy_version="p-2")
    sightings.note("device-1", "beta", "b1", "get", metadata=[(PROBE_VERSION_KEY, "probe-7")])

    (record,) = sightings.drain()
    assert record == DeviceRecord("device-1", "beta", "b1", "p-2", "probe-7", 20.0, "get")
    assert sightings.drain() == []


def test_with_authentication_the_device_is_the_caller_and_operators_are_not_devices() -> None:
    sightings = Sightings(clock=lambda: 1.0)

    def as_caller(kind: str, principal_id: str) -> None:
        role = "read-only" if kind == "operator" else ""
        set_caller(Caller(Principal(principal_id, kind, "beta", 0, 0, frozenset(), role), "token:x"))  # type: ignore[arg-type]
        sightings.note("device-claimed", "beta", "b1", "watch")

    contextvars.copy_context().run(as_caller, "device", "device-real")
    contextvars.copy_context().run(as_caller, "operator", "alice")

    assert [record.device_id for record in sightings.drain()] == ["device-real"]


def test_sightings_beyond_the_bound_wait_and_failed_flushes_come_back() -> None:
    sightings = Sightings(max_pending=1, clock=lambda: 5.0)
    sightings.note("device-1", "beta", "b1", "get")
    sightings.note("device-2", "beta", "b1", "get")
    assert sightings.deferred == 1

    drained = sightings.drain()
    sightings.note("device-1", "beta", "b1", "upload", policy_version="p-3")
    sightings.restore(drained)
    assert sightings.drain() == [DeviceRecord("device-1", "beta", "b1", "p-3", "", 5.0, "upload")]


def test_the_directory_merges_sightings_into_what_it_holds(redis_server: RedisServer) -> None:
    async def scenario() -> tuple[list[DeviceRecord], DeviceRecord | None]:
        client = connect(redis_server.url, connect_timeout_s=1.0, command_timeout_s=5.0)
        try:
            directory = RedisDeviceDirectory(client)
            await directory.save([DeviceRecord("device-1", "beta", "b1", "p-2", "pr-1", 10.0, "upload"),
                                  DeviceRecord("device-2", "gamma", "b1", "", "", 11.0, "watch")])
            await directory.save([DeviceRecord("device-1", "beta", "b2", "", "", 30.0, "get")])
            return await directory.records(), await directory.record("device-1")
        finally:
            await client.aclose()

    records, one = asyncio.run(scenario())

    assert one == DeviceRecord("device-1", "beta", "b2", "p-2", "pr-1", 30.0, "get")
    assert sorted(r.device_id for r in records) == ["device-1", "device-2"]
