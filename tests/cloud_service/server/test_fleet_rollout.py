"""FleetService on the Redis policy store: each device gets its assigned version (canary or control)
from GetPolicy and WatchPolicy, a burst of watchers is served in full, and a device that was offline
gets the latest policy when it reconnects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, TypeVar

import grpc
import pytest

from cloud_service.config import ServiceConfig
from cloud_service.metrics import create_metrics
from cloud_service.policies import PolicyStoreConfig, RedisPolicyStore
from cloud_service.policies.operations import promote, publish_candidate
from cloud_service.server.app import Dependencies, build_server
from confroute.calibration.canary import in_canary
from confroute.contract import ModelRef, Policy, RoutingMode, Thresholds
from confroute.v1 import fleet_pb2, fleet_pb2_grpc
from tests.cloud_service.redis_server import RedisServer

pytestmark = pytest.mark.timeout(120)
T = TypeVar("T")
EDGE = ModelRef("smollm2", "b1")


def run(scenario: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(scenario, 90))


def candidate(version: str, pre: float) -> Policy:
    return Policy(version, EDGE, "beta", RoutingMode.PRE, Thresholds(pre, 0.6, 0.3, 0.8),
                  issued_at=datetime(2026, 1, 1, tzinfo=timezone.utc))


async def _ready() -> bool:
    return True


class NoBackend:
    async def generate(self, request: Any, timeout_s: float) -> Any:
        raise AssertionError("no escalations here")

    def stream(self, request: Any, timeout_s: float) -> Any:
        raise AssertionError("no escalations here")

    async def close(self) -> None:
        """Nothing to release."""


class NoOutcomeLog:
    def record(self, record: Any) -> None:
        """Dropped."""

    async def store(self, records: Any) -> Any:
        raise AssertionError("no uploads here")

    async def close(self) -> None:
        """Nothing to flush."""


@asynccontextmanager
async def fleet_service(redis: RedisServer) -> AsyncIterator[tuple[RedisPolicyStore, Any]]:
    store = RedisPolicyStore(PolicyStoreConfig(url=redis.url, watch_block_s=0.2))
    config = ServiceConfig(listen="127.0.0.1:0", metrics_listen="")
    server = build_server(config, Dependencies(NoBackend(), NoOutcomeLog(), store, create_metrics()))
    await server.start(_ready, 60.0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield store, fleet_pb2_grpc.FleetServiceStub(channel)  # type: ignore[no-untyped-call]
    finally:
        await channel.close()
        await server.stop(0.2)
        await store.close()


def watch_request(device_id: str, known: str = "") -> fleet_pb2.WatchPolicyRequest:
    return fleet_pb2.WatchPolicyRequest(edge_model=EDGE.to_pb(), cohort="beta", device_id=device_id,
                                        known_policy_version=known)


async def first_versions(stub: Any, device_ids: list[str], known: str = "", count: int = 1) -> dict[str, list[str]]:
    async def one(device_id: str) -> list[str]:
        call = stub.WatchPolicy(watch_request(device_id, known), timeout=20)
        versions = []
        async for response in call:
            versions.append(response.policy.policy_version)
            if len(versions) == count:
                call.cancel()
                break
        return versions

    return dict(zip(device_ids, await asyncio.gather(*(one(d) for d in device_ids)), strict=True))


def test_each_device_gets_its_assigned_version_and_watch_pushes_the_canary_only_to_its_devices(
    redis_server: RedisServer,
) -> None:
    devices = [f"dev-{i}" for i in range(40)]
    canary = {d for d in devices if in_canary(d, 0.25, salt="v2")}

    async def scenario() -> tuple[dict[str, str], dict[str, list[str]], dict[str, str]]:
        async with fleet_service(redis_server) as (store, stub):
            await publish_candidate(store, candidate("v1", 0.5), canary_share=0.25)
            watching = asyncio.ensure_future(first_versions(stub, sorted(canary), known="v1"))
            control_watch = stub.WatchPolicy(watch_request(next(d for d in devices if d not in canary), "v1"))
            control_next = asyncio.ensure_future(control_watch.read())
            await asyncio.sleep(0.5)
            await publish_candidate(store, candidate("v2", 0.4), canary_share=0.25)
            pushed = await asyncio.wait_for(watching, 20)
            got = {}
            for device in devices:
                request = fleet_pb2.GetPolicyRequest(edge_model=EDGE.to_pb(), cohort="beta", device_id=device)
                got[device] = (await stub.GetPolicy(request, timeout=5)).policy.policy_version
            await asyncio.sleep(0.3)
            assert not control_next.done()  # a control device got nothing
            await promote(store, EDGE.version, "beta")
            promoted = await asyncio.wait_for(control_next, 20)
            control_watch.cancel()
            return got, pushed, {"control": promoted.policy.policy_version}

    got, pushed, promoted = run(scenario())
    assert 0 < len(canary) < len(devices)
    assert {d for d, v in got.items() if v == "v2"} == canary
    assert all(versions == ["v2"] for versions in pushed.values())
    assert promoted == {"control": "v2"}


def test_a_device_back_from_offline_gets_the_latest_and_a_new_device_the_current(redis_server: RedisServer) -> None:
    async def scenario() -> dict[str, list[str]]:
        async with fleet_service(redis_server) as (store, stub):
            for version, pre in (("v1", 0.5), ("v2", 0.4), ("v3", 0.3)):
                await store.publish(candidate(version, pre))
            back = await first_versions(stub, ["returning"], known="v1")
            new = await first_versions(stub, ["brand-new"], known="")
            return back | new

    assert run(scenario()) == {"returning": ["v3"], "brand-new": ["v3"]}


def test_a_burst_of_watchers_is_served_in_full(redis_server: RedisServer) -> None:
    watchers = 2_000

    async def scenario() -> tuple[int, int]:
        async with fleet_service(redis_server) as (store, stub):
            await store.publish(candidate("v1", 0.5))
            got = await first_versions(stub, [f"d{i}" for i in range(watchers)])
            return sum(v == ["v1"] for v in got.values()), watchers

    served, total = run(scenario())
    assert served == total
