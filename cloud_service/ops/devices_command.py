"""``cloud-service devices list`` (with filters) and ``devices show ID``: each device's enrolment beside what
the service last saw of it (:mod:`cloud_service.ops.devices`): versions, the call, how long ago.

``list`` prints one line per principal (enrolled ones first as ``Principal.summary`` writes them, then the
devices seen but not enrolled, as on a service without authentication) followed by ``last_seen=``,
``edge_model=``, ``policy=`` and ``probe=``. Filters (``--cohort``, ``--edge-model-version``,
``--policy-version``, ``--probe-version``, ``--stale 1h``, ``--online``) keep the devices whose last
sighting matches every one given. ``--json`` prints a list of objects for scripts.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from typing import Any

from cloud_service.identity.record import Principal
from cloud_service.identity.registry import IdentityRegistry
from cloud_service.ops.devices import DeviceRecord, RedisDeviceDirectory
from cloud_service.ops.fleet_view import ONLINE_S, select
from cloud_service.redis_client import RedisClient

_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
_FILTERS = ("cohort", "edge_model_version", "policy_version", "probe_version")


def add_list_arguments(parser: argparse.ArgumentParser) -> None:
    """The filters and ``--json`` of ``devices list``."""
    parser.add_argument("--cohort", default=None)
    parser.add_argument("--edge-model-version", default=None)
    parser.add_argument("--policy-version", default=None)
    parser.add_argument("--probe-version", default=None)
    parser.add_argument("--stale", default=None, type=duration, metavar="DURATION",
                        help="only devices not seen for this long (90s, 30m, 6h, 2d)")
    parser.add_argument("--online", action="store_true", help=f"only devices seen in the last {ONLINE_S:g} s")
    parser.add_argument("--json", action="store_true")


def add_show_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("principal_id", metavar="ID")
    parser.add_argument("--json", action="store_true")


def duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``6h``, ``2d`` in seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a duration (90s, 30m, 6h, 2d): {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


async def list_devices(args: argparse.Namespace, redis: RedisClient) -> int:
    """``devices list``: see the module docstring."""
    enrolled = {principal.principal_id: principal for principal in await IdentityRegistry(redis).all()}
    seen = {record.device_id: record for record in await RedisDeviceDirectory(redis).records()}
    now = time.time()
    wanted = {name: getattr(args, name) for name in _FILTERS if getattr(args, name) is not None}
    filtering = bool(wanted) or args.stale is not None or args.online
    if filtering:
        matching = {record.device_id for record in select(seen.values(), now, stale_s=args.stale, **wanted)
                    if not args.online or now - record.last_seen_s < ONLINE_S}
        ids = [device for device in [*enrolled, *sorted(seen.keys() - enrolled.keys())] if device in matching]
    else:
        ids = [*enrolled, *sorted(seen.keys() - enrolled.keys())]
    rows = [row(enrolled.get(device), seen.get(device), device, now) for device in ids]
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
    else:
        for device in ids:
            print(line(enrolled.get(device), seen.get(device), device, now))
    return 0


async def show_device(args: argparse.Namespace, redis: RedisClient) -> int:
    """``devices show ID``: one device's enrolment and last sighting; 1 when neither is known."""
    principal = await IdentityRegistry(redis).get(args.principal_id)
    record = await RedisDeviceDirectory(redis).record(args.principal_id)
    if principal is None and record is None:
        print(f"no device {args.principal_id!r} is enrolled or was seen")
        return 1
    fields = row(principal, record, args.principal_id, time.time())
    if args.json:
        print(json.dumps(fields, indent=2, sort_keys=True))
    else:
        for key, value in fields.items():
            print(f"{key:<20} {'-' if value is None or value == '' else value}")
    return 0


def row(principal: Principal | None, record: DeviceRecord | None, device_id: str, now_s: float) -> dict[str, Any]:
    """One device as ``--json`` prints it."""
    return {
        "id": device_id,
        "kind": principal.kind if principal else "device",
        "enrolled": principal is not None,
        "state": ("revoked" if principal.revoked else "active") if principal else "not-enrolled",
        "cohort": (principal.cohort if principal else "") or (record.cohort if record else ""),
        "edge_model_version": record.edge_model_version if record else None,
        "policy_version": record.policy_version if record else None,
        "probe_version": record.probe_version if record else None,
        "last_seen_s": record.last_seen_s if record else None,
        "last_seen_ago_s": round(now_s - record.last_seen_s, 1) if record else None,
        "last_call": record.last_call if record else None,
    }


def line(principal: Principal | None, record: DeviceRecord | None, device_id: str, now_s: float) -> str:
    """One device as ``devices list`` prints it for people."""
    head = principal.summary() if principal else f"{device_id}  device  cohort={record.cohort if record else ''}  " \
                                                  "not-enrolled"
    if record is None:
        return f"{head}  last_seen=never"
    return (f"{head}  last_seen={ago(now_s - record.last_seen_s)}  edge_model={record.edge_model_version or '-'}  "
            f"policy={record.policy_version or '-'}  probe={record.probe_version or '-'}")


def ago(seconds: float) -> str:
    """``42s``, ``5m``, ``3h``, ``2d`` ago (rounded down)."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"

