"""Routing policies: per-mode thresholds on P(edge correct), the calibration of raw scores, and
the signature that lets a device trust what the fleet service sent.

A policy is validated when it is built, in-process or by ``from_pb`` from the wire, so no invalid policy
exists. Every rejection is ``InvalidPolicy``, a kind of ``InvalidInput``, whose ``field`` is the path in
the ``Policy`` message (``thresholds.post``, ``calibration.x[1]``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from confroute.contract import _checks as check
from confroute.contract.calibration_map import CalibrationMap
from confroute.contract.common import ModelRef, timestamp_from_pb, timestamp_to_pb
from confroute.contract.enums import ROUTING_MODE, RoutingMode
from confroute.contract.router_probe import RouterProbe
from confroute.errors import InvalidPolicy
from confroute.v1 import fleet_pb2

__all__ = ["CalibrationMap", "Policy", "PolicyRequest", "Thresholds"]  # the map is re-exported: a policy's part

_THRESHOLDS = "thresholds"


@dataclass(frozen=True)
class Thresholds:
    """Escalate when the calibrated score is below the mode's threshold. In hybrid mode scores below
    ``hybrid_low`` escalate before generation, scores at or above ``hybrid_high`` stay local, and
    the band between is decided after generation with ``post``.

    Each is in [0, 1] (NaN refused) and ``hybrid_low <= hybrid_high``, checked when built: InvalidPolicy
    naming ``thresholds.<name>``."""

    pre: float
    post: float
    hybrid_low: float
    hybrid_high: float

    def __post_init__(self) -> None:
        for name in ("pre", "post", "hybrid_low", "hybrid_high"):
            check.unit_interval(getattr(self, name), f"{_THRESHOLDS}.{name}", error=InvalidPolicy)
        if self.hybrid_low > self.hybrid_high:
            name = f"{_THRESHOLDS}.hybrid_low"
            raise InvalidPolicy(f"{name} must not exceed hybrid_high", field=name)

    def to_pb(self) -> fleet_pb2.Thresholds:
        return fleet_pb2.Thresholds(
            pre=self.pre, post=self.post, hybrid_low=self.hybrid_low, hybrid_high=self.hybrid_high
        )

    @classmethod
    def from_pb(cls, pb: fleet_pb2.Thresholds) -> Thresholds:
        """The thresholds a policy carries; the checks of the constructor apply."""
        return cls(pre=pb.pre, post=pb.post, hybrid_low=pb.hybrid_low, hybrid_high=pb.hybrid_high)


@dataclass(frozen=True)
class Policy:
    """A routing policy for one (edge model build, cohort), versioned and optionally signed.

    ``shadow_rate`` in [0, 1] is the fraction of otherwise-local queries also sent to the cloud
    as shadow requests. ``probe_version`` names the router probe the thresholds were calibrated for ("":
    the probe the bundle shipped with); ``probe`` carries that probe (signed on its own) so the device can
    install both together. ``signature`` is an Ed25519 signature by the key ``key_id`` over the canonical
    bytes of :func:`confroute.signing.canonical_policy_bytes` (signed with ``confroute.signing.sign_policy``
    in the cloud, checked by ``confroute.signing.PolicyVerifier`` on the device).
    """

    policy_version: str
    edge_model: ModelRef
    cohort: str
    mode: RoutingMode
    thresholds: Thresholds
    issued_at: datetime
    calibration: CalibrationMap = field(default_factory=CalibrationMap)
    shadow_rate: float = 0.0
    signature: bytes = b""
    key_id: str = ""
    probe_version: str = ""
    probe: RouterProbe | None = None

    def __post_init__(self) -> None:
        check.nonempty(self.policy_version, "policy_version", InvalidPolicy)
        if self.probe is not None and self.probe.version != self.probe_version:
            raise InvalidPolicy(f"it carries probe {self.probe.version} but names {self.probe_version!r}",
                                field="probe_version")
        if self.probe is not None and self.probe.edge_model_version != self.edge_model.version:
            raise InvalidPolicy(f"its probe is for build {self.probe.edge_model_version}, the policy for "
                                f"{self.edge_model.version}", field="probe.edge_model_version")
        check.nonempty(self.edge_model.id, "edge_model.id", InvalidPolicy)
        check.nonempty(self.edge_model.version, "edge_model.version", InvalidPolicy)
        if not isinstance(self.mode, RoutingMode):
            raise InvalidPolicy(f"mode must be a RoutingMode, got {self.mode!r}", field="mode")
        check.unit_interval(self.shadow_rate, "shadow_rate", error=InvalidPolicy)
        if self.issued_at.tzinfo is None:
            raise InvalidPolicy("issued_at must be timezone-aware", field="issued_at")

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
            probe_version=self.probe_version,
            probe=None if self.probe is None else self.probe.to_pb(),
        )

    @classmethod
    def from_pb(cls, pb: fleet_pb2.Policy) -> Policy:
        """The policy a message holds; InvalidPolicy (naming the field) if it is malformed or out of range."""
        return cls(
            policy_version=check.nonempty(pb.policy_version, "policy_version", InvalidPolicy),
            edge_model=ModelRef.from_pb(pb.edge_model, "edge_model", InvalidPolicy),
            cohort=pb.cohort,
            mode=ROUTING_MODE.from_pb(pb.mode, "mode", InvalidPolicy),
            thresholds=Thresholds.from_pb(pb.thresholds),
            calibration=CalibrationMap.from_pb(pb.calibration),
            shadow_rate=pb.shadow_rate,
            issued_at=timestamp_from_pb(pb.issued_at, "issued_at", InvalidPolicy),
            signature=pb.signature,
            key_id=pb.key_id,
            probe_version=pb.probe_version,
            probe=RouterProbe.from_pb(pb.probe) if pb.HasField("probe") else None,
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
