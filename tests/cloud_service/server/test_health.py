"""Health checking, reflection, and what clients see when Triton goes away."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import grpc
import pytest
from grpc_health.v1 import health_pb2  # type: ignore[import-untyped]
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc  # type: ignore[import-untyped]

from cloud_service.inference import TritonServerProcess
from confroute.contract import ChatMessage, ChatRole, EscalationRequest, GenerationParams, ModelRef, RoutingMode
from confroute.v1 import escalation_pb2

if TYPE_CHECKING:
    from tests.cloud_service.server.conftest import Service, ServiceFactory

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICES = ("", "confroute.v1.EscalationService", "confroute.v1.OutcomesService", "confroute.v1.FleetService")


def escalate(service: Service, text: str, timeout_s: float) -> str:
    request = EscalationRequest(
        query_id="q-1",
        device_id="device-1",
        cohort="beta",
        edge_model=ModelRef("smollm2-135m-instruct", "b1"),
        messages=(ChatMessage(ChatRole.USER, text),),
        params=GenerationParams(max_tokens=16),
        mode=RoutingMode.PRE,
    )
    pb = escalation_pb2.EscalateRequest(escalation=request.to_pb())
    return str(service.escalation.Escalate(pb, timeout=timeout_s).answer.text)


def status(service: Service, name: str = "") -> int:
    return int(service.health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status)


def test_the_service_is_serving_once_triton_is_ready(service: Service) -> None:
    service.wait_for(lambda: status(service) == SERVING, "SERVING")

    assert [status(service, name) for name in SERVICES] == [SERVING] * len(SERVICES)


def test_reflection_lists_the_services(bare_service: Service) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(bare_service.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")

    (response,) = stub.ServerReflectionInfo(iter([request]), timeout=5)

    names = {entry.name for entry in response.list_services_response.service}
    assert set(SERVICES[1:]) | {"grpc.health.v1.Health"} <= names


def test_triton_stopped_is_unavailable_within_the_deadline_and_not_serving(
    make_service: ServiceFactory, own_triton: TritonServerProcess
) -> None:
    service = make_service(triton_url=own_triton.endpoints.grpc_url)
    service.wait_for(lambda: status(service) == SERVING, "SERVING")
    assert escalate(service, "still here", timeout_s=5.0) == "still here"

    own_triton.stop()
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        escalate(service, "anyone?", timeout_s=3.0)

    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert time.monotonic() - started < 3.0
    service.wait_for(lambda: status(service) == NOT_SERVING, "NOT_SERVING")
    assert status(service, "confroute.v1.EscalationService") == NOT_SERVING


def test_uploads_and_policy_watches_stay_serving_while_triton_is_down(
    make_service: ServiceFactory, own_triton: TritonServerProcess
) -> None:
    service = make_service(triton_url=own_triton.endpoints.grpc_url)
    service.wait_for(lambda: status(service) == SERVING, "SERVING")

    own_triton.stop()
    service.wait_for(lambda: status(service) == NOT_SERVING, "NOT_SERVING")

    # What the Kubernetes readiness probe asks (deploy/k8s): the pod stays in the load balancer.
    assert status(service, "confroute.v1.FleetService") == SERVING
    assert status(service, "confroute.v1.OutcomesService") == SERVING


def test_health_watch_streams_the_status_through_the_interceptor(bare_service: Service) -> None:
    watch = bare_service.health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=5)
    try:
        statuses = [next(watch).status]
        if statuses[0] != SERVING:
            statuses.append(next(watch).status)
    finally:
        watch.cancel()

    assert statuses[-1] == SERVING
