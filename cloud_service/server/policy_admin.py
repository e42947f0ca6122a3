"""The operator's policy commands: building the policy published with ``cloud-service policy set``, and
``policy keygen|promote|rollback|pin|unpin|history`` (see :func:`add_rollout_commands`). Each runs on a
:class:`~cloud_service.operator.admin.PolicyAdmin`: through the service with ``--service`` and an operator
credential (:mod:`cloud_service.operator.client`), or on Redis directly (bootstrap, and hosts that hold
the Redis password).

Either ``--file`` holds the protobuf JSON form of ``confroute.v1.Policy`` (field names as in
``fleet.proto``, e.g. ``{"policyVersion": "v7", "edgeModel": {"id": ..., "version": ...}, "mode":
"ROUTING_MODE_PRE", "thresholds": {"pre": 0.6, ...}, "issuedAt": "2025-01-01T00:00:00Z"}``), or flags
give the fields. Both go through :meth:`Policy.from_pb`, so an operator's policy passes exactly the
checks a device applies; a missing ``issued_at`` or ``policy_version`` is filled in with now.
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from cloud_service.operator.admin import PolicyAdmin
from cloud_service.operator.client import add_service_arguments
from cloud_service.policies.state import HistoryEntry
from confroute.contract.common import timestamp_to_pb
from confroute.contract.policy import Policy
from confroute.errors import InvalidPolicy
from confroute.signing import generate_key_pair
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


# -- rollout commands: keygen, promote, rollback, pin, unpin, history -----------------------------------

AdminAction = Callable[[PolicyAdmin], Awaitable[int]]
WithAdmin = Callable[[argparse.Namespace, AdminAction], int]


def add_rollout_commands(actions: Any, with_admin: WithAdmin) -> None:
    """``policy keygen|promote|rollback|pin|unpin|history``; ``with_admin`` opens the service or the store."""
    keygen = actions.add_parser("keygen", help="write an Ed25519 key pair: STEM.key (private) and STEM.pub")
    keygen.add_argument("stem", type=Path, help="e.g. /secrets/policy-2026a")
    keygen.set_defaults(run=_keygen)
    for name, text in (
        ("promote", "make the running canary the control for every device"),
        ("rollback", "end the canary, or go back to the previous control"),
        ("pin", "run one version on every device and refuse candidates until unpinned"),
        ("unpin", "accept candidates again"),
        ("history", "print the rollout history, newest first"),
    ):
        command = actions.add_parser(name, help=text)
        command.add_argument("--redis-url", default=None, help="env CONFROUTE_CLOUD_REDIS_URL")
        command.add_argument("--edge-model-version", required=True)
        command.add_argument("--cohort", default="")
        if name == "pin":
            command.add_argument("--policy-version", required=True, help="a stored policy version")
        if name == "history":
            command.add_argument("--count", type=int, default=20)
            command.add_argument("--json", action="store_true", help="a JSON array, newest first")
        else:
            command.add_argument("--reason", default="operator", help="recorded in the history")
            command.add_argument("--policy-signing-key", default=None,
                                 help="env CONFROUTE_CLOUD_POLICY_SIGNING_KEY (with --service: the service's key)")
        add_service_arguments(command)
        command.set_defaults(run=functools.partial(_rollout, with_admin=with_admin, action=name))


def _keygen(args: argparse.Namespace) -> int:
    key = generate_key_pair(args.stem)
    print(f"key id  {key.key_id}\nprivate {args.stem}.key (set CONFROUTE_CLOUD_POLICY_SIGNING_KEY)\n"
          f"public  {args.stem}.pub (give to devices: --policy-key)")
    return 0


def _rollout(args: argparse.Namespace, *, with_admin: WithAdmin, action: str) -> int:
    mv, cohort = args.edge_model_version, args.cohort

    async def act(admin: PolicyAdmin) -> int:
        if action == "history":
            _print_history(await admin.history(mv, cohort, args.count), as_json=args.json)
            return 0
        if action == "promote":
            print(await admin.promote(mv, cohort, args.reason))
        elif action == "rollback":
            print(await admin.rollback(mv, cohort, args.reason))
        elif action == "pin":
            print(await admin.pin(mv, cohort, args.policy_version, args.reason))
        else:
            await admin.unpin(mv, cohort, args.reason)
        return 0

    return with_admin(args, act)


def _print_history(entries: list[HistoryEntry], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([history_json(entry) for entry in entries], indent=2))
        return
    for entry in entries:
        print(format_history(entry))


def history_json(entry: HistoryEntry) -> dict[str, object]:
    """One transition for scripts: the fields :func:`format_history` shows, named."""
    state = entry.state
    return {"at": _when(entry.at_us), "action": entry.action, "control": state.control,
            "canary": state.canary or None, "canary_share": state.share, "pinned": state.pinned,
            "shift": state.shift, "base": state.base or None, "reason": entry.reason}


def _when(at_us: int) -> str:
    return datetime.fromtimestamp(at_us / 1e6, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_history(entry: HistoryEntry) -> str:
    """One line per transition: when, action, what devices run, and why."""
    state = entry.state
    when = _when(entry.at_us)
    canary = f" canary={state.canary}@{state.share:.0%}" if state.canary else ""
    extras = (" pinned" if state.pinned else "") + (f" shift={state.shift:g} base={state.base}" if state.base else "")
    return f"{when} {entry.action:<12} control={state.control}{canary}{extras}  # {entry.reason}"
