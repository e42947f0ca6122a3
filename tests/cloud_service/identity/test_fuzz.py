"""Property-based: any message on every gRPC surface of the authenticated service gets a clear status
(never INTERNAL or UNKNOWN), and the service keeps serving. Every request message of every RPC is covered:
Escalate, EscalateStream, UploadOutcomes, UploadLabels, GetPolicy, WatchPolicy and the eight PolicyAdminService RPCs,
plus random bytes. ``CONFROUTE_FUZZ_EXAMPLES`` examples per surface (default 2,000, what CI runs)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_service.policies.config import PolicyStoreConfig
from cloud_service.policies.redis_store import RedisPolicyStore
from confroute.contract import Policy, RoutingMode, Thresholds
from confroute.v1 import escalation_pb2, fleet_pb2, operator_pb2, operator_pb2_grpc, outcomes_pb2
from tests.cloud_service.identity.messages import messages
from tests.cloud_service.identity.stack import EDGE_MODEL, bearer, stubs

if TYPE_CHECKING:
    from tests.cloud_service.identity.conftest import SecureFactory
    from tests.cloud_service.identity.stack import Fleet, SecureService

CLEAR = {"OK", "INVALID_ARGUMENT", "UNAUTHENTICATED", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "NOT_FOUND"}
EXAMPLES = int(os.environ.get("CONFROUTE_FUZZ_EXAMPLES", "2000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
T = 5.0


def status(call: Any) -> str:
    try:
        result = call()
        if hasattr(result, "__iter__") and not isinstance(result, (bytes, str)):
            list(result)
    except grpc.RpcError as exc:
        return str(exc.code().name)
    return "OK"


def as_device(pb: Any, own: bool) -> Any:
    """Half the examples claim the caller's own identity, so the checks after authorisation run too."""
    if own:
        target = pb.escalation if hasattr(pb, "escalation") else pb
        target.device_id, target.cohort = "dev-a", "beta"
    return pb


OPERATOR_REQUESTS = {
    method.name: getattr(operator_pb2, method.input_type.name)
    for method in operator_pb2.DESCRIPTOR.services_by_name["PolicyAdminService"].methods
}


@pytest.fixture
def fuzzed(fleet: Fleet, secure_service: SecureFactory) -> tuple[SecureService, str]:
    service = secure_service(mtls=False, rate_escalations_per_s=0.0, rate_uploads_per_s=0.0)
    return service, fleet.enroll_token("dev-a", "beta")


def assert_still_serving(service: SecureService) -> None:
    reply = health_pb2_grpc.HealthStub(service.channel()).Check(health_pb2.HealthCheckRequest(), timeout=T)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.slow
@pytest.mark.parametrize(("stub", "rpc", "message"), [
    (0, "Escalate", escalation_pb2.EscalateRequest),
    (0, "EscalateStream", escalation_pb2.EscalateStreamRequest),
    (2, "GetPolicy", fleet_pb2.GetPolicyRequest),
], ids=["Escalate", "EscalateStream", "GetPolicy"])
def test_any_single_request_gets_a_clear_status(fuzzed: tuple[SecureService, str], stub: int, rpc: str,
                                                message: Any) -> None:
    service, token = fuzzed
    call = getattr(stubs(service.channel())[stub], rpc)

    @FUZZ
    @given(messages(message), st.booleans())
    def check(pb: Any, own: bool) -> None:
        got = status(lambda: call(as_device(pb, own), metadata=bearer(token), timeout=T))
        assert got in CLEAR, (got, pb)

    check()
    assert_still_serving(service)


