"""FleetService: the current policy, and policies pushed as they are published."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from confroute.contract import ModelRef, Policy, RoutingMode, Thresholds
from confroute.v1 import common_pb2, fleet_pb2

if TYPE_CHECKING:
    from tests.cloud_service.server.conftest import Service

EDGE_MODEL = ModelRef("smollm2-135m-instruct", "b1")
TIMEOUT_S = 10.0


def policy(version: str, cohort: str = "beta") -> Policy:
    return Policy(
        policy_version=version,
        edge_model=EDGE_MODEL,
        cohort=cohort,
        mode=RoutingMode.HYBRID,
        thresholds=Thresholds(pre=0.5, post=0.6, hybrid_low=0.3, hybrid_high=0.8),
        issued_at=datetime(2025, 1, 1, tzinfo=timezone.utc),
    )


def get_request(cohort: str = "beta") -> fleet_pb2.GetPolicyRequest:
    return fleet_pb2.GetPolicyRequest(edge_model=EDGE_MODEL.to_pb(), cohort=cohort, device_id="device-1")


def watch(service: Service, known: str = "") -> Any:
    request = fleet_pb2.WatchPolicyRequest(
        edge_model=EDGE_MODEL.to_pb(), cohort="beta", device_id="device-1", known_policy_version=known
    )
    return service.fleet.WatchPolicy(request, timeout=TIMEOUT_S)


def next_policy(stream: Any) -> Policy:
    """The next pushed policy; the stream is cancelled if none comes in time (no hanging test)."""
    timer = threading.Timer(TIMEOUT_S, stream.cancel)
    timer.start()
    try:
        return Policy.from_pb(next(stream).policy)
    finally:
        timer.cancel()


def test_get_policy_is_not_found_until_a_policy_is_published(bare_service: Service) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        bare_service.fleet.GetPolicy(get_request(), timeout=TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "b1" in caught.value.details() and "beta" in caught.value.details()

    bare_service.publish(policy("v1"))

    assert Policy.from_pb(bare_service.fleet.GetPolicy(get_request(), timeout=TIMEOUT_S).policy) == policy("v1")


def test_get_policy_answers_per_cohort(bare_service: Service) -> None:
    bare_service.publish(policy("v1", cohort="beta"))

    with pytest.raises(grpc.RpcError) as caught:
        bare_service.fleet.GetPolicy(get_request(cohort="stable"), timeout=TIMEOUT_S)

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_get_policy_without_a_device_id_is_invalid_argument(bare_service: Service) -> None:
    request = get_request()
    request.device_id = ""

    with pytest.raises(grpc.RpcError) as caught:
        bare_service.fleet.GetPolicy(request, timeout=TIMEOUT_S)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "device_id" in caught.value.details()


def test_watch_policy_receives_each_newly_published_policy(bare_service: Service) -> None:
    stream = watch(bare_service)
    try:
        bare_service.publish(policy("v1"))
        assert next_policy(stream).policy_version == "v1"

        bare_service.publish(policy("v2"))
        assert next_policy(stream).policy_version == "v2"
    finally:
        stream.cancel()


def test_watch_policy_skips_the_version_the_device_already_holds(bare_service: Service) -> None:
    bare_service.publish(policy("v1"))
    stream = watch(bare_service, known="v1")
    try:
        bare_service.publish(policy("v2"))
        assert next_policy(stream).policy_version == "v2"
    finally:
        stream.cancel()


def test_a_policy_travels_with_its_mode_and_thresholds(bare_service: Service) -> None:
    bare_service.publish(policy("v1"))

    pb = bare_service.fleet.GetPolicy(get_request(), timeout=TIMEOUT_S).policy

    assert pb.mode == common_pb2.ROUTING_MODE_HYBRID
    assert (pb.thresholds.hybrid_low, pb.thresholds.hybrid_high) == (0.3, 0.8)
