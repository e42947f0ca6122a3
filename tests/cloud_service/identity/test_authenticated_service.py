"""The service authenticates every call: bearer tokens and client certificates, on a real Redis and a
gRPC server on a loopback port with real TLS certificates. Identity comes from the credential; what a
message claims must agree with it."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from cloud_service.identity.ca import FleetCA, init_ca
from confroute.contract import Policy, RoutingMode, Thresholds
from confroute.contract.enums import LabelSource
from confroute.contract.policy import PolicyRequest
from confroute.contract.upload import OutcomeBatch
from tests.cloud_service.identity.stack import EDGE_MODEL, bearer, escalation, stubs
from tests.cloud_service.outcomes.samples import outcome

if TYPE_CHECKING:
    from pathlib import Path

    from tests.cloud_service.identity.conftest import SecureFactory
    from tests.cloud_service.identity.stack import Fleet, SecureService

T = 5.0
REVOCATION_BOUND_S = 5.0


def code_of(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    code: grpc.StatusCode = caught.value.code()
    return code


def policy(cohort: str, version: str = "v1") -> Policy:
    return Policy(version, EDGE_MODEL, cohort, RoutingMode.PRE, Thresholds(0.5, 0.5, 0.4, 0.6),
                  datetime(2026, 12, 1, tzinfo=timezone.utc))


def ask(cohort: str, device_id: str) -> Any:
    return PolicyRequest(EDGE_MODEL, cohort, device_id).to_get_pb()


def test_a_device_with_its_token_escalates_and_no_or_a_garbage_token_is_unauthenticated(
    fleet: Fleet, secure_service: SecureFactory
) -> None:
    service = secure_service(mtls=False)
    token = fleet.enroll_token("dev-a")
    escalate = stubs(service.channel())[0].Escalate

    assert escalate(escalation("dev-a"), metadata=bearer(token), timeout=T).answer.text == "the quick brown fox"
    for metadata in ((), bearer("crt_garbage"), (("authorization", "Basic eA=="),)):
        assert code_of(lambda: escalate(escalation("dev-a"), metadata=metadata, timeout=T)) == (  # noqa: B023
            grpc.StatusCode.UNAUTHENTICATED
        )


def test_refusals_are_counted_by_method_and_status(fleet: Fleet, secure_service: SecureFactory) -> None:
    service = secure_service(mtls=False)
    token = fleet.enroll_token("dev-a")
    escalate = stubs(service.channel())[0].Escalate
    code_of(lambda: escalate(escalation("dev-a"), timeout=T))
    code_of(lambda: escalate(escalation("dev-b"), metadata=bearer(token), timeout=T))

    def count(status: str) -> float:
        value = service.metrics.registry.get_sample_value(
            "confroute_refusals_total",
            {"method": "/confroute.v1.EscalationService/Escalate", "status": status, "reason": status.lower()},
        )
        return value or 0.0

    assert count("UNAUTHENTICATED") == count("PERMISSION_DENIED") == 1.0


def test_health_stays_open_without_a_credential(secure_service: SecureFactory) -> None:
    service = secure_service(mtls=False)

    reply = health_pb2_grpc.HealthStub(service.channel()).Check(health_pb2.HealthCheckRequest(), timeout=T)

    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_identity_fields_that_disagree_with_the_credential_are_permission_denied(
    fleet: Fleet, secure_service: SecureFactory
) -> None:
    service = secure_service(mtls=False)
    token = fleet.enroll_token("dev-a", "beta")
    escalate = stubs(service.channel())[0].Escalate

    as_b = code_of(lambda: escalate(escalation("dev-b", "beta"), metadata=bearer(token), timeout=T))
    other_cohort = code_of(lambda: escalate(escalation("dev-a", "gamma"), metadata=bearer(token), timeout=T))

    assert as_b == other_cohort == grpc.StatusCode.PERMISSION_DENIED


def test_a_device_reads_only_its_own_cohort_as_itself_and_an_operator_reads_any(
    fleet: Fleet, secure_service: SecureFactory
) -> None:
    service = secure_service(mtls=False)
    device = fleet.enroll_token("dev-a", "beta")
    operator = fleet.enroll_token("ops-1", "", "--operator", "--role", "read-only")
    service.publish(policy("beta"))
    service.publish(policy("gamma"))
    escalation_stub, _, fleet_stub = stubs(service.channel())

    assert fleet_stub.GetPolicy(ask("beta", "dev-a"), metadata=bearer(device), timeout=T).policy.cohort == "beta"
    for wanted in (ask("gamma", "dev-a"), ask("beta", "dev-b")):
        assert code_of(lambda: fleet_stub.GetPolicy(wanted, metadata=bearer(device), timeout=T)) == (  # noqa: B023
            grpc.StatusCode.PERMISSION_DENIED
        )
    assert fleet_stub.GetPolicy(ask("gamma", "x"), metadata=bearer(operator), timeout=T).policy.cohort == "gamma"
    assert code_of(lambda: escalation_stub.Escalate(escalation("ops-1", ""), metadata=bearer(operator), timeout=T)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )


def test_uploads_for_another_device_or_with_a_reference_label_are_rejected(
    fleet: Fleet, secure_service: SecureFactory
) -> None:
    service = secure_service(mtls=False)
    token = fleet.enroll_token("dev-a", "beta")
    records = (
        outcome("mine", device_id="dev-a", label_source=LabelSource.USER_FEEDBACK),
        outcome("theirs", device_id="dev-b", label_source=LabelSource.USER_FEEDBACK),
        outcome("gold", device_id="dev-a", label_source=LabelSource.REFERENCE),
    )
    upload = stubs(service.channel())[1].UploadOutcomes

    acks = list(upload(iter([OutcomeBatch("b1", records).to_pb()]), metadata=bearer(token), timeout=T))

    assert acks[0].stored == 1
    assert {(r.query_id, r.field) for r in acks[0].rejected} == {("theirs", "device_id"), ("gold", "label_source")}
    assert list(service.log.stored) == ["mine"]


def test_an_expired_credential_is_unauthenticated(fleet: Fleet, secure_service: SecureFactory) -> None:
    service = secure_service(mtls=False)
    token = fleet.enroll_token("dev-a")
    _expire(fleet, "dev-a")
    escalate = stubs(service.channel())[0].Escalate

    assert code_of(lambda: escalate(escalation("dev-a"), metadata=bearer(token), timeout=T)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )


def _expire(fleet: Fleet, device_id: str) -> None:
    import redis

    from cloud_service.identity.record import Principal
    from cloud_service.store.schema import IdentityKeys

    client = redis.Redis.from_url(fleet.redis_url)
    key = IdentityKeys().principal(device_id)
    record = Principal.from_json(client.get(key))  # type: ignore[arg-type]
    client.set(key, replace(record, expires_at_s=int(time.time()) - 1).to_json())
    client.close()


def test_revoking_a_token_refuses_its_next_calls_and_ends_its_open_watch_within_the_bound(
    fleet: Fleet, secure_service: SecureFactory
) -> None:
    service = secure_service(mtls=False)
    token = fleet.enroll_token("dev-a", "beta")
    service.publish(policy("beta"))
    escalation_stub, _, fleet_stub = stubs(service.channel())
    escalate = escalation_stub.Escalate
    escalate(escalation("dev-a"), metadata=bearer(token), timeout=T)  # cached now
    watch = fleet_stub.WatchPolicy(PolicyRequest(EDGE_MODEL, "beta", "dev-a").to_watch_pb(), metadata=bearer(token),
                                   timeout=30.0)
    assert next(watch).policy.policy_version == "v1"

    fleet.cli("devices", "revoke", "dev-a")
    revoked_at = time.monotonic()

    assert code_of(lambda: next(watch)) == grpc.StatusCode.UNAUTHENTICATED
    assert time.monotonic() - revoked_at < REVOCATION_BOUND_S
    assert code_of(lambda: escalate(escalation("dev-a"), metadata=bearer(token), timeout=T)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )


def test_a_revocation_reaches_every_replica_within_the_bound(fleet: Fleet, secure_service: SecureFactory) -> None:
    replicas = [secure_service(mtls=False) for _ in range(3)]
    token = fleet.enroll_token("dev-a")
    calls = [stubs(replica.channel())[0].Escalate for replica in replicas]
    for escalate in calls:
        escalate(escalation("dev-a"), metadata=bearer(token), timeout=T)  # cached on every replica

    fleet.cli("devices", "revoke", "dev-a")
    revoked_at = time.monotonic()

    refused: set[int] = set()
    while len(refused) < len(calls):
        assert time.monotonic() - revoked_at < REVOCATION_BOUND_S, f"replicas {refused} refused, others not"
        for i, escalate in enumerate(calls):
            if code_of_or_ok(lambda e=escalate: e(escalation("dev-a"), metadata=bearer(token), timeout=T)) != "OK":
                refused.add(i)
        time.sleep(0.05)


def test_a_rotated_out_token_is_refused_and_the_new_one_works(fleet: Fleet, secure_service: SecureFactory) -> None:
    service = secure_service(mtls=False)
    old = fleet.enroll_token("dev-a")
    escalate = stubs(service.channel())[0].Escalate
    escalate(escalation("dev-a"), metadata=bearer(old), timeout=T)
    printed = fleet.cli("devices", "rotate", "dev-a")
    new = next(line.split()[1] for line in printed.splitlines() if line.startswith("token "))

    deadline = time.monotonic() + REVOCATION_BOUND_S
    while time.monotonic() < deadline:
        try:
            escalate(escalation("dev-a"), metadata=bearer(old), timeout=T)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
            break
        time.sleep(0.05)
    else:
        pytest.fail("the rotated-out token still works")
    assert escalate(escalation("dev-a"), metadata=bearer(new), timeout=T).answer.text


# -- mTLS -------------------------------------------------------------------------------------------------


def test_a_device_certificate_identifies_the_device(fleet: Fleet, secure_service: SecureFactory) -> None:
    service = secure_service(mtls=True)
    cert = fleet.enroll_cert("dev-m", "beta")
    escalate = stubs(service.channel(cert))[0].Escalate

    assert escalate(escalation("dev-m"), timeout=T).answer.text == "the quick brown fox"
    assert code_of(lambda: escalate(escalation("dev-x"), timeout=T)) == grpc.StatusCode.PERMISSION_DENIED


def test_without_a_client_certificate_or_with_one_from_another_ca_no_call_gets_through(
    fleet: Fleet, secure_service: SecureFactory, tmp_path: Path
) -> None:
    service = secure_service(mtls=True)
    fleet.enroll_cert("dev-m")
    init_ca(tmp_path / "rogue")
    rogue = FleetCA.load(tmp_path / "rogue").issue_device("dev-m", datetime(2030, 1, 1, tzinfo=timezone.utc))

    for channel in (service.channel(), service.channel((rogue.cert_pem, rogue.key_pem))):
        escalate = stubs(channel)[0].Escalate
        assert code_of(lambda: escalate(escalation("dev-m"), timeout=T)) == grpc.StatusCode.UNAVAILABLE  # noqa: B023


def test_a_rotated_out_certificate_verifies_but_is_unauthenticated(fleet: Fleet, secure_service: SecureFactory) -> None:
    service = secure_service(mtls=True)
    old = fleet.enroll_cert("dev-m")
    fleet.cli("devices", "rotate", "dev-m", "--credential", "cert", "--out", str(fleet.folder / "new"))
    escalate = stubs(service.channel(old))[0].Escalate

    assert code_of(lambda: escalate(escalation("dev-m"), timeout=T)) == grpc.StatusCode.UNAUTHENTICATED


def test_revoking_a_certificate_ends_its_open_watch(fleet: Fleet, secure_service: SecureFactory) -> None:
    service: SecureService = secure_service(mtls=True)
    cert = fleet.enroll_cert("dev-m", "beta")
    service.publish(policy("beta"))
    watch = stubs(service.channel(cert))[2].WatchPolicy(PolicyRequest(EDGE_MODEL, "beta", "dev-m").to_watch_pb(),
                                                          timeout=30.0)
    assert next(watch).policy.cohort == "beta"
    ended = threading.Event()

    fleet.cli("devices", "revoke", "dev-m")

    assert code_of(lambda: next(watch)) == grpc.StatusCode.UNAUTHENTICATED
    ended.set()


def test_identity_works_as_a_redis_acl_user_limited_to_confroute_keys(
    fleet: Fleet, loop: Any, tmp_path: Path
) -> None:
    from contextlib import AsyncExitStack

    import redis

    from tests.cloud_service.identity.stack import Fleet as FleetOf
    from tests.cloud_service.identity.stack import start_secure

    with redis.Redis.from_url(fleet.redis_url) as admin:
        admin.acl_setuser("svc", enabled=True, passwords=["+s3cret-pw"], keys=["confroute:*"],
                          commands=["+@all", "-@dangerous"])
    url = fleet.redis_url.replace("redis://", "redis://svc:s3cret-pw@")
    limited = FleetOf(fleet.folder, url)
    token = limited.enroll_token("dev-a")
    stack = AsyncExitStack()
    try:
        service = loop.run(start_secure(limited, stack, mtls=False))
        escalate = stubs(service.channel())[0].Escalate
        assert escalate(escalation("dev-a"), metadata=bearer(token), timeout=T).answer.text
        limited.cli("devices", "revoke", "dev-a")
        deadline = time.monotonic() + REVOCATION_BOUND_S
        while code_of_or_ok(lambda: escalate(escalation("dev-a"), metadata=bearer(token), timeout=T)) == "OK":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        loop.run(stack.aclose())


def code_of_or_ok(call: Any) -> str:
    try:
        call()
    except grpc.RpcError as exc:
        return str(exc.code().name)
    return "OK"