@pytest.mark.slow
@pytest.mark.parametrize("rpc", ["UploadOutcomes", "UploadLabels"])
def test_any_upload_batch_gets_a_clear_status(fuzzed: tuple[SecureService, str], rpc: str) -> None:
    service, token = fuzzed
    upload = getattr(stubs(service.channel())[1], rpc)
    labels = rpc == "UploadLabels"  # its messages wrap an outcome batch

    @FUZZ
    @given(st.lists(messages(outcomes_pb2.UploadOutcomesRequest), min_size=1, max_size=3), st.booleans())
    def check(batches: list[Any], own: bool) -> None:
        for batch in batches:
            for record in batch.records:
                as_device(record, own)
        sent = [outcomes_pb2.UploadLabelsRequest(batch=batch) for batch in batches] if labels else batches
        got = status(lambda: upload(iter(sent), metadata=bearer(token), timeout=T))
        assert got in CLEAR, (got, batches)

    check()
    assert_still_serving(service)


@pytest.mark.slow
def test_any_watch_gets_a_clear_status(fuzzed: tuple[SecureService, str]) -> None:
    """Own-identity watches name the published key, so their first answer comes at once; the stream is then
    cancelled (a watch never ends by itself)."""
    service, token = fuzzed
    service.publish(Policy("v1", EDGE_MODEL, "beta", RoutingMode.PRE, Thresholds(0.5, 0.5, 0.4, 0.6),
                           datetime.now(timezone.utc)))
    watch = stubs(service.channel())[2].WatchPolicy
    seen: set[str] = set()

    @FUZZ
    @given(messages(fleet_pb2.WatchPolicyRequest), st.booleans())
    def check(pb: Any, own: bool) -> None:
        if own:
            as_device(pb, own).edge_model.version = EDGE_MODEL.version
            pb.known_policy_version = ""
        stream = watch(pb, metadata=bearer(token), timeout=T)
        try:
            got = status(lambda: next(stream))
        finally:
            stream.cancel()
        seen.add(got)
        assert got in CLEAR, (got, pb)

    check()
    assert "OK" in seen  # some watches were served, not only refused
    assert_still_serving(service)


@pytest.fixture
def operated(fleet: Fleet, secure_service: SecureFactory) -> tuple[SecureService, dict[bool, str]]:
    """A service with the operators' surface (a Redis policy store); tokens of a policy admin (True) and a
    read-only operator (False)."""
    service = secure_service(mtls=False, policy_store=lambda: RedisPolicyStore(PolicyStoreConfig(url=fleet.redis_url)))
    tokens = {True: fleet.enroll_token("ops-admin", "", "--operator", "--role", "policy-admin"),
              False: fleet.enroll_token("ops-ro", "", "--operator", "--role", "read-only")}
    return service, tokens


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(OPERATOR_REQUESTS))
def test_any_operator_request_gets_a_clear_status(
    operated: tuple[SecureService, dict[bool, str]], method: str
) -> None:
    service, tokens = operated
    call = getattr(operator_pb2_grpc.PolicyAdminServiceStub(service.channel()), method)  # type: ignore[no-untyped-call]

    @FUZZ
    @given(messages(OPERATOR_REQUESTS[method]), st.booleans())
    def check(pb: Any, admin: bool) -> None:
        got = status(lambda: call(pb, metadata=bearer(tokens[admin]), timeout=T))
        assert got in CLEAR, (got, pb)

    check()
    assert_still_serving(service)


@pytest.mark.slow
@pytest.mark.parametrize("method", [
    "/confroute.v1.EscalationService/Escalate",
    "/confroute.v1.FleetService/GetPolicy",
    "/confroute.v1.PolicyAdminService/SetPolicy",
])
def test_any_bytes_get_a_clear_status(fleet: Fleet, secure_service: SecureFactory, method: str) -> None:
    operator = "PolicyAdminService" in method  # an operator's surface: a policy admin's token, else a device's
    service = secure_service(mtls=False, policy_store=lambda: RedisPolicyStore(PolicyStoreConfig(url=fleet.redis_url)))
    token = fleet.enroll_token("ops-admin", "", "--operator", "--role", "policy-admin") if operator else \
        fleet.enroll_token("dev-a", "beta")
    call = service.channel().unary_unary(method)

    @FUZZ
    @given(st.binary(max_size=256))
    def check(raw: bytes) -> None:
        got = status(lambda: call(raw, metadata=bearer(token), timeout=T))
        assert got in CLEAR, (got, raw)

    check()
    assert_still_serving(service)
