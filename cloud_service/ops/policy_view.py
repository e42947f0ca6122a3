"""``cloud-service policy show`` and ``policy diff``: a key's rollout and policies, and what changed between
two stored versions, as tables for people or ``--json`` for scripts.

``show`` names who runs what (the control, a canary and its share, a pin, the back-pressure shift) and
summarizes each policy. ``diff A [B]`` compares two versions field by field (B defaults to the control);
the calibration maps are compared where it matters, at the raw scores 0, 0.1, ..., 1.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import Any

from cloud_service.operator.admin import PolicyReader
from cloud_service.operator.client import add_service_arguments
from confroute.contract.policy import Policy
from confroute.errors import InvalidInput

SCORES = tuple(i / 10 for i in range(11))
WithStore = Callable[[argparse.Namespace, Callable[[PolicyReader], Awaitable[int]]], int]


def summary(policy: Policy) -> dict[str, Any]:
    """The fields an operator compares, JSON-ready."""
    t = policy.thresholds
    return {
        "version": policy.policy_version,
        "edge_model": f"{policy.edge_model.id}@{policy.edge_model.version}",
        "cohort": policy.cohort,
        "mode": policy.mode.value,
        "thresholds.pre": t.pre, "thresholds.post": t.post,
        "thresholds.hybrid_low": t.hybrid_low, "thresholds.hybrid_high": t.hybrid_high,
        "shadow_rate": policy.shadow_rate,
        "calibration": {f"{score:.1f}": round(float(policy.calibration(score)), 4) for score in SCORES}
        if policy.calibration.x else "identity",
        "issued_at": policy.issued_at.isoformat(),
        "signed_by": policy.key_id or "(unsigned)",
    }


def diff(old: Policy, new: Policy) -> list[tuple[str, Any, Any]]:
    """(field, old, new) for every field that differs (calibration: per raw score)."""
    before, after = _flat(summary(old)), _flat(summary(new))
    return [(key, before.get(key), after.get(key)) for key in sorted(before.keys() | after.keys())
            if before.get(key) != after.get(key)]


def _flat(fields: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, dict):
            flat.update({f"{key}({score})": mapped for score, mapped in value.items()})
        else:
            flat[key] = value
    return flat


def add_commands(actions: Any, with_store: WithStore) -> None:
    """``policy show`` and ``policy diff`` on the configured store, or through the service with ``--service``
    (``with_store`` opens either)."""
    show = actions.add_parser("show", help="the rollout of one key and its policies")
    compare = actions.add_parser("diff", help="what changed between two stored policy versions")
    compare.add_argument("old", help="a stored policy version")
    compare.add_argument("new", nargs="?", default=None, help="another one (default: the control)")
    for command, run in ((show, _show), (compare, _diff)):
        command.add_argument("--redis-url", default=None, help="env CONFROUTE_CLOUD_REDIS_URL")
        command.add_argument("--edge-model-version", required=True)
        command.add_argument("--cohort", default="")
        command.add_argument("--json", action="store_true")
        add_service_arguments(command)
        command.set_defaults(run=lambda args, run=run: with_store(args, lambda store: run(store, args)))


async def _show(store: PolicyReader, args: argparse.Namespace) -> int:
    rollout = await store.rollout(args.edge_model_version, args.cohort)
    state = rollout.state
    if not state.control:
        print(f"no policy for edge model {args.edge_model_version} in cohort {args.cohort!r}")
        return 1
    policies = {version: summary(policy) for version, policy in rollout.policies.items()
                if version in (state.control, state.canary)}
    document = {"control": state.control, "canary": state.canary or None, "canary_share": state.share,
                "pinned": state.pinned, "backpressure_shift": state.shift, "policies": policies}
    if args.json:
        print(json.dumps(document, indent=2, sort_keys=True))
        return 0
    canary = f", canary {state.canary} for {state.share:.0%} of devices" if state.canary else ""
    print(f"edge model {args.edge_model_version}, cohort {args.cohort or '(default)'}: control {state.control}"
          f"{canary}{', PINNED' if state.pinned else ''}, back-pressure shift {state.shift:g}")
    for version, fields in policies.items():
        print(f"\n{version}")
        for key, value in _flat(fields).items():
            print(f"  {key:<24} {value}")
    return 0


async def _diff(store: PolicyReader, args: argparse.Namespace) -> int:
    rollout = await store.rollout(args.edge_model_version, args.cohort)
    new_version = args.new or rollout.state.control
    old = await store.version(args.edge_model_version, args.cohort, args.old)
    new = await store.version(args.edge_model_version, args.cohort, new_version) if new_version else None
    missing = [name for name, policy in ((args.old, old), (new_version or "(no control)", new)) if policy is None]
    if missing or old is None or new is None:
        raise InvalidInput(f"no stored policy {', '.join(missing)} for edge model {args.edge_model_version} "
                           f"in cohort {args.cohort!r}", field="version")
    changes = diff(old, new)
    if args.json:
        print(json.dumps([{"field": f, "old": a, "new": b} for f, a, b in changes], indent=2))
    elif not changes:
        print(f"{old.policy_version} and {new.policy_version} route alike")
    else:
        print(f"{'FIELD':<24} {old.policy_version:<28} {new.policy_version}")
        for field, before, after in changes:
            print(f"{field:<24} {before!s:<28} {after}")
    return 0
