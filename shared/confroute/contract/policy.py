"""Routing policies: per-mode thresholds on P(edge correct), the calibration of raw scores, and
the signature that lets a device trust what the fleet service sent. Every rejection is
``InvalidPolicy``, a kind of ``InvalidInput``."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime

from confroute.contract import _checks as check
from confroute.contract.common import ModelRef, timestamp_from_pb, timestamp_to_pb
from confroute.contract.enums import ROUTING_MODE, RoutingMode
from confroute.errors import InvalidPolicy
from confroute.v1 import fleet_pb2


@dataclass(frozen=True)
class Thresholds:
    """Escalate when the calibrated score is below the mode's threshold. In hybrid mode scores below
    ``hybrid_low`` escalate before generation, scores at or above ``hybrid_high`` stay local, and
    the band between is decided after generation with ``post``."""

    pre: float
    post: float
    hybrid_low: float
    hybrid_high: float

    def to_pb(self) -> fleet_pb2.Thresholds:
        return fleet_pb2.Thresholds(
            pre=self.pre, post=self.post, hybrid_low=self.hybrid_low, hybrid_high=self.hybrid_high
        )

    @classmethod
    def from_pb(cls, pb: fleet_pb2.Thresholds, path: str = "thresholds") -> Thresholds:
        def unit(name: str) -> float:
            return check.unit_interval(getattr(pb, name), check.join(path, name), error=InvalidPolicy)

        thresholds = cls(
            pre=unit("pre"), post=unit("post"), hybrid_low=unit("hybrid_low"), hybrid_high=unit("hybrid_high")
        )
        if thresholds.hybrid_low > thresholds.hybrid_high:
            name = check.join(path, "hybrid_low")
            raise InvalidPolicy(f"{name} must not exceed hybrid_high", field=name)
        return thresholds


@dataclass(frozen=True)
class CalibrationMap:
    """An isotonic map from raw score to P(correct), linear between knots. Empty: already calibrated."""

    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    def to_pb(self) -> fleet_pb2.CalibrationMap:
        return fleet_pb2.CalibrationMap(x=self.x, y=self.y)

    @classmethod
    def from_pb(cls, pb: fleet_pb2.CalibrationMap, path: str = "calibration") -> CalibrationMap:
        x, y = tuple(pb.x), tuple(pb.y)
        if len(x) != len(y):
            name = check.join(path, "y")
            raise InvalidPolicy(f"{name} has {len(y)} values for {len(x)} knots", field=name)
        _require_increasing(x, check.join(path, "x"), strict=True)
        for i, value in enumerate(y):
            check.unit_interval(value, check.join(path, f"y[{i}]"), error=InvalidPolicy)
        _require_increasing(y, check.join(path, "y"), strict=False)
        return cls(x=x, y=y)


def _require_increasing(values: tuple[float, ...], field: str, *, strict: bool) -> None:
    """Finite values, each above (strict) or at least (not strict) the one before."""
    for i, value in enumerate(values):
        if not math.isfinite(value):
            raise InvalidPolicy(f"{field}[{i}] must be finite, got {value}", field=f"{field}[{i}]")
        if i and (value <= values[i - 1] if strict else value < values[i - 1]):
            order = "strictly increasing" if strict else "non-decreasing"
            raise InvalidPolicy(f"{field} must be {order} (at index {i})", field=f"{field}[{i}]")


@dataclass(frozen=True)
class Policy:
    """A routing policy for one (edge model build, cohort), versioned and optionally signed.

    ``shadow_rate`` in [0, 1] is the fraction of otherwise-local queries also sent to the cloud
    as shadow requests. ``signature`` is an Ed25519 signature by the key ``key_id`` over the canonical
    bytes of :func:`confroute.signing.canonical_policy_bytes` (signed with ``confroute.signing.sign_policy``
    in the cloud, checked by ``confroute.signing.PolicyVerifier`` on the device).
    """

    policy_version: str
    edge_model: ModelRef
    cohort: str
    mode: RoutingMode
    thresholds: Thresholds
    issued_at: datetime
    calibration: CalibrationMap = CalibrationMap()
    shadow_rate: float = 0.0
    signature: bytes = b""
    key_id: str = ""

    def to_pb(self) -> fleet_pb2.Policy:
        return fleet_pb2.Policy(
            policy_version=self.policy_version,
            edge_model=self.edge_model.to_pb(),
            cohort=self.cohort,
            mode=ROUTING_MODE.to_pb(self.mode),
            thresholds=self.thresholds.to_pb(),
            calibration=self.calibration.to_pb(),
            shadow_rate=self.shadow_rate,
            issued_at=timestamp_to_pb(self.issued_at),
            signature=self.signature,
            key_id=self.key_id,
        )

    @classmethod
    def from_pb(cls, pb: fleet_pb2.Policy) -> Policy:
        return cls(
            policy_version=check.nonempty(pb.policy_version, "policy_version", InvalidPolicy),
            edge_model=ModelRef.from_pb(pb.edge_model, "edge_model", InvalidPolicy),
            cohort=pb.cohort,
            mode=ROUTING_MODE.from_pb(pb.mode, "mode", InvalidPolicy),
            thresholds=Thresholds.from_pb(pb.thresholds),
            calibration=CalibrationMap.from_pb(pb.calibration),
            shadow_rate=check.unit_interval(pb.shadow_rate, "shadow_rate", error=InvalidPolicy),
            issued_at=timestamp_from_pb(pb.issued_at, "issued_at", InvalidPolicy),
            signature=pb.signature,
            key_id=pb.key_id,
        )

    def signing_payload(self) -> bytes:
        """This policy, unsigned, deterministically serialized by protobuf. Signatures do not use it (protobuf
        bytes are not canonical across implementations): they cover ``confroute.signing.canonical_policy_bytes``."""
        unsigned = replace(self, signature=b"", key_id="").to_pb()
        payload: bytes = unsigned.SerializeToString(deterministic=True)
        return payload


@dataclass(frozen=True)
class PolicyRequest:
    """Which policy a device asks for, and (when watching) which version it already holds."""

    edge_model: ModelRef
    cohort: str
    device_id: str
    known_policy_version: str = ""

    def to_get_pb(self) -> fleet_pb2.GetPolicyRequest:
        return fleet_pb2.GetPolicyRequest(
            edge_model=self.edge_model.to_pb(), cohort=self.cohort, device_id=self.device_id
        )

    def to_watch_pb(self) -> fleet_pb2.WatchPolicyRequest:
        return fleet_pb2.WatchPolicyRequest(
            edge_model=self.edge_model.to_pb(),
            cohort=self.cohort,
            device_id=self.device_id,
            known_policy_version=self.known_policy_version,
        )

    @classmethod
    def from_pb(cls, pb: fleet_pb2.GetPolicyRequest | fleet_pb2.WatchPolicyRequest) -> PolicyRequest:
        known = pb.known_policy_version if isinstance(pb, fleet_pb2.WatchPolicyRequest) else ""
        return cls(
            edge_model=ModelRef.from_pb(pb.edge_model, "edge_model"),
            cohort=pb.cohort,
            device_id=check.nonempty(pb.device_id, "device_id"),
            known_policy_version=known,
        )
