"""The attacks on the cloud service: each returns what it got (a gRPC status name, or a word for an
outcome that is not a status), to be compared with what it should get."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import grpc
import redis as redis_py
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from bench.securitybench.stack import EDGE_MODEL, Stack, policy_for
from cloud_service.identity.ca import FleetCA, init_ca
from cloud_service.identity.tokens import new_token
from cloud_service.metrics import refusals_counted
from cloud_service.outcomes.statistics import PROPENSITY_FLOOR, WEIGHT_SCALE, record_fold
from confroute.contract import ChatMessage, ChatRole, EscalationRequest, GenerationParams, RoutingMode
from confroute.contract.enums import AnsweredBy, Decision, Label, LabelSource
from confroute.contract.outcome import Latency, OutcomeRecord
from confroute.contract.policy import PolicyRequest
from confroute.contract.upload import OutcomeBatch
from confroute.v1 import (
    escalation_pb2,
    escalation_pb2_grpc,
    fleet_pb2_grpc,
    operator_pb2,
    operator_pb2_grpc,
    outcomes_pb2_grpc,
)

T = 5.0
Metadata = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Attack:
    name: str
    expected: str
    run: Callable[[Stack], str]


def escalation(device: str, cohort: str = "beta", *, text: str = "hello", max_tokens: int = 16,
               messages: int = 1) -> escalation_pb2.EscalateRequest:
    request = EscalationRequest(
        query_id="q", device_id=device, cohort=cohort, edge_model=EDGE_MODEL,
        messages=tuple(ChatMessage(ChatRole.USER, text) for _ in range(messages)),
        params=GenerationParams(max_tokens=max_tokens), mode=RoutingMode.PRE, signals={"p": 0.3},
    )
    return escalation_pb2.EscalateRequest(escalation=request.to_pb())


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


def status_of(call: Callable[[], Any]) -> str:
    try:
        call()
    except grpc.RpcError as exc:
        return str(exc.code().name)
    return "OK"


def escalate(stack: Stack, server: str, request: Any, metadata: Metadata = (), cert: Any = None,
             root: bytes | None = None) -> str:
    with stack.channel(server, cert, root) as channel:
        stub = escalation_pb2_grpc.EscalationServiceStub(channel)  # type: ignore[no-untyped-call]
        return status_of(lambda: stub.Escalate(request, metadata=metadata, timeout=T))


def token_of(stack: Stack, name: str) -> Metadata:
    return bearer(stack.creds[name].token)


def _rogue_cert(stack: Stack) -> Any:
    init_ca(stack.folder / "rogue")
    return FleetCA.load(stack.folder / "rogue").issue_device("dev-a", dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc))


def outcome(query_id: str, device: str, **changes: Any) -> OutcomeRecord:
    now = dt.datetime.now(dt.timezone.utc)
    record = OutcomeRecord(query_id=query_id, device_id=device, cohort="beta", edge_model=EDGE_MODEL,
                           mode=RoutingMode.PRE, decision=Decision.LOCAL, answered_by=AnsweredBy.EDGE,
                           latency=Latency(edge_ms=1.0, total_ms=1.0), started_at=now, finished_at=now,
                           signals={"probe_tbg": 0.5}, label=Label.CORRECT,
                           label_source=LabelSource.USER_FEEDBACK)
    return replace(record, **changes)


def upload(stack: Stack, records: Sequence[OutcomeRecord], credential: str = "dev-a") -> str:
    """"STORED" when every record was stored, else "REJECTED:<fields>" or the call's status."""
    with stack.channel("token") as channel:
        stub = outcomes_pb2_grpc.OutcomesServiceStub(channel)  # type: ignore[no-untyped-call]
        try:
            acks = list(stub.UploadOutcomes(iter([OutcomeBatch("b", tuple(records)).to_pb()]),
                                            metadata=token_of(stack, credential), timeout=T))
        except grpc.RpcError as exc:
            return str(exc.code().name)
    rejected = sorted({r.field for ack in acks for r in ack.rejected})
    return f"REJECTED:{','.join(rejected)}" if rejected else "STORED"


def watch(stack: Stack, cohort: str, device: str, credential: str = "dev-a") -> str:
    with stack.channel("token") as channel:
        stub = fleet_pb2_grpc.FleetServiceStub(channel)  # type: ignore[no-untyped-call]
        wanted = PolicyRequest(EDGE_MODEL, cohort, device).to_watch_pb()
        stream = stub.WatchPolicy(wanted, metadata=token_of(stack, credential), timeout=T)
        try:
            return status_of(lambda: next(stream))
        finally:
            stream.cancel()


