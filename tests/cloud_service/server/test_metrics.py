"""Prometheus metrics: a registry per service, served on its own port."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from cloud_service.metrics import OTHER_COHORT, create_metrics, serve_metrics
from confroute.contract import (
    ChatMessage,
    ChatRole,
    EscalationRequest,
    EscalationResponse,
    FinishReason,
    GenerationParams,
    ModelRef,
    RoutingMode,
    Timings,
    Usage,
)
from confroute.errors import Unavailable
from confroute.v1 import escalation_pb2
from tests.cloud_service.server.conftest import FailingBackend

if TYPE_CHECKING:
    from tests.cloud_service.server.conftest import Service, ServiceFactory


REQUEST = escalation_pb2.EscalateRequest(
    escalation=EscalationRequest(
        query_id="q-1",
        device_id="device-1",
        cohort="beta",
        edge_model=ModelRef("smollm2-135m-instruct", "b1"),
        messages=(ChatMessage(ChatRole.USER, "hello"),),
        params=GenerationParams(max_tokens=16),
        mode=RoutingMode.PRE,
    ).to_pb()
)


def escalate(service: Service, max_tokens: int = 16) -> None:
    request = EscalationRequest(
        query_id="q-1",
        device_id="device-1",
        cohort="beta",
        edge_model=ModelRef("smollm2-135m-instruct", "b1"),
        messages=(ChatMessage(ChatRole.USER, "hello"),),
        params=GenerationParams(max_tokens=16),
        mode=RoutingMode.PRE,
    ).to_pb()
    request.params.max_tokens = max_tokens
    service.escalation.Escalate(escalation_pb2.EscalateRequest(escalation=request), timeout=5)


def scrape(port: int, path: str = "/metrics") -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, whatever http_proxy says
    with opener.open(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return str(response.read().decode("utf-8"))


def test_escalations_are_counted_by_cohort_mode_and_status_on_the_metrics_port(make_service: ServiceFactory) -> None:
    service = make_service(metrics_listen="127.0.0.1:0")
    escalate(service)
    with pytest.raises(grpc.RpcError):
        escalate(service, max_tokens=0)
    service.wait_for(lambda: len(service.log.recorded) == 1, "the record")
    assert service.running.metrics_port is not None

    text = scrape(service.running.metrics_port)

    labels = 'cohort="beta",edge_model_version="b1",kind="escalation",mode="pre"'
    assert f'confroute_escalations_total{{{labels},status="OK"}} 1.0' in text
    assert f'confroute_escalations_total{{{labels},status="INVALID_ARGUMENT"}} 1.0' in text
    assert "confroute_triton_latency_seconds_count 1.0" in text
    assert "confroute_triton_queue_seconds_count 1.0" in text
    assert 'confroute_escalation_duration_seconds_count{kind="escalation"} 2.0' in text
    assert 'confroute_outcome_writes_total{result="queued",source="escalation"} 1.0' in text
    assert "confroute_outcomes_buffered 3.0" in text  # from the outcome log's stats()
    assert "confroute_outcomes_dropped_total 1.0" in text
    assert "process_cpu_seconds_total" in text


def test_cohorts_beyond_the_cap_share_one_label() -> None:
    metrics = create_metrics(max_cohorts=2)
    for cohort in ("a", "b", "c", "d", "a"):
        metrics.observe_escalation(cohort, "pre", "OK")

    def count(cohort: str) -> float | None:
        labels = {"cohort": cohort, "edge_model_version": "", "kind": "escalation", "mode": "pre", "status": "OK"}
        return metrics.registry.get_sample_value("confroute_escalations_total", labels)

    assert (count("a"), count("b"), count(OTHER_COHORT), count("c")) == (2.0, 1.0, 2.0, None)


def test_a_log_without_stats_exports_no_log_series_and_registries_are_separate() -> None:
    first, second = create_metrics(), create_metrics()
    first.watch_outcome_log(object())
    first.observe_escalation("beta", "post", "OK")

    assert first.registry.get_sample_value("confroute_outcomes_buffered") is None
    labels = {"cohort": "beta", "edge_model_version": "", "kind": "escalation", "mode": "post", "status": "OK"}
    assert first.registry.get_sample_value("confroute_escalations_total", labels) == 1.0
    assert second.registry.get_sample_value("confroute_escalations_total", labels) is None


def test_the_metrics_endpoint_stops_and_frees_its_port() -> None:
    endpoint = serve_metrics(create_metrics(), "127.0.0.1", 0)
    assert "confroute_escalations" in scrape(endpoint.port)
    with pytest.raises(urllib.error.HTTPError) as caught:
        scrape(endpoint.port, "/")
    caught.value.close()
    assert caught.value.code == 404

    endpoint.close()

    with pytest.raises(OSError):
        scrape(endpoint.port)


def escalation_count(service: Service, status: str, *, kind: str = "escalation") -> float | None:
    labels = {"cohort": "beta", "edge_model_version": "b1", "kind": kind, "mode": "pre", "status": status}
    return service.running.metrics.registry.get_sample_value("confroute_escalations_total", labels)


class LingeringStream(FailingBackend):
    """Sends the final answer, then lingers before its stream ends (as Triton's last, empty response
    does): a client that cancels once it has the answer cancels the call while the servicer waits."""

    async def stream(self, request: Any, timeout_s: float) -> AsyncIterator[Any]:
        yield EscalationResponse("hi", FinishReason.STOP, ModelRef("echo", "1"), Usage(1, 1), Timings(1.0, 2.0, 3.0))
        await asyncio.sleep(timeout_s)


def test_a_stream_cancelled_by_its_client_after_the_final_answer_counts_as_ok(make_service: ServiceFactory) -> None:
    service = make_service(backend=LingeringStream())
    escalation = escalation_pb2.EscalateStreamRequest(escalation=REQUEST.escalation)
    for _ in range(2):
        call = service.escalation.EscalateStream(escalation, timeout=5)
        for response in call:
            if response.HasField("final"):
                call.cancel()  # what a device does once it has the final answer
                break

    service.wait_for(lambda: escalation_count(service, "OK") == 2.0, "two OK escalations")
    assert escalation_count(service, "CANCELLED") is None


def test_shadow_requests_are_counted_apart(service: Service) -> None:
    shadow = escalation_pb2.EscalateRequest()
    shadow.CopyFrom(REQUEST)
    shadow.escalation.shadow = True

    service.escalation.Escalate(shadow, timeout=5)

    service.wait_for(lambda: escalation_count(service, "OK", kind="shadow") == 1.0, "the shadow request")
    assert escalation_count(service, "OK") is None


def test_cloud_model_failures_are_counted_by_status(make_service: ServiceFactory) -> None:
    service = make_service(backend=FailingBackend(Unavailable("triton is down")))
    for _ in range(2):
        with pytest.raises(grpc.RpcError):
            service.escalation.Escalate(REQUEST, timeout=5)

    registry = service.running.metrics.registry
    assert registry.get_sample_value("confroute_triton_errors_total", {"status": "UNAVAILABLE"}) == 2.0
    assert escalation_count(service, "UNAVAILABLE") == 2.0


class HeldBackend(FailingBackend):
    """Answers nothing until released: holds the in-flight slots."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def generate(self, request: Any, timeout_s: float) -> Any:
        await self.release.wait()
        raise Unavailable("released")


