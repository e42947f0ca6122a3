"""Building the policy an operator publishes with ``cloud-service policy set``.

Either ``--file`` holds the protobuf JSON form of ``confroute.v1.Policy`` (field names as in
``fleet.proto``, e.g. ``{"policyVersion": "v7", "edgeModel": {"id": ..., "version": ...}, "mode":
"ROUTING_MODE_PRE", "thresholds": {"pre": 0.6, ...}, "issuedAt": "2025-01-01T00:00:00Z"}``), or flags
give the fields. Both go through :meth:`Policy.from_pb`, so an operator's policy passes exactly the
checks a device applies; a missing ``issued_at`` or ``policy_version`` is filled in with now.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

from google.protobuf import json_format

from confroute.contract.common import timestamp_to_pb
from confroute.contract.policy import Policy
from confroute.errors import InvalidPolicy
from confroute.v1 import common_pb2, fleet_pb2

MODES = ("pre", "post", "hybrid")


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``policy set``."""
    parser.add_argument("--file", type=Path, default=None, help="a Policy in protobuf JSON; flags are ignored")
    parser.add_argument("--policy-version", default="", help="default: the issue time, e.g. 20250101T120000Z")
    parser.add_argument("--edge-model-id", default="")
    parser.add_argument("--edge-model-version", default="")
    parser.add_argument("--cohort", default="")
    parser.add_argument("--mode", choices=MODES, default="hybrid")
    for name in ("pre", "post", "hybrid-low", "hybrid-high"):
        parser.add_argument(f"--{name}", type=float, default=0.5, help="threshold on P(edge correct)")
    parser.add_argument("--shadow-rate", type=float, default=0.0)


def policy_from_args(args: argparse.Namespace) -> Policy:
    """The validated policy from ``--file`` or from the flags; raises InvalidPolicy naming the field."""
    pb = _read_file(args.file) if args.file is not None else _from_flags(args)
    now = datetime.now(timezone.utc)
    if not pb.HasField("issued_at"):
        pb.issued_at.CopyFrom(timestamp_to_pb(now))
    if not pb.policy_version:
        pb.policy_version = now.strftime("%Y%m%dT%H%M%SZ")
    return Policy.from_pb(pb)


def to_json(policy: Policy) -> str:
    """The protobuf JSON form, the same that ``--file`` reads."""
    text: str = json_format.MessageToJson(policy.to_pb(), indent=2)
    return text


def _read_file(path: Path) -> fleet_pb2.Policy:
    try:
        pb = fleet_pb2.Policy()
        json_format.Parse(path.read_text(encoding="utf-8"), pb)
    except (OSError, json_format.ParseError) as exc:
        raise InvalidPolicy(f"cannot read a policy from {path}: {exc}", field="file") from exc
    return pb


def _from_flags(args: argparse.Namespace) -> fleet_pb2.Policy:
    return fleet_pb2.Policy(
        policy_version=args.policy_version,
        edge_model=common_pb2.ModelRef(id=args.edge_model_id, version=args.edge_model_version),
        cohort=args.cohort,
        mode=common_pb2.RoutingMode.Value(f"ROUTING_MODE_{args.mode.upper()}"),
        thresholds=fleet_pb2.Thresholds(
            pre=args.pre, post=args.post, hybrid_low=args.hybrid_low, hybrid_high=args.hybrid_high
        ),
        shadow_rate=args.shadow_rate,
    )