def operator_call(stack: Stack, method: str, metadata: Metadata = ()) -> str:
    """One PolicyAdminService call on the test key (the policy commands through the service)."""
    key = operator_pb2.RolloutKey(edge_model_version=EDGE_MODEL.version, cohort="beta")
    requests: dict[str, Any] = {
        "Promote": operator_pb2.PromoteRequest(key=key, reason="attack"),
        "Pin": operator_pb2.PinRequest(key=key, version="v1", reason="attack"),
        "SetPolicy": operator_pb2.SetPolicyRequest(policy=policy_for("beta", "v666").to_pb(), reason="attack"),
        "GetHistory": operator_pb2.GetHistoryRequest(key=key),
    }
    with stack.channel("token") as channel:
        stub = operator_pb2_grpc.PolicyAdminServiceStub(channel)  # type: ignore[no-untyped-call]
        return status_of(lambda: getattr(stub, method)(requests[method], metadata=metadata, timeout=T))


def propensity_floor(stack: Stack) -> str:
    record = outcome("tiny-p", "dev-a", propensity=1e-12)
    stored = upload(stack, [record])
    capped = record_fold(record).weight == round(WEIGHT_SCALE / PROPENSITY_FLOOR)
    return f"{stored}+{'CLIPPED' if capped else 'UNCLIPPED'}"


def flood(stack: Stack) -> str:
    """Escalations from dev-a past its burst; dev-b, next to it, must still be served."""
    codes = {escalate(stack, "token", escalation("dev-a"), token_of(stack, "dev-a")) for _ in range(40)}
    neighbour = escalate(stack, "token", escalation("dev-b", "gamma"), token_of(stack, "dev-b"))
    limited = "RESOURCE_EXHAUSTED" if "RESOURCE_EXHAUSTED" in codes else "NOT_LIMITED"
    return f"{limited}+neighbour_{neighbour}"


def watch_flood(stack: Stack) -> str:
    """More watch streams from one device than its cap."""
    with stack.channel("token") as channel:
        stub = fleet_pb2_grpc.FleetServiceStub(channel)  # type: ignore[no-untyped-call]
        wanted = PolicyRequest(EDGE_MODEL, "beta", "dev-a").to_watch_pb()
        streams = [stub.WatchPolicy(wanted, metadata=token_of(stack, "dev-a"), timeout=T) for _ in range(20)]
        try:
            codes = {status_of(lambda s=s: next(s)) for s in streams}  # type: ignore[misc]
        finally:
            for stream in streams:
                stream.cancel()
    return "RESOURCE_EXHAUSTED" if "RESOURCE_EXHAUSTED" in codes else "NOT_LIMITED"


def redis_as(stack: Stack, url: str, key: str) -> str:
    """A write to Redis: "REFUSED" when the server says no (no password, or a key outside the ACL)."""
    try:
        with redis_py.Redis.from_url(url, socket_timeout=T) as client:
            client.set(key, "attack")
    except (redis_py.AuthenticationError, redis_py.exceptions.NoPermissionError):
        return "REFUSED"
    except redis_py.ResponseError as exc:
        return "REFUSED" if str(exc).startswith(("NOAUTH", "NOPERM", "WRONGPASS")) else f"ERROR:{exc}"
    return "WRITTEN"


def garbage_token_flood(stack: Stack) -> str:
    """200 distinct well-formed garbage tokens from one address: past its budget they are refused before any
    lookup (RESOURCE_EXHAUSTED), counted; dev-a, on the same address, is served throughout."""
    codes, served = [], True
    with stack.channel("token_bare") as channel:
        stub = escalation_pb2_grpc.EscalationServiceStub(channel)  # type: ignore[no-untyped-call]
        for _ in range(200):
            codes.append(status_of(lambda: stub.Escalate(escalation("dev-a"), metadata=bearer(new_token()), timeout=T)))
        for _ in range(5):
            served &= status_of(lambda: stub.Escalate(escalation("dev-a"), metadata=token_of(stack, "dev-a"),
                                                      timeout=T)) == "OK"
    counted = refusals_counted(stack.metrics["token_bare"].registry, "EscalationService", "credential_flood")
    limited = "RESOURCE_EXHAUSTED" if codes.count("RESOURCE_EXHAUSTED") == counted and counted else "NOT_LIMITED"
    return f"{limited}+device_{'OK' if served else 'REFUSED'}"


def garbage_bytes(stack: Stack) -> str:
    """Random bytes and a half HTTP/2 preface on the TLS port; the service must keep serving."""
    for payload in (b"\x00\xff" * 4096, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00"):
        with socket.create_connection(("127.0.0.1", stack.servers["token"].port), timeout=T) as raw:
            raw.sendall(payload)
            raw.settimeout(T)
            with contextlib.suppress(OSError):  # a reset is a fine answer to garbage
                raw.recv(1024)
    with stack.channel("token") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(), timeout=T)
    return "SERVING" if reply.status == health_pb2.HealthCheckResponse.SERVING else "NOT_SERVING"


