"""Policies and policy requests survive the wire; a malformed policy is InvalidPolicy naming its field."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from confroute.contract import CalibrationMap, ModelRef, Policy, PolicyRequest, RoutingMode, Thresholds
from confroute.errors import InvalidInput, InvalidPolicy
from confroute.v1 import common_pb2, fleet_pb2


def a_policy(**changes: object) -> Policy:
    policy = Policy(
        policy_version="p-12",
        edge_model=ModelRef("smollm2-135m", "sha256:abc"),
        cohort="beta",
        mode=RoutingMode.HYBRID,
        thresholds=Thresholds(pre=0.4, post=0.55, hybrid_low=0.3, hybrid_high=0.7),
        calibration=CalibrationMap(x=(-2.0, 0.0, 3.5), y=(0.1, 0.1, 0.9)),
        shadow_rate=0.02,
        issued_at=datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc),
        signature=b"\x01\x02",
        key_id="fleet-2025",
    )
    return replace(policy, **changes)  # type: ignore[arg-type]


def test_a_policy_round_trips_through_protobuf() -> None:
    assert Policy.from_pb(a_policy().to_pb()) == a_policy()


def test_an_unsigned_uncalibrated_policy_round_trips() -> None:
    policy = a_policy(calibration=CalibrationMap(), signature=b"", key_id="")
    assert Policy.from_pb(policy.to_pb()) == policy


def test_the_signing_payload_ignores_the_signature_but_covers_everything_else() -> None:
    assert a_policy().signing_payload() == a_policy(signature=b"other", key_id="k2").signing_payload()
    assert a_policy().signing_payload() != a_policy(shadow_rate=0.5).signing_payload()


def test_a_policy_request_round_trips_as_get_and_watch() -> None:
    request = PolicyRequest(ModelRef("smollm2-135m", "sha256:abc"), "beta", "jetson-7", "p-11")
    assert PolicyRequest.from_pb(request.to_watch_pb()) == request
    assert PolicyRequest.from_pb(request.to_get_pb()) == replace(request, known_policy_version="")


def test_a_policy_request_without_a_device_is_rejected() -> None:
    with pytest.raises(InvalidInput) as caught:
        PolicyRequest.from_pb(fleet_pb2.GetPolicyRequest(edge_model=common_pb2.ModelRef(id="m", version="1")))
    assert caught.value.field == "device_id"


Mutation = Callable[[fleet_pb2.Policy], None]


def _replace_calibration(axis: str, values: list[float]) -> Mutation:
    def mutate(pb: fleet_pb2.Policy) -> None:
        getattr(pb.calibration, axis)[:] = values

    return mutate


POLICY_ERRORS: list[tuple[str, Mutation]] = [
    ("policy_version", lambda pb: setattr(pb, "policy_version", "")),
    ("edge_model.id", lambda pb: pb.ClearField("edge_model")),
    ("mode", lambda pb: setattr(pb, "mode", 0)),
    ("mode", lambda pb: setattr(pb, "mode", 4)),
    ("thresholds.pre", lambda pb: setattr(pb.thresholds, "pre", 1.2)),
    ("thresholds.post", lambda pb: setattr(pb.thresholds, "post", -0.01)),
    ("thresholds.hybrid_low", lambda pb: setattr(pb.thresholds, "hybrid_low", math.nan)),
    ("thresholds.hybrid_high", lambda pb: setattr(pb.thresholds, "hybrid_high", math.inf)),
    ("thresholds.hybrid_low", lambda pb: setattr(pb.thresholds, "hybrid_low", 0.8)),
    ("calibration.y", lambda pb: pb.calibration.y.append(1.0)),
    ("calibration.x[1]", _replace_calibration("x", [0.0, 0.0, 1.0])),
    ("calibration.x[2]", _replace_calibration("x", [0.0, 1.0, math.nan])),
    ("calibration.y[2]", _replace_calibration("y", [0.1, 0.2, 1.1])),
    ("calibration.y[1]", _replace_calibration("y", [0.5, 0.4, 0.9])),
    ("calibration.y[0]", _replace_calibration("y", [math.nan, 0.4, 0.9])),
    ("shadow_rate", lambda pb: setattr(pb, "shadow_rate", 1.5)),
    ("shadow_rate", lambda pb: setattr(pb, "shadow_rate", math.nan)),
    ("issued_at", lambda pb: pb.ClearField("issued_at")),
]


@pytest.mark.parametrize(("field", "mutate"), POLICY_ERRORS, ids=[f for f, _ in POLICY_ERRORS])
def test_an_invalid_policy_is_rejected_naming_the_field(field: str, mutate: Mutation) -> None:
    pb = a_policy().to_pb()
    mutate(pb)
    with pytest.raises(InvalidPolicy) as caught:
        Policy.from_pb(pb)
    assert caught.value.field == field


IN_PROCESS_ERRORS: list[tuple[str, Callable[[], object]]] = [
    ("policy_version", lambda: a_policy(policy_version=" ")),
    ("edge_model.id", lambda: a_policy(edge_model=ModelRef("", "sha256:abc"))),
    ("edge_model.version", lambda: a_policy(edge_model=ModelRef("smollm2-135m", ""))),
    ("mode", lambda: a_policy(mode="hybrid")),
    ("thresholds.post", lambda: Thresholds(pre=0.4, post=1.5, hybrid_low=0.3, hybrid_high=0.7)),
    ("thresholds.pre", lambda: Thresholds(pre=math.nan, post=0.5, hybrid_low=0.3, hybrid_high=0.7)),
    ("thresholds.hybrid_low", lambda: Thresholds(pre=0.4, post=0.5, hybrid_low=0.8, hybrid_high=0.7)),
    ("calibration.y", lambda: CalibrationMap(x=(0.0, 1.0), y=(0.5,))),
    ("calibration.x[1]", lambda: CalibrationMap(x=(0.0, 0.0), y=(0.5, 0.6))),
    ("calibration.y[0]", lambda: CalibrationMap(x=(0.0,), y=(-0.1,))),
    ("shadow_rate", lambda: a_policy(shadow_rate=1.5)),
    ("issued_at", lambda: a_policy(issued_at=datetime(2025, 3, 1, 12, 0))),
]


@pytest.mark.parametrize(("field", "build"), IN_PROCESS_ERRORS, ids=[f for f, _ in IN_PROCESS_ERRORS])
def test_an_invalid_policy_cannot_be_built_in_process_either(field: str, build: Callable[[], object]) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        build()
    assert caught.value.field == field
