"""Prometheus metrics: a registry per service, served on its own port."""

from __future__ import annotations

import urllib.request
from typing import TYPE_CHECKING

import grpc
import pytest

from cloud_service.metrics import OTHER_COHORT, create_metrics, serve_metrics
from confroute.contract import ChatMessage, ChatRole, EscalationRequest, GenerationParams, ModelRef, RoutingMode
from confroute.v1 import escalation_pb2

if TYPE_CHECKING:
    from tests.cloud_service.server.conftest import Service, ServiceFactory


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


def scrape(port: int) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, whatever http_proxy says
    with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode("utf-8"))


def test_escalations_are_counted_by_cohort_mode_and_status_on_the_metrics_port(make_service: ServiceFactory) -> None:
    service = make_service(metrics_listen="127.0.0.1:0")
    escalate(service)
    with pytest.raises(grpc.RpcError):
        escalate(service, max_tokens=0)
    service.wait_for(lambda: len(service.log.recorded) == 1, "the record")
    assert service.running.metrics_port is not None

    text = scrape(service.running.metrics_port)

    assert 'confroute_escalations_total{cohort="beta",mode="pre",status="OK"} 1.0' in text
    assert 'confroute_escalations_total{cohort="beta",mode="pre",status="INVALID_ARGUMENT"} 1.0' in text
    assert "confroute_triton_latency_seconds_count 1.0" in text
    assert 'confroute_outcome_writes_total{result="queued",source="escalation"} 1.0' in text
    assert "confroute_outcomes_buffered 3.0" in text  # from the outcome log's stats()
    assert "confroute_outcomes_dropped 1.0" in text


def test_cohorts_beyond_the_cap_share_one_label() -> None:
    metrics = create_metrics(max_cohorts=2)
    for cohort in ("a", "b", "c", "d", "a"):
        metrics.observe_escalation(cohort, "pre", "OK")

    def count(cohort: str) -> float | None:
        labels = {"cohort": cohort, "mode": "pre", "status": "OK"}
        return metrics.registry.get_sample_value("confroute_escalations_total", labels)

    assert (count("a"), count("b"), count(OTHER_COHORT), count("c")) == (2.0, 1.0, 2.0, None)


def test_a_log_without_stats_reads_as_nan_and_registries_are_separate() -> None:
    first, second = create_metrics(), create_metrics()
    first.watch_outcome_log(object())
    first.observe_escalation("beta", "post", "OK")

    assert first.registry.get_sample_value("confroute_outcomes_buffered") != 0.0  # NaN
    assert second.registry.get_sample_value("confroute_escalations_total", {"cohort": "beta"}) is None


def test_the_metrics_endpoint_stops_and_frees_its_port() -> None:
    endpoint = serve_metrics(create_metrics(), "127.0.0.1", 0)
    assert "confroute_escalations" in scrape(endpoint.port)

    endpoint.close()

    with pytest.raises(OSError):
        scrape(endpoint.port)