def cloud_attacks() -> list[Attack]:
    """Every attack on the cloud service, in the order they run (the flood last: it spends dev-a's rate)."""
    a = escalation("dev-a")
    return [
        Attack("no credential", "UNAUTHENTICATED", lambda s: escalate(s, "token", a)),
        Attack("garbage token", "UNAUTHENTICATED", lambda s: escalate(s, "token", a, bearer("crt_garbage"))),
        Attack("malformed authorization", "UNAUTHENTICATED",
               lambda s: escalate(s, "token", a, (("authorization", "Basic Zm9vOmJhcg=="),))),
        Attack("expired token", "UNAUTHENTICATED", lambda s: escalate(s, "token", escalation("dev-e"),
                                                                       token_of(s, "dev-e"))),
        Attack("revoked token", "UNAUTHENTICATED", lambda s: escalate(s, "token", escalation("dev-r"),
                                                                       token_of(s, "dev-r"))),
        Attack("rotated-out token", "UNAUTHENTICATED",
               lambda s: escalate(s, "token", escalation("dev-x"), bearer(s.rotated_out.token))),
        Attack("no client certificate (mTLS)", "UNAVAILABLE", lambda s: escalate(s, "mtls", a)),
        Attack("certificate from another CA", "UNAVAILABLE", lambda s: escalate(s, "mtls", a, cert=_rogue_cert(s))),
        Attack("revoked certificate", "UNAUTHENTICATED",
               lambda s: escalate(s, "mtls", escalation("dev-r"), cert=s.creds["dev-r"].cert)),
        Attack("rotated-out certificate", "UNAUTHENTICATED",
               lambda s: escalate(s, "mtls", escalation("dev-x"), cert=s.rotated_out.cert)),
        Attack("A escalates as B (token)", "PERMISSION_DENIED",
               lambda s: escalate(s, "token", escalation("dev-b", "gamma"), token_of(s, "dev-a"))),
        Attack("A escalates as B (certificate)", "PERMISSION_DENIED",
               lambda s: escalate(s, "mtls", escalation("dev-b", "gamma"), cert=s.creds["dev-a"].cert)),
        Attack("A escalates in another cohort", "PERMISSION_DENIED",
               lambda s: escalate(s, "token", escalation("dev-a", "gamma"), token_of(s, "dev-a"))),
        Attack("operator escalates", "PERMISSION_DENIED",
               lambda s: escalate(s, "token", escalation("ops", ""), token_of(s, "ops"))),
        Attack("A uploads as B", "REJECTED:device_id", lambda s: upload(s, [outcome("as-b", "dev-b")])),
        Attack("A asserts label_source=reference", "REJECTED:label_source",
               lambda s: upload(s, [outcome("gold", "dev-a", label_source=LabelSource.REFERENCE)])),
        Attack("propensity 1e-12", "STORED+CLIPPED", propensity_floor),
        Attack("A watches B's cohort", "PERMISSION_DENIED", lambda s: watch(s, "gamma", "dev-a")),
        Attack("A picks its canary arm (another id)", "PERMISSION_DENIED", lambda s: watch(s, "beta", "dev-zz")),
        Attack("oversized message (2 MiB)", "RESOURCE_EXHAUSTED",
               lambda s: escalate(s, "token", escalation("dev-a", text="x" * (2 << 20)), token_of(s, "dev-a"))),
        Attack("max_tokens 10^6", "INVALID_ARGUMENT",
               lambda s: escalate(s, "token", escalation("dev-a", max_tokens=10**6), token_of(s, "dev-a"))),
        Attack("100,000 messages", "INVALID_ARGUMENT",
               lambda s: escalate(s, "token", escalation("dev-a", text="a", messages=100_000), token_of(s, "dev-a"))),
        Attack("20 watch streams from one device", "RESOURCE_EXHAUSTED", watch_flood),
        Attack("read-only operator promotes the canary", "PERMISSION_DENIED",
               lambda s: operator_call(s, "Promote", token_of(s, "ops"))),
        Attack("read-only operator pins a version", "PERMISSION_DENIED",
               lambda s: operator_call(s, "Pin", token_of(s, "ops"))),
        Attack("device pins its cohort's policy", "PERMISSION_DENIED",
               lambda s: operator_call(s, "Pin", token_of(s, "dev-a"))),
        Attack("device publishes a policy", "PERMISSION_DENIED",
               lambda s: operator_call(s, "SetPolicy", token_of(s, "dev-a"))),
        Attack("device reads the rollout history", "PERMISSION_DENIED",
               lambda s: operator_call(s, "GetHistory", token_of(s, "dev-a"))),
        Attack("policy command without a credential", "UNAUTHENTICATED", lambda s: operator_call(s, "Promote")),
        Attack("garbage bytes on the port", "SERVING", garbage_bytes),
        Attack("flood of garbage tokens from one address", "RESOURCE_EXHAUSTED+device_OK", garbage_token_flood),
        Attack("Redis without the ACL user's password", "REFUSED",
               lambda s: redis_as(s, f"redis://127.0.0.1:{s.redis_port}/0", "confroute:attack")),
        Attack("Redis ACL user writes outside confroute:*", "REFUSED",
               lambda s: redis_as(s, s.redis_url, "other:attack")),
        Attack("flood past the rate limit", "RESOURCE_EXHAUSTED+neighbour_OK", flood),
    ]
