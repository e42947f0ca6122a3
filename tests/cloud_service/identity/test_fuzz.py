"""Property-based: any message on every gRPC surface of the authenticated service gets a clear status
(never INTERNAL or UNKNOWN), and the service keeps serving. Thousands of examples per surface."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confroute.v1 import escalation_pb2, fleet_pb2, outcomes_pb2
from tests.cloud_service.identity.messages import messages
from tests.cloud_service.identity.stack import bearer, stubs

if TYPE_CHECKING:
    from tests.cloud_service.identity.conftest import SecureFactory
    from tests.cloud_service.identity.stack import Fleet, SecureService

CLEAR = {"OK", "INVALID_ARGUMENT", "UNAUTHENTICATED", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "NOT_FOUND"}
EXAMPLES = 2000
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


@pytest.fixture
def fuzzed(fleet: Fleet, secure_service: SecureFactory) -> tuple[SecureService, str]:
    service = secure_service(mtls=False, rate_escalations_per_s=0.0, rate_uploads_per_s=0.0)
    return service, fleet.enroll_token("dev-a", "beta")


def assert_still_serving(service: SecureService) -> None:
    reply = health_pb2_grpc.HealthStub(service.channel()).Check(health_pb2.HealthCheckRequest(), timeout=T)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.slow
def test_any_escalation_gets_a_clear_status(fuzzed: tuple[SecureService, str]) -> None:
    service, token = fuzzed
    escalate = stubs(service.channel())[0].Escalate

    @FUZZ
    @given(messages(escalation_pb2.EscalateRequest), st.booleans())
    def check(pb: Any, own: bool) -> None:
        got = status(lambda: escalate(as_device(pb, own), metadata=bearer(token), timeout=T))
        assert got in CLEAR, (got, pb)

    check()
    assert_still_serving(service)


@pytest.mark.slow
def test_any_upload_batch_gets_a_clear_status(fuzzed: tuple[SecureService, str]) -> None:
    service, token = fuzzed
    upload = stubs(service.channel())[1].UploadOutcomes

    @FUZZ
    @given(st.lists(messages(outcomes_pb2.UploadOutcomesRequest), min_size=1, max_size=3), st.booleans())
    def check(batches: list[Any], own: bool) -> None:
        for batch in batches:
            for record in batch.records:
                as_device(record, own)
        got = status(lambda: upload(iter(batches), metadata=bearer(token), timeout=T))
        assert got in CLEAR, (got, batches)

    check()
    assert_still_serving(service)


@pytest.mark.slow
def test_any_policy_request_gets_a_clear_status(fuzzed: tuple[SecureService, str]) -> None:
    service, token = fuzzed
    get = stubs(service.channel())[2].GetPolicy

    @FUZZ
    @given(messages(fleet_pb2.GetPolicyRequest), st.booleans())
    def check(pb: Any, own: bool) -> None:
        got = status(lambda: get(as_device(pb, own), metadata=bearer(token), timeout=T))
        assert got in CLEAR, (got, pb)

    check()
    assert_still_serving(service)


@pytest.mark.slow
@pytest.mark.parametrize("method", [
    "/confroute.v1.EscalationService/Escalate",
    "/confroute.v1.FleetService/GetPolicy",
])
def test_any_bytes_get_a_clear_status(fuzzed: tuple[SecureService, str], method: str) -> None:
    service, token = fuzzed
    call = service.channel().unary_unary(method)

    @FUZZ
    @given(st.binary(max_size=256))
    def check(raw: bytes) -> None:
        got = status(lambda: call(raw, metadata=bearer(token), timeout=T))
        assert got in CLEAR, (got, raw)

    check()
    assert_still_serving(service)