def test_escalations_beyond_max_inflight_are_refused_and_counted(make_service: ServiceFactory) -> None:
    backend = HeldBackend()
    service = make_service(backend=backend, max_inflight=1)
    held = service.escalation.Escalate.future(REQUEST, timeout=5)
    registry = service.running.metrics.registry
    service.wait_for(lambda: registry.get_sample_value("confroute_escalations_inflight") == 1.0, "one in flight")

    with pytest.raises(grpc.RpcError) as caught:
        service.escalation.Escalate(REQUEST, timeout=5)

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert registry.get_sample_value("confroute_escalations_refused_total") == 1.0
    service.loop.loop.call_soon_threadsafe(backend.release.set)
    with pytest.raises(grpc.RpcError):
        held.result()


def test_each_refusal_is_counted_once_by_method_status_and_reason() -> None:
    metrics = create_metrics()
    escalate, watch = "/confroute.v1.EscalationService/Escalate", "/confroute.v1.FleetService/WatchPolicy"
    metrics.count_refusal(escalate, "PERMISSION_DENIED")
    metrics.count_refusal(watch, "RESOURCE_EXHAUSTED", rate_limited=True)
    metrics.count_refusal(watch, "RESOURCE_EXHAUSTED")

    def count(method: str, status: str, reason: str) -> float | None:
        labels = {"method": method, "status": status, "reason": reason}
        value: float | None = metrics.registry.get_sample_value("confroute_refusals_total", labels)
        return value

    assert count(escalate, "PERMISSION_DENIED", "permission_denied") == 1.0
    assert count(watch, "RESOURCE_EXHAUSTED", "rate_limited") == count(watch, "RESOURCE_EXHAUSTED", "overloaded") == 1.0
    names = {family.name for family in metrics.registry.collect()}
    assert "confroute_auth_refusals" not in names and "confroute_rate_limited" not in names
