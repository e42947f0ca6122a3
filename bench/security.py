"""Security benchmark: the attack table against a real stack, and what authentication costs.

On loopback (``bench.securitybench.stack``): a redis-server with its default user off (the service is the
ACL user ``confroute``), tritonserver serving the echo model, a fleet CA with two enrolled devices, one
revoked, one expired, one rotated and an operator; the cloud service with TLS, mTLS and bearer tokens;
a device's policy keeper and its HTTP API with a key. Each attack prints one row: what it should get,
what it got, and whether it was refused as it should be. An attack that ends with INTERNAL, HTTP 500
or an unexpected exception is a crash, one that outlasts its timeout a hang; after the table every
service must still be serving. ``--model in-process`` answers with an in-process echo instead of
tritonserver (the front door is what is attacked; it saves tritonserver's start). The models' environment
is ``--backend-python`` or ``CONFROUTE_TRITON_PYTHON``.

``auth_added_p50_us``: the p50 of the paired differences between a unary escalation through the
token-authenticated service and one through the same TLS service without authentication, alternated in
ABBA order in one run (``auth_added_p50_us_mtls``: the same for client certificates). Client round trips
on a shared machine are noisy: read them with ``auth_check_us``, the authenticator's own time per call on
a cached credential, measured in-process.

    python -m bench.security [--quick] [--model triton|in-process] [--json PATH]

JSON keys: ``attacks_tried``, ``attacks_refused``, ``crashes``, ``hangs``, ``auth_added_p50_us``,
``auth_added_p50_us_mtls``, ``auth_check_us``, ``escalation_p50_us_open|auth|mtls``, ``model``, ``rows``.
Goals: every attack refused, 0 crashes, 0 hangs, authentication <= 50 us p50 per escalation.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from bench.cpu import this_cpu
from bench.securitybench.attacks import Attack, bearer, cloud_attacks, escalation
from bench.securitybench.device import DeviceTarget, device, device_attacks
from bench.securitybench.stack import Stack, running_stack
from cloud_service.identity.authenticator import Authenticator
from cloud_service.identity.tokens import load_secret
from confroute.v1 import escalation_pb2_grpc

ATTACK_TIMEOUT_S = 30.0
CRASHES = ("INTERNAL", "UNKNOWN", "500")
AUTH_GOAL_US = 50.0


@dataclass(frozen=True)
class Row:
    attack: str
    expected: str
    got: str
    refused: bool
    crash: bool
    hang: bool


def run_attack(pool: ThreadPoolExecutor, attack: Attack, stack: Stack) -> Row:
    future = pool.submit(attack.run, stack)
    try:
        got = future.result(ATTACK_TIMEOUT_S)
    except FutureTimeout:
        got = "HANG"
    except Exception as exc:  # an attack that breaks the client is reported, not fatal to the table
        got = f"ERROR:{type(exc).__name__}"
    crash = got in CRASHES or got.startswith("ERROR")
    return Row(attack.name, attack.expected, got, got == attack.expected, crash, got == "HANG")


def serving(stack: Stack, target: DeviceTarget) -> bool:
    """Every service and the device API still answer after the attacks."""
    for name in stack.servers:
        with stack.channel(name, stack.creds["dev-a"].cert) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5.0)
            except grpc.RpcError:
                return False
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                return False
    from bench.securitybench.device import _http

    return _http(target, None, method="GET", path="/health") == "200"


@dataclass(frozen=True)
class Side:
    """One side of a timed pair: a service, and the credential its calls carry."""

    server: str
    metadata: Sequence[tuple[str, str]] = ()
    cert: Any = None


def paired_p50s(stack: Stack, base: Side, auth: Side, calls: int) -> tuple[float, float, float]:
    """p50 microseconds of unary escalations on each side, and the p50 of their paired differences: calls
    alternate in ABBA order, so the drifts of a shared machine cancel."""
    request = escalation("dev-a")
    sides = (base, auth)
    channels = [stack.channel(side.server, side.cert) for side in sides]
    stubs = [escalation_pb2_grpc.EscalationServiceStub(c) for c in channels]  # type: ignore[no-untyped-call]
    times: tuple[list[float], list[float]] = ([], [])

    def timed(i: int) -> float:
        started = time.perf_counter()
        stubs[i].Escalate(request, metadata=sides[i].metadata, timeout=5.0)
        return (time.perf_counter() - started) * 1e6

    try:
        for _ in range(100):  # warm-up: connections, caches
            timed(0), timed(1)
        differences = []
        for n in range(calls):
            first, second = (0, 1) if n % 2 == 0 else (1, 0)
            pair = {first: timed(first), second: timed(second)}
            times[0].append(pair[0])
            times[1].append(pair[1])
            differences.append(pair[1] - pair[0])
    finally:
        for channel in channels:
            channel.close()
    return statistics.median(times[0]), statistics.median(times[1]), statistics.median(differences)


def auth_check_us(stack: Stack, calls: int) -> float:
    """The authenticator's own time per call on a cached token (in-process, on the service's loop)."""
    authenticator = Authenticator(stack.registry, load_secret(stack.folder / "ca" / "identity.secret"))
    metadata = bearer(stack.creds["dev-a"].token)

    async def measure() -> float:
        await authenticator.authenticate(metadata, dict)
        started = time.perf_counter()
        for _ in range(calls):
            if authenticator.cached(metadata, dict) is None:  # as the interceptor does
                await authenticator.authenticate(metadata, dict)
        return (time.perf_counter() - started) / calls * 1e6

    return stack.loop.run(measure())


def print_table(rows: Sequence[Row]) -> None:
    width = max(len(row.attack) for row in rows)
    print(f"| {'attack':<{width}} | expected | got | refused |")
    print(f"|{'-' * (width + 2)}|---|---|---|")
    for row in rows:
        print(f"| {row.attack:<{width}} | {row.expected} | {row.got} | {'yes' if row.refused else 'NO'} |")


def run(quick: bool, triton: bool, backend_python: Path | None = None) -> dict[str, Any]:
    calls = 300 if quick else 2000
    with (running_stack(triton, backend_python) as stack, device(stack) as target,
          ThreadPoolExecutor(max_workers=1) as pool):
        token = bearer(stack.creds["dev-a"].token)
        open_p50, auth_p50, added_p50 = paired_p50s(stack, Side("open"), Side("token_bare", token), calls)
        _, mtls_p50, mtls_added_p50 = paired_p50s(stack, Side("open"), Side("mtls", cert=stack.creds["dev-a"].cert),
                                                  calls)
        check_us = auth_check_us(stack, 20_000 if quick else 100_000)
        rows = [run_attack(pool, attack, stack) for attack in (*cloud_attacks(), *device_attacks(stack, target))]
        still_serving = serving(stack, target)
        model = stack.model
    print_table(rows)
    return {
        "model": model,
        "attacks_tried": len(rows),
        "attacks_refused": sum(row.refused for row in rows),
        "crashes": sum(row.crash for row in rows) + (0 if still_serving else 1),
        "hangs": sum(row.hang for row in rows),
        "auth_added_p50_us": round(added_p50, 1),
        "auth_added_p50_us_mtls": round(mtls_added_p50, 1),
        "auth_check_us": round(check_us, 2),
        "escalation_p50_us_open": round(open_p50, 1),
        "escalation_p50_us_auth": round(auth_p50, 1),
        "escalation_p50_us_mtls": round(mtls_p50, 1),
        "still_serving": still_serving,
        "rows": [asdict(row) for row in rows],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.security", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer timed escalations")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--model", choices=("triton", "in-process"), default="triton",
                        help="tritonserver serving the echo model (default), or an in-process echo")
    parser.add_argument("--backend-python", type=Path, default=None,
                        help="the models' interpreter (CONFROUTE_TRITON_PYTHON)")
    args = parser.parse_args(argv)
    python = args.backend_python or (
        Path(os.environ["CONFROUTE_TRITON_PYTHON"]) if os.environ.get("CONFROUTE_TRITON_PYTHON") else None
    )
    result = run(args.quick, args.model == "triton", python) | this_cpu().to_json()
    summary = {key: value for key, value in result.items() if key != "rows"}
    print(json.dumps(summary, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    ok = (result["attacks_refused"] == result["attacks_tried"] and not result["crashes"] and not result["hangs"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
