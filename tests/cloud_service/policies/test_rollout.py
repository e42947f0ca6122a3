"""Canary rollout in Redis: a candidate reaches only its share of devices, is promoted or rolled back,
pins hold, back-pressure shifts and restores thresholds, every transition is in the history, versions
are signed and issued in strictly increasing order, and one cohort's keys share a Redis Cluster slot."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest
from redis.crc import key_slot

from cloud_service.policies import PolicyStoreConfig, RedisPolicyStore
from cloud_service.policies.operations import (
    pin,
    promote,
    publish_candidate,
    rollback,
    shift_thresholds,
    unpin,
)
from confroute.calibration.canary import in_canary
from confroute.contract import ModelRef, Policy, RoutingMode, Thresholds
from confroute.errors import InvalidPolicy
from confroute.signing import PolicyVerifier, TrustedKeys, generate_key_pair
from tests.cloud_service.redis_server import RedisServer

pytestmark = pytest.mark.timeout(60)
T = TypeVar("T")
EDGE = ModelRef("smollm2-135m", "2026.01")
DEVICES = [f"device-{i}" for i in range(200)]


def run(scenario: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(scenario, 30))


def candidate(version: str, pre: float = 0.5) -> Policy:
    return Policy(
        policy_version=version,
        edge_model=EDGE,
        cohort="beta",
        mode=RoutingMode.PRE,
        thresholds=Thresholds(pre=pre, post=0.6, hybrid_low=0.3, hybrid_high=0.8),
        issued_at=datetime(2026, 1, 5, tzinfo=timezone.utc),
    )


def store_for(server: RedisServer, **kwargs: Any) -> RedisPolicyStore:
    return RedisPolicyStore(PolicyStoreConfig(url=server.url, watch_block_s=0.2), **kwargs)


async def versions_by_device(store: RedisPolicyStore) -> dict[str, str]:
    out = {}
    for device in DEVICES:
        policy = await store.current(EDGE.version, "beta", device)
        assert policy is not None
        out[device] = policy.policy_version
    return out


def test_a_candidate_goes_only_to_its_share_of_devices_then_is_promoted(redis_server: RedisServer) -> None:
    async def scenario() -> tuple[dict[str, str], dict[str, str]]:
        store = store_for(redis_server)
        try:
            first = await publish_candidate(store, candidate("v1"), canary_share=0.3)
            assert first.role == "control"  # nothing to compare with yet
            second = await publish_candidate(store, candidate("v2", pre=0.4), canary_share=0.3)
            assert second.role == "canary"
            during = await versions_by_device(store)
            assert await promote(store, EDGE.version, "beta") == "v2"
            return during, await versions_by_device(store)
        finally:
            await store.close()

    during, after = run(scenario())
    canary_devices = {d for d in DEVICES if in_canary(d, 0.3, salt="v2")}
    assert {d for d, v in during.items() if v == "v2"} == canary_devices
    assert 30 <= len(canary_devices) <= 90
    assert set(after.values()) == {"v2"}


def test_watch_pushes_the_canary_only_to_canary_devices(redis_server: RedisServer) -> None:
    canary_device = next(d for d in DEVICES if in_canary(d, 0.5, salt="v2"))
    control_device = next(d for d in DEVICES if not in_canary(d, 0.5, salt="v2"))

    async def scenario() -> tuple[str, bool]:
        store = store_for(redis_server)
        try:
            await publish_candidate(store, candidate("v1"), canary_share=0.5)
            canary_watch = store.watch(EDGE.version, "beta", "v1", canary_device)
            control_watch = store.watch(EDGE.version, "beta", "v1", control_device)
            canary_next = asyncio.ensure_future(anext(canary_watch))
            control_next = asyncio.ensure_future(anext(control_watch))
            await asyncio.sleep(0.3)
            await publish_candidate(store, candidate("v2", pre=0.4), canary_share=0.5)
            got = await asyncio.wait_for(canary_next, 5)
            await asyncio.sleep(0.5)
            control_quiet = not control_next.done()
            control_next.cancel()
            await asyncio.gather(control_next, return_exceptions=True)
            await canary_watch.aclose()
            await control_watch.aclose()
            return got.policy_version, control_quiet
        finally:
            await store.close()

    assert run(scenario()) == ("v2", True)


def test_a_rollback_reissues_the_control_content_so_canary_devices_accept_it(redis_server: RedisServer) -> None:
    async def scenario() -> tuple[Policy, Policy, Policy]:
        store = store_for(redis_server)
        try:
            await publish_candidate(store, candidate("v1"), canary_share=0.5)
            await publish_candidate(store, candidate("v2", pre=0.9), canary_share=0.5)
            canary = await store.rollout(EDGE.version, "beta")
            version = await rollback(store, EDGE.version, "beta", reason="canary worse")
            now = await store.current(EDGE.version, "beta", DEVICES[0])
            assert now is not None and version == now.policy_version
            return canary.policies["v1"], canary.policies["v2"], now
        finally:
            await store.close()

    v1, v2, now = run(scenario())
    assert now.policy_version == "v1+rollback.3"
    assert now.thresholds == v1.thresholds
    assert now.issued_at > v2.issued_at > v1.issued_at


def test_without_a_canary_rollback_returns_to_the_previous_control(redis_server: RedisServer) -> None:
    async def scenario() -> str:
        store = store_for(redis_server)
        try:
            await store.publish(candidate("v1"))
            await store.publish(candidate("v2", pre=0.2))
            return await rollback(store, EDGE.version, "beta")
        finally:
            await store.close()

    assert run(scenario()) == "v1+rollback.3"


def test_a_pin_refuses_candidates_until_unpinned(redis_server: RedisServer) -> None:
    async def scenario() -> list[str]:
        store = store_for(redis_server)
        try:
            await store.publish(candidate("v1"))
            await store.publish(candidate("v2", pre=0.2))
            pinned = await pin(store, EDGE.version, "beta", "v1", reason="incident 42")
            refused = await publish_candidate(store, candidate("v3", pre=0.3), canary_share=0.1)
            with pytest.raises(InvalidPolicy, match="pinned"):
                await store.publish(candidate("v3", pre=0.3))
            await unpin(store, EDGE.version, "beta")
            accepted = await publish_candidate(store, candidate("v3", pre=0.3), canary_share=0.1)
            history = await store.history(EDGE.version, "beta")
            return [pinned, refused.role, accepted.role, *(f"{h.action}:{h.reason}" for h in history[:3])]
        finally:
            await store.close()

    pinned, refused, accepted, *history = run(scenario())
    assert (pinned, refused, accepted) == ("v1+pin.3", "refused", "canary")
    assert history[0].startswith("canary:recalibrated; canary on 10% of devices")
    assert history[1] == "unpin:operator"
    assert history[2] == "pin:incident 42; content of v1"


def test_back_pressure_lowers_every_threshold_and_restores_them(redis_server: RedisServer) -> None:
    async def scenario() -> tuple[Policy, Policy, Policy, list[str]]:
        store = store_for(redis_server)
        try:
            await store.publish(candidate("v1"))
            await shift_thresholds(store, EDGE.version, "beta", 0.2, reason="queue 80 ms > 50 ms")
            shifted = await store.current(EDGE.version, "beta")
            assert await shift_thresholds(store, EDGE.version, "beta", 0.2, reason="same") is None
            await shift_thresholds(store, EDGE.version, "beta", 0.0, reason="load fell")
            restored = await store.current(EDGE.version, "beta")
            history = [h.action for h in await store.history(EDGE.version, "beta")]
            original = await store.version(EDGE.version, "beta", "v1")
            assert shifted and restored and original
            return original, shifted, restored, history
        finally:
            await store.close()

    original, shifted, restored, history = run(scenario())
    assert shifted.policy_version == "v1+bp.2"
    moved = shifted.thresholds
    assert (moved.pre, moved.post, moved.hybrid_low, moved.hybrid_high) == pytest.approx((0.3, 0.4, 0.1, 0.6))
    assert restored.policy_version == "v1+restore.3" and restored.thresholds == original.thresholds
    assert history == ["restore", "backpressure", "publish"]


def test_issued_versions_are_signed_and_strictly_later_each_time(redis_server: RedisServer, tmp_path: Path) -> None:
    key = generate_key_pair(tmp_path / "cloud")
    verify = PolicyVerifier(TrustedKeys.of([key.private_key.public_key()]))
    frozen_clock = datetime(2026, 2, 1, tzinfo=timezone.utc)  # a clock that does not move at all

    async def scenario() -> list[Policy]:
        store = store_for(redis_server, signer=key, clock=lambda: frozen_clock)
        try:
            issued = []
            for version in ("v1", "v2", "v3"):
                await store.publish(candidate(version))
                current = await store.current(EDGE.version, "beta")
                assert current is not None
                issued.append(current)
            return issued
        finally:
            await store.close()

    issued = run(scenario())
    for policy in issued:
        verify(policy)
        assert policy.key_id == key.key_id
    assert issued[0].issued_at < issued[1].issued_at < issued[2].issued_at


def test_concurrent_transitions_are_all_kept(redis_server: RedisServer) -> None:
    async def scenario() -> tuple[int, set[str]]:
        store = store_for(redis_server)
        try:
            await store.publish(candidate("v0"))
            await asyncio.gather(*(publish_candidate(store, candidate(f"c{i}", pre=i / 10), 0.2) for i in range(5)))
            history = await store.history(EDGE.version, "beta")
            return history[0].state.seq, {h.state.canary for h in history if h.action == "canary"}
        finally:
            await store.close()

    seq, canaries = run(scenario())
    assert seq == 6
    assert canaries == {f"c{i}" for i in range(5)}


def test_a_cohorts_stream_and_versions_share_one_cluster_slot() -> None:
    settings = PolicyStoreConfig(url="redis://127.0.0.1:6379/0")
    stream, versions = settings.stream_key("2026.01", "beta"), settings.versions_key("2026.01", "beta")
    assert stream != versions
    assert key_slot(stream.encode()) == key_slot(versions.encode())


def test_bad_shares_and_shifts_are_refused(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        store = store_for(redis_server)
        try:
            with pytest.raises(InvalidPolicy, match="canary_share"):
                await publish_candidate(store, candidate("v1"), canary_share=1.5)
            with pytest.raises(InvalidPolicy, match="shift"):
                await shift_thresholds(store, EDGE.version, "beta", float("nan"), reason="x")
            with pytest.raises(InvalidPolicy, match="no canary"):
                await promote(store, EDGE.version, "beta")
            with pytest.raises(InvalidPolicy, match="no version"):
                await store.publish(candidate("v1"))
                await pin(store, EDGE.version, "beta", "nope")
        finally:
            await store.close()

    run(scenario())


@pytest.mark.parametrize(
    "canary_good,verdict,runs",
    [(3200, "promote", "v2"), (2400, "rollback", "v1+rollback.3")],
)
def test_a_canary_is_judged_by_labelled_outcomes(
    redis_server: RedisServer, canary_good: int, verdict: str, runs: str
) -> None:
    from cloud_service.policies.operations import judge_canary
    from confroute.calibration.canary import ArmQuality

    async def scenario() -> tuple[str, str, str]:
        store = store_for(redis_server)
        try:
            await publish_candidate(store, candidate("v1"), canary_share=0.5)
            await publish_candidate(store, candidate("v2", pre=0.3), canary_share=0.5)
            decision = await judge_canary(store, EDGE.version, "beta", ArmQuality.from_counts(canary_good, 4000),
                                          ArmQuality.from_counts(3200, 4000))
            current = await store.current(EDGE.version, "beta", DEVICES[0])
            history = await store.history(EDGE.version, "beta", 1)
            assert current is not None
            return decision.verdict.value, current.policy_version, history[0].reason
        finally:
            await store.close()

    got_verdict, got_runs, reason = run(scenario())
    assert (got_verdict, got_runs) == (verdict, runs)
    assert reason.startswith("automatic: canary")


def test_a_version_altered_inside_redis_is_never_served_nor_re_signed_by_a_pin(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    import redis

    from confroute.v1 import fleet_pb2

    key = generate_key_pair(tmp_path / "cloud")

    def alter(versions_key: str) -> None:
        with redis.Redis.from_url(redis_server.url) as client:
            stored = fleet_pb2.Policy.FromString(client.hget(versions_key, "v1"))  # type: ignore[arg-type]
            stored.thresholds.pre = stored.thresholds.post = 0.0  # every query stays local; the signature is kept
            client.hset(versions_key, "v1", stored.SerializeToString())

    async def scenario() -> Policy | None:
        store = store_for(redis_server, signer=key)
        try:
            await store.publish(candidate("v1"))
            await store.publish(candidate("v2"))
            alter(store.config.versions_key(EDGE.version, "beta"))
            with pytest.raises(InvalidPolicy, match="no version 'v1'"):
                await pin(store, EDGE.version, "beta", "v1")
            return await store.version(EDGE.version, "beta", "v1")
        finally:
            await store.close()

    assert run(scenario()) is None
